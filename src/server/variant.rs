//! Variants are data: a backend (epoll with a trigger mode, or io_uring), a copy
//! strategy and a read policy. Names parse and print in one place
//! ([`FromStr`], [`fmt::Display`]); [`Variant::ALL`] is the one list every
//! test, bench and chart iterates; [`Variant::spawn`] is the one place that
//! turns the data into a monomorphised event loop.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::thread::JoinHandle;

use super::copy::file::{mmap::Mapped, sendfile::SentFile};
use super::copy::{
    CopyStrategy, rw::ReadWrite, splice::Spliced, vmsplice::Vmspliced, writev::Gathered,
    zerocopy::ZeroCopy,
};
use super::event_loop::{EventLoop, LoopConfig, LoopResources};
use super::report::ThreadReport;
use super::trigger::{Edge, Level, Trigger};
use super::uring::UringLoop;
use super::uring::copy::{RecvSend, UringCopy, Vectored};
use super::uring::splice::UringSpliced;
use crate::protocol::Protocol;
use crate::sys;

/// The epoll trigger mode of an epoll backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerMode {
    Level,
    Edge,
}

impl TriggerMode {
    /// The variant-name prefix, taken from the trigger types themselves.
    pub fn name(self) -> &'static str {
        match self {
            TriggerMode::Level => Level::NAME,
            TriggerMode::Edge => Edge::<false>::NAME,
        }
    }
}

/// What waits for readiness and runs the connections. Each member is one
/// event-loop implementation; a new backend (io_uring, a thread per
/// connection) is a new member here and a new arm in [`Variant::spawn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The epoll loop in `event_loop.rs`, with this trigger mode.
    Epoll(TriggerMode),
    /// The io_uring loop in `uring/`: reads and writes queued as SQEs, one
    /// `io_uring_enter` per loop turn.
    Uring,
    /// The io_uring loop in `uring/multishot.rs`: multishot accept and
    /// receive into provided buffers, `SINGLE_ISSUER` + `DEFER_TASKRUN`.
    /// Its copy is fixed (gathered writes), so its name has no copy part.
    UringMultishot,
    /// `tpc/`: one thread per connection making blocking calls, with an
    /// acceptor thread; the baseline the event loops are compared with.
    ThreadPerConnection,
}

impl Backend {
    pub const ALL: [Backend; 5] = [
        Backend::Epoll(TriggerMode::Level),
        Backend::Epoll(TriggerMode::Edge),
        Backend::Uring,
        Backend::UringMultishot,
        Backend::ThreadPerConnection,
    ];

    /// The variant-name prefix, e.g. `lt`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Epoll(trigger) => trigger.name(),
            Backend::Uring => "uring",
            Backend::UringMultishot => "uring-multishot",
            Backend::ThreadPerConnection => "tpc",
        }
    }

    /// Why this machine cannot run the backend, if it cannot: probed when a
    /// server starts, so a variant is refused with the reason rather than
    /// replaced by another.
    pub fn unavailable_reason(self) -> Option<String> {
        match self {
            Backend::Epoll(_) | Backend::ThreadPerConnection => None,
            Backend::Uring => sys::uring::probe().err(),
            Backend::UringMultishot => sys::uring::probe_multishot().err(),
        }
    }

    /// Whether the backend is one of the io_uring loops.
    pub fn is_uring(self) -> bool {
        matches!(self, Backend::Uring | Backend::UringMultishot)
    }
}

/// Declares the copy strategies once: the enum, each one's name (from the
/// strategy type's `NAME`) and the dispatch to its type. Adding a strategy
/// is one file in `copy/` and one line here.
macro_rules! copy_modes {
    ($($mode:ident => $strategy:ty,)*) => {
        /// The copy axis (see [`super::copy`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum CopyMode {
            $($mode,)*
        }

        impl CopyMode {
            pub const ALL: &[CopyMode] = &[$(CopyMode::$mode,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(CopyMode::$mode => <$strategy as CopyStrategy>::NAME,)*
                }
            }
        }

        fn spawn_for_trigger<T: Trigger>(
            copy: CopyMode,
            config: LoopConfig,
            resources: LoopResources,
        ) -> io::Result<JoinHandle<io::Result<ThreadReport>>> {
            match copy {
                $(CopyMode::$mode => spawn_loop::<T, $strategy>(config, resources),)*
            }
        }
    };
}

