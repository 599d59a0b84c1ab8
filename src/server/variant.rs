//! Variants are data: a trigger, a copy strategy and, for edge-triggered
//! loops, whether a short read ends the drain. [`Variant::spawn`] is the one
//! place that turns that data into a monomorphised event loop.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::thread::JoinHandle;

use super::copy::{CopyStrategy, rw::ReadWrite, splice::Spliced, writev::Gathered};
use super::event_loop::{EventLoop, LoopConfig, LoopResources};
use super::report::ThreadReport;
use super::trigger::{Edge, Level, Trigger};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerMode {
    Level,
    Edge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CopyMode {
    ReadWrite,
    Writev,
    Splice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub trigger: TriggerMode,
    pub copy: CopyMode,
    /// Edge-triggered only: stop draining at a read that returned less than
    /// asked (saves the EAGAIN read, relies on TCP's short-read meaning).
    pub short_read_stop: bool,
}

impl Variant {
    /// Every variant the servers implement, in report order.
    pub const ALL: [Variant; 8] = [
        Variant::new(TriggerMode::Level, CopyMode::ReadWrite, false),
        Variant::new(TriggerMode::Level, CopyMode::Writev, false),
        Variant::new(TriggerMode::Level, CopyMode::Splice, false),
        Variant::new(TriggerMode::Edge, CopyMode::ReadWrite, false),
        Variant::new(TriggerMode::Edge, CopyMode::Writev, false),
        Variant::new(TriggerMode::Edge, CopyMode::Splice, false),
        Variant::new(TriggerMode::Edge, CopyMode::ReadWrite, true),
        Variant::new(TriggerMode::Edge, CopyMode::Writev, true),
    ];

    pub const fn new(trigger: TriggerMode, copy: CopyMode, short_read_stop: bool) -> Variant {
        Variant {
            trigger,
            copy,
            short_read_stop,
        }
    }

    pub fn name(&self) -> String {
        self.to_string()
    }

    /// Starts one serving thread running this variant's event loop.
    pub fn spawn(
        &self,
        config: LoopConfig,
        resources: LoopResources,
    ) -> io::Result<JoinHandle<io::Result<ThreadReport>>> {
        match (self.trigger, self.short_read_stop) {
            (TriggerMode::Level, _) => spawn_for_trigger::<Level>(self.copy, config, resources),
            (TriggerMode::Edge, false) => {
                spawn_for_trigger::<Edge<false>>(self.copy, config, resources)
            }
            (TriggerMode::Edge, true) => {
                spawn_for_trigger::<Edge<true>>(self.copy, config, resources)
            }
        }
    }
}

fn spawn_for_trigger<T: Trigger>(
    copy: CopyMode,
    config: LoopConfig,
    resources: LoopResources,
) -> io::Result<JoinHandle<io::Result<ThreadReport>>> {
    match copy {
        CopyMode::ReadWrite => spawn_loop::<T, ReadWrite>(config, resources),
        CopyMode::Writev => spawn_loop::<T, Gathered>(config, resources),
        CopyMode::Splice => spawn_loop::<T, Spliced>(config, resources),
    }
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
        let trigger = match self.trigger {
            TriggerMode::Level => Level::NAME,
            TriggerMode::Edge => "et",
        };
        let copy = match self.copy {
            CopyMode::ReadWrite => ReadWrite::NAME,
            CopyMode::Writev => Gathered::NAME,
            CopyMode::Splice => Spliced::NAME,
        };
        write!(f, "{trigger}-{copy}")?;
        if self.short_read_stop {
            write!(f, "-shortread")?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_are_unique() {
        let names: Vec<String> = Variant::ALL.iter().map(Variant::name).collect();
        assert_eq!(
            names,
            [
                "lt-rw",
                "lt-writev",
                "lt-splice",
                "et-rw",
                "et-writev",
                "et-splice",
                "et-rw-shortread",
                "et-writev-shortread"
            ]
        );
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>().unwrap(), v);
        }
        let err = "lt-sendfile".parse::<Variant>().unwrap_err().to_string();
        assert!(err.contains("unknown variant `lt-sendfile`"), "{err}");
        assert!(err.contains("et-writev-shortread"), "{err}");
    }
}