copy_modes! {
    ReadWrite => ReadWrite,
    Writev => Gathered,
    Splice => Spliced,
    Zerocopy => ZeroCopy,
    Vmsplice => Vmspliced,
    Mmap => Mapped,
    Sendfile => SentFile,
}

impl CopyMode {
    /// The strategy this one is measured against in the effects: the one
    /// it changes one thing of. writev gathers what rw writes piece by
    /// piece; splice and zerocopy keep writev's gathered header and take
    /// the payload's copy away (through a pipe, or by pinning the pages);
    /// vmsplice keeps writev's `readv` in and takes the outgoing copy away
    /// (user pages into a pipe). mmap and sendfile serve the file protocol
    /// only, where the baseline is rw's `pread` + `write` through a user
    /// buffer.
    pub fn compared_with(self) -> Option<CopyMode> {
        match self {
            CopyMode::ReadWrite => None,
            CopyMode::Writev | CopyMode::Mmap | CopyMode::Sendfile => Some(CopyMode::ReadWrite),
            CopyMode::Splice | CopyMode::Zerocopy | CopyMode::Vmsplice => Some(CopyMode::Writev),
        }
    }

    /// Whether the strategy serves only the file protocol (its bytes come
    /// from the served file, so it has nothing to send for frame or echo).
    pub fn file_only(self) -> bool {
        matches!(self, CopyMode::Mmap | CopyMode::Sendfile)
    }

    /// File descriptors a server holds per open connection: the socket,
    /// and for splice and vmsplice the pipe pair the bytes pass through.
    pub fn descriptors_per_connection(self) -> u64 {
        match self {
            CopyMode::Splice | CopyMode::Vmsplice => 3,
            CopyMode::ReadWrite
            | CopyMode::Writev
            | CopyMode::Zerocopy
            | CopyMode::Mmap
            | CopyMode::Sendfile => 1,
        }
    }
}

/// How much a loop reads per readiness event beyond what its backend
/// requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadPolicy {
    /// The backend's own rule: level-triggered stops after a read that
    /// could have drained the socket, edge-triggered reads to `EAGAIN`.
    Backend,
    /// Edge-triggered only: a read that returned less than asked ends the
    /// drain (saves the `EAGAIN` read; on TCP a short read means the queue
    /// was empty at that moment).
    StopOnShortRead,
}

impl ReadPolicy {
    /// The variant-name suffix.
    fn suffix(self) -> &'static str {
        match self {
            ReadPolicy::Backend => "",
            ReadPolicy::StopOnShortRead => "-shortread",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub backend: Backend,
    pub copy: CopyMode,
    pub read_policy: ReadPolicy,
}

/// The one list of variants, in report order: hands `$callback!` one
/// `test_ident => variant_expression` pair per variant. [`Variant::ALL`] is
/// built from it, and test suites use it to generate one test function per
/// variant (`epoll_bench::for_each_variant!(my_tests)`), so a new variant
/// is one line here and every suite covers it.
#[macro_export]
macro_rules! for_each_variant {
    ($callback:ident) => {
        $callback! {
            lt_rw => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Level,
                $crate::server::variant::CopyMode::ReadWrite,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            lt_writev => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Level,
                $crate::server::variant::CopyMode::Writev,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            lt_splice => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Level,
                $crate::server::variant::CopyMode::Splice,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            lt_zerocopy => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Level,
                $crate::server::variant::CopyMode::Zerocopy,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            lt_vmsplice => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Level,
                $crate::server::variant::CopyMode::Vmsplice,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            lt_mmap => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Level,
                $crate::server::variant::CopyMode::Mmap,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            lt_sendfile => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Level,
                $crate::server::variant::CopyMode::Sendfile,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            et_rw => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Edge,
                $crate::server::variant::CopyMode::ReadWrite,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            et_writev => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Edge,
                $crate::server::variant::CopyMode::Writev,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            et_splice => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Edge,
                $crate::server::variant::CopyMode::Splice,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            et_zerocopy => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Edge,
                $crate::server::variant::CopyMode::Zerocopy,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            et_vmsplice => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Edge,
                $crate::server::variant::CopyMode::Vmsplice,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            et_mmap => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Edge,
                $crate::server::variant::CopyMode::Mmap,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            et_sendfile => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Edge,
                $crate::server::variant::CopyMode::Sendfile,
                $crate::server::variant::ReadPolicy::Backend,
            ),
            et_rw_shortread => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Edge,
                $crate::server::variant::CopyMode::ReadWrite,
                $crate::server::variant::ReadPolicy::StopOnShortRead,
            ),
            et_writev_shortread => $crate::server::variant::Variant::epoll(
                $crate::server::variant::TriggerMode::Edge,
                $crate::server::variant::CopyMode::Writev,
                $crate::server::variant::ReadPolicy::StopOnShortRead,
            ),
            uring_rw => $crate::server::variant::Variant::uring(
                $crate::server::variant::CopyMode::ReadWrite,
            ),
            uring_writev => $crate::server::variant::Variant::uring(
                $crate::server::variant::CopyMode::Writev,
            ),
            uring_splice => $crate::server::variant::Variant::uring(
                $crate::server::variant::CopyMode::Splice,
            ),
            uring_multishot => $crate::server::variant::Variant::URING_MULTISHOT,
            tpc_rw => $crate::server::variant::Variant::TPC_RW,
        }
    };
}

macro_rules! variant_array {
    ($($test:ident => $variant:expr),* $(,)?) => {
        [$($variant),*]
    };
}

impl Variant {
    /// Every variant the servers implement, in report order (from
    /// [`for_each_variant!`]): what tests, benches, charts and the CLI iterate.
    pub const ALL: [Variant; 21] = for_each_variant!(variant_array);

    /// `uring-multishot`: gathered writes, like `uring-writev`.
    pub const URING_MULTISHOT: Variant = Variant {
        backend: Backend::UringMultishot,
        copy: CopyMode::Writev,
        read_policy: ReadPolicy::Backend,
    };

    /// `tpc-rw`: a thread per connection, plain blocking `read`/`write`.
    pub const TPC_RW: Variant = Variant {
        backend: Backend::ThreadPerConnection,
        copy: CopyMode::ReadWrite,
        read_policy: ReadPolicy::Backend,
    };

    pub const fn epoll(trigger: TriggerMode, copy: CopyMode, read_policy: ReadPolicy) -> Variant {
        Variant {
            backend: Backend::Epoll(trigger),
            copy,
            read_policy,
        }
    }

    pub const fn uring(copy: CopyMode) -> Variant {
        Variant {
            backend: Backend::Uring,
            copy,
            read_policy: ReadPolicy::Backend,
        }
    }

    pub fn name(&self) -> String {
        self.to_string()
    }

    /// The epoll trigger mode, for variants of the epoll backend.
    pub fn trigger(&self) -> Option<TriggerMode> {
        match self.backend {
            Backend::Epoll(trigger) => Some(trigger),
            Backend::Uring | Backend::UringMultishot | Backend::ThreadPerConnection => None,
        }
    }

    /// Why this machine cannot run the variant, if it cannot (see
    /// [`Backend::unavailable_reason`]); io_uring's splice also needs
    /// `IORING_OP_SPLICE`.
    pub fn unavailable_reason(&self) -> Option<String> {
        match (self.backend, self.copy) {
            (Backend::Uring, CopyMode::Splice) => sys::uring::probe_splice().err(),
            _ => self.backend.unavailable_reason(),
        }
    }

    /// Whether this variant's servers speak `protocol`. Frame and echo are
    /// served by every variant but the file-only strategies (mmap,
    /// sendfile). The file protocol is served by the epoll loop's rw
    /// (`pread` + `write`), splice (file → pipe → socket), mmap and
    /// sendfile; not by writev and zerocopy (they would only repeat rw's
    /// `pread` into a buffer with another send call), nor by the io_uring
    /// and thread-per-connection backends (their own loops have no file
    /// path). A server refuses a protocol it does not serve, and a run
    /// leaves such pairs out of its plan.
    pub fn serves(&self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Frame | Protocol::Echo => !self.copy.file_only(),
            Protocol::File => {
                matches!(self.backend, Backend::Epoll(_))
                    && matches!(
                        self.copy,
                        CopyMode::ReadWrite
                            | CopyMode::Splice
                            | CopyMode::Mmap
                            | CopyMode::Sendfile
                    )
            }
        }
    }

    pub fn stops_on_short_read(&self) -> bool {
        self.read_policy == ReadPolicy::StopOnShortRead
    }

    /// Starts one serving thread running this variant's event loop.
    pub fn spawn(
        &self,
        config: LoopConfig,
        resources: LoopResources,
    ) -> io::Result<JoinHandle<io::Result<ThreadReport>>> {
        match (self.backend, self.read_policy) {
            (Backend::Epoll(TriggerMode::Level), _) => {
                spawn_for_trigger::<Level>(self.copy, config, resources)
            }
            (Backend::Epoll(TriggerMode::Edge), ReadPolicy::Backend) => {
                spawn_for_trigger::<Edge<false>>(self.copy, config, resources)
            }
            (Backend::Epoll(TriggerMode::Edge), ReadPolicy::StopOnShortRead) => {
                spawn_for_trigger::<Edge<true>>(self.copy, config, resources)
            }
            (Backend::Uring, _) => match self.copy {
                CopyMode::ReadWrite => spawn_uring_loop::<RecvSend>(config, resources),
                CopyMode::Writev => spawn_uring_loop::<Vectored>(config, resources),
                CopyMode::Splice => spawn_uring_loop::<UringSpliced>(config, resources),
                CopyMode::Zerocopy | CopyMode::Vmsplice | CopyMode::Mmap | CopyMode::Sendfile => {
                    Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("the io_uring loop has no {} strategy", self.copy.name()),
                    ))
                }
            },
            (Backend::UringMultishot, _) => super::uring::multishot::spawn(config, resources),
            (Backend::ThreadPerConnection, _) => super::tpc::spawn(config, resources),
        }
    }
}

/// Sets the thread's ring up here, so that a kernel refusing it fails
/// `Server::start`, and starts the loop on it. The epoll set `Server::start`
/// made for the thread is not used.
fn spawn_uring_loop<C: UringCopy>(
    config: LoopConfig,
    resources: LoopResources,
) -> io::Result<JoinHandle<io::Result<ThreadReport>>> {
    let uring = sys::uring::Uring::new(sys::uring::SQ_ENTRIES)?;
    let LoopResources {
        listener, control, ..
    } = resources;
    let name = format!("serve-uring-{}", config.thread_index);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || UringLoop::<C>::new(config, uring, listener, control).run())
}

fn spawn_loop<T: Trigger, C: CopyStrategy>(
    config: LoopConfig,
    resources: LoopResources,
) -> io::Result<JoinHandle<io::Result<ThreadReport>>> {
    let name = format!("serve-{}-{}", T::NAME, config.thread_index);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || EventLoop::<T, C>::new(config, resources).run())
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.backend == Backend::UringMultishot {
            return f.write_str(self.backend.name());
        }
        write!(
            f,
            "{}-{}{}",
            self.backend.name(),
            self.copy.name(),
            self.read_policy.suffix()
        )
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown variant `{given}` (known: {known})")]
pub struct UnknownVariant {
    pub given: String,
    pub known: String,
}

impl FromStr for Variant {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Variant, UnknownVariant> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownVariant {
                given: s.to_string(),
                known: Variant::ALL.map(|v| v.name()).join(", "),
            })
    }
}

/// What results call a measured server: one of the variants above, or a
/// server measured from outside under the name it was given (`drive
/// --name`). It prints and parses as the plain name (so results files keep
/// their strings), and a name that is one of [`Variant::ALL`] is always that
/// variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VariantName {
    Builtin(Variant),
    External(String),
}

impl VariantName {
    /// The variant, when the name is one of ours.
    pub fn builtin(&self) -> Option<Variant> {
        match self {
            VariantName::Builtin(v) => Some(*v),
            VariantName::External(_) => None,
        }
    }

    /// Position in report order: [`Variant::ALL`]'s order, then external
    /// servers by name.
    pub fn report_order(&self) -> (usize, &str) {
        match self {
            VariantName::Builtin(v) => (Variant::ALL.iter().position(|a| a == v).unwrap_or(0), ""),
            VariantName::External(name) => (Variant::ALL.len(), name),
        }
    }
}

impl From<Variant> for VariantName {
    fn from(v: Variant) -> VariantName {
        VariantName::Builtin(v)
    }
}

impl fmt::Display for VariantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VariantName::Builtin(v) => v.fmt(f),
            VariantName::External(name) => f.write_str(name),
        }
    }
}

impl From<&str> for VariantName {
    fn from(name: &str) -> VariantName {
        match name.parse::<Variant>() {
            Ok(v) => VariantName::Builtin(v),
            Err(_) => VariantName::External(name.to_string()),
        }
    }
}

impl PartialEq<str> for VariantName {
    fn eq(&self, other: &str) -> bool {
        match self {
            VariantName::Builtin(v) => v.to_string() == other,
            VariantName::External(name) => name == other,
        }
    }
}

impl PartialEq<&str> for VariantName {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl serde::Serialize for VariantName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for VariantName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<VariantName, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(VariantName::from(name.as_str()))
    }
}

#[cfg(test)]
mod tests;
