//! The server a plan measures, as data: a fresh `serve` child per
//! measurement from a [`ServerTemplate`] (`run`), or one [`RemoteServer`]
//! started elsewhere (`drive`), asked through its control interface when it
//! has one.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::driver::measurement::{EngineConfig, Progress};
use crate::driver::profile::{
    machine_nofile_hard_limit, server_descriptor_shortfall, server_thread_shortfall,
};
use crate::driver::server_process::external::ExternalServer;
use crate::driver::server_process::external_process::ExternalStart;
use crate::driver::server_process::{RemoteControl, ServerControl, ServerSpec};
use crate::metrics::cross_check::KernelWatch;
use crate::protocol::Protocol;
use crate::results::thread_capacity::machine::read_thread_limits;
use crate::results::workload::Case;
use crate::results::{Repetition, RepetitionPurpose};
use crate::server::report::ServerReport;
use crate::server::variant::Backend;
use crate::server::{Variant, VariantName};

use super::applicable::not_applicable_reason;
use super::judge::not_measured;
use super::measure::{
    CaseEngine, measure_external, measure_remote, measure_spawned, watch_threads_of,
};
use super::progress::Step;

/// What a plan measures.
pub enum Target {
    /// A fresh server for every measurement, of the measurement's variant.
    Spawn(ServerTemplate),
    /// One server started elsewhere, whatever the plan's variant name
    /// (boxed: its control connection and kernel watch are large).
    Remote(Box<RemoteServer>),
}

impl Target {
    /// Whether the driver starts (and so also pays for) a server per
    /// measurement.
    pub fn spawns_servers(&self) -> bool {
        matches!(self, Target::Spawn(_))
    }

    /// Whether Ctrl-C reaches the server as well as the driver. A spawned
    /// child is in the driver's process group, so the terminal's SIGINT
    /// stops it too: a measurement that fails then failed because of the
    /// interrupt, and what ran after it was raised is not a full run. A
    /// remote server runs in another terminal or host and is untouched:
    /// its failures are its own, and the interrupt only ends the loop
    /// between measurements.
    pub fn interrupt_reaches_server(&self) -> bool {
        matches!(self, Target::Spawn(_))
    }

    /// Repetitions per variant × case, after the timing ones, whose server
    /// counts its syscalls in the kernel too: the cross-check runs there,
    /// apart from the timed windows it would slow. None where the kernel
    /// cannot count the server (another host, no control interface).
    pub fn counting_repetitions(&self) -> u32 {
        match self {
            Target::Spawn(_) => 1,
            Target::Remote(remote) => remote.counting_repetitions(),
        }
    }

    /// Why server-side figures are missing from every measurement, when
    /// the target itself says so.
    pub fn unavailable_reason(&self) -> Option<&str> {
        match self {
            Target::Spawn(_) => None,
            Target::Remote(remote) => remote.unavailable.as_deref(),
        }
    }

    /// The command of `variant` when it is an external server this target
    /// starts.
    pub fn external_command(&self, variant: &VariantName) -> Option<String> {
        match self {
            Target::Spawn(template) => template.external(variant).map(|s| s.command.clone()),
            Target::Remote(_) => None,
        }
    }

    /// Why `variant` is left out of `case`: a server this target starts
    /// would refuse a protocol it does not serve. A remote server is
    /// driven whatever its name, and refuses a wrong protocol itself.
    pub fn not_applicable(&self, variant: &VariantName, case: &Case) -> Option<String> {
        match self {
            Target::Spawn(_) => not_applicable_reason(variant, case.protocol),
            Target::Remote(_) => None,
        }
    }

    /// Measures one step: `config` carries the step's driver threads.
    pub fn measure(
        &mut self,
        config: &EngineConfig,
        step: &Step,
        engine: &mut dyn CaseEngine,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Repetition {
        match self {
            Target::Spawn(template) => match step.variant.builtin() {
                Some(variant)
                    if let Some(reason) =
                        descriptor_shortfall(step.case, variant, template.processes)
                            .or_else(|| thread_shortfall(step.case, variant, template)) =>
                {
                    not_measured(step.repetition, step.case, reason, Vec::new())
                }
                Some(variant) => measure_spawned(
                    &template.spec(variant, step.case.protocol, step.purpose),
                    config,
                    step.case,
                    step.repetition,
                    engine,
                    on_progress,
                ),
                None => match template.external(step.variant) {
                    Some(server) => measure_external(
                        &ExternalStart {
                            server,
                            protocol: step.case.protocol,
                            cpus: template.cpus.as_deref(),
                            count_syscalls: step.purpose.gives_cross_check(),
                            ready_timeout: template.ready_timeout,
                        },
                        config,
                        step.case,
                        step.repetition,
                        engine,
                        on_progress,
                    ),
                    None => not_measured(
                        step.repetition,
                        step.case,
                        format!("`{}` is not a server this tool can start", step.variant),
                        Vec::new(),
                    ),
                },
            },
            Target::Remote(remote) => remote.measure(config, step, engine, on_progress),
        }
    }
}

/// Why this machine's descriptor limit keeps a `variant` server from
/// holding every connection of `case`: refused before it starts, not
/// measured at its limit.
fn descriptor_shortfall(case: &Case, variant: Variant, processes: Option<usize>) -> Option<String> {
    let hard_limit = machine_nofile_hard_limit()?;
    let processes = processes.unwrap_or(1) as u64;
    server_descriptor_shortfall(case, variant, hard_limit, processes)
}

/// Why this machine's thread limits keep a thread-per-connection `variant`
/// server from starting a thread for every connection of `case`: refused
/// before it starts, since past the limits it stops accepting or aborts.
/// Read just before each measurement, as the threads running change.
fn thread_shortfall(case: &Case, variant: Variant, template: &ServerTemplate) -> Option<String> {
    if variant.backend != Backend::ThreadPerConnection {
        return None;
    }
    // Unreadable limits: not refused here; the server meets them itself.
    let limits = read_thread_limits(Path::new("/")).ok()?;
    server_thread_shortfall(
        case,
        variant,
        template.processes.unwrap_or(1) as u64,
        template.threads.unwrap_or(1) as u64,
        &limits,
    )
}

/// How to start a server for one variant.
#[derive(Clone, Debug)]
pub struct ServerTemplate {
    pub program: PathBuf,
    pub leading_args: Vec<String>,
    pub threads: Option<usize>,
    /// `serve --processes` of every spawned server (`None`: one).
    pub processes: Option<usize>,
    pub cpus: Option<Vec<usize>>,
    pub extra_args: Vec<String>,
    pub ready_timeout: Duration,
    /// Servers outside this project, started by their command, pinned to
    /// `cpus` like ours.
    pub external: Vec<ExternalServer>,
}

impl ServerTemplate {
    /// The external server named `variant`, if there is one.
    pub fn external(&self, variant: &VariantName) -> Option<&ExternalServer> {
        match variant {
            VariantName::External(name) => self.external.iter().find(|s| &s.name == name),
            VariantName::Builtin(_) => None,
        }
    }

    /// The server of one measurement: with kernel counters only when the
    /// repetition is for counting.
    pub fn spec(
        &self,
        variant: Variant,
        protocol: Protocol,
        purpose: RepetitionPurpose,
    ) -> ServerSpec {
        let mut spec = ServerSpec::new(self.program.clone(), variant, protocol);
        spec.kernel_counters = purpose.gives_cross_check();
        spec.leading_args = self.leading_args.clone();
        spec.threads = self.threads;
        spec.processes = self.processes;
        spec.cpus = self.cpus.clone();
        spec.extra_args = self.extra_args.clone();
        spec.ready_timeout = self.ready_timeout;
        spec
    }
}

/// A server started elsewhere, as found when connecting to it.
pub struct RemoteServer {
    /// Why it cannot be driven at all (nothing accepts at its address).
    unreachable: Option<String>,
    control: Option<RemoteControl>,
    /// The control interface's first answer: the server's variant and
    /// protocol.
    first_report: Option<ServerReport>,
    /// Why the kernel cannot count the server's syscalls; `None`: a watch
    /// is attached for each counting repetition (and only then, since the
    /// counters slow every call they count).
    kernel_unavailable: Option<String>,
    /// Why server-side figures are unavailable.
    unavailable: Option<String>,
    /// What to tell the user about the server-side figures.
    control_note: Option<String>,
}

impl RemoteServer {
    /// Checks that `target` accepts connections, and connects to and asks
    /// its control interface when given. Nothing here fails: an unreachable
    /// target fails every measurement with the reason, and a missing or
    /// silent control interface leaves server-side figures unavailable.
    pub fn connect(target: SocketAddr, control: Option<&str>, timeout: Duration) -> RemoteServer {
        let unreachable = TcpStream::connect_timeout(&target, timeout)
            .err()
            .map(|e| format!("cannot reach the target {target}: {e}"));
        let (mut control, mut unavailable, mut control_note) = match control {
            Some(addr) => match RemoteControl::connect(addr, timeout) {
                Ok(control) => (Some(control), None, None),
                Err(e) => (
                    None,
                    Some(format!("control interface unreachable: {e}")),
                    Some(format!("warning: {e}; server-side figures unavailable")),
                ),
            },
            None => (
                None,
                Some("no --control interface given".to_string()),
                Some("no --control: server-side figures unavailable".to_string()),
            ),
        };
        let first_report = match control.as_mut().map(|c| c.snapshot()).transpose() {
            Ok(report) => report,
            Err(e) => {
                control_note = Some(format!("warning: {e}; server-side figures unavailable"));
                unavailable = Some(format!("control interface does not answer: {e}"));
                control = None;
                None
            }
        };
        // Kernel counters attach to thread ids, which only mean this
        // server on this host.
        let kernel_unavailable = match (&control, target.ip().is_loopback()) {
            (Some(_), true) => None,
            (Some(_), false) => Some("the server runs on another host".to_string()),
            (None, _) => Some("no control interface".to_string()),
        };
        RemoteServer {
            unreachable,
            control,
            first_report,
            kernel_unavailable,
            unavailable,
            control_note,
        }
    }

    /// Why every measurement will fail undriven, if it will.
    /// One counting repetition when the kernel can count the server's
    /// syscalls, none otherwise.
    pub fn counting_repetitions(&self) -> u32 {
        u32::from(self.kernel_unavailable.is_none())
    }

    pub fn unreachable_reason(&self) -> Option<&str> {
        self.unreachable.as_deref()
    }

    /// A line for the user when server-side figures are unavailable.
    pub fn control_note(&self) -> Option<&str> {
        self.control_note.as_deref()
    }

    /// The variant the server reports through its control interface.
    pub fn reported_variant(&self) -> Option<&VariantName> {
        self.first_report.as_ref().map(|r| &r.variant)
    }

    /// Why `case` cannot be driven against this server, if it cannot.
    fn not_drivable(&self, case: &Case) -> Option<String> {
        let mismatch = || {
            self.first_report
                .as_ref()
                .filter(|r| r.protocol != case.protocol)
                .map(|report| {
                    format!(
                        "the server speaks the {} protocol, case `{}` needs {}",
                        report.protocol.name(),
                        case.label,
                        case.protocol.name()
                    )
                })
        };
        self.unreachable.clone().or_else(mismatch)
    }

    fn measure(
        &mut self,
        config: &EngineConfig,
        step: &Step,
        engine: &mut dyn CaseEngine,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Repetition {
        if let Some(reason) = self.not_drivable(step.case) {
            return not_measured(step.repetition, step.case, reason, Vec::new());
        }
        let watch = match (&self.kernel_unavailable, self.control.as_mut()) {
            (Some(reason), _) => Some(KernelWatch::unavailable(reason)),
            (None, Some(control)) if step.purpose.gives_cross_check() => {
                Some(watch_threads_of(control))
            }
            _ => None,
        };
        let control = self
            .control
            .as_mut()
            .map(|c| (c as &mut dyn ServerControl, watch.as_ref()));
        measure_remote(
            step.case,
            config,
            step.repetition,
            engine,
            control,
            on_progress,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> ServerTemplate {
        ServerTemplate {
            program: "/bin/epoll-bench".into(),
            leading_args: Vec::new(),
            threads: Some(1),
            processes: None,
            cpus: Some(vec![1]),
            extra_args: Vec::new(),
            ready_timeout: Duration::from_secs(1),
            external: Vec::new(),
        }
    }

    #[test]
    fn only_counting_repetitions_spawn_servers_with_kernel_counters() {
        let args = |purpose| {
            template()
                .spec("lt-writev".parse().unwrap(), Protocol::Frame, purpose)
                .server_args()
        };
        let timing = args(RepetitionPurpose::Timing);
        assert!(
            !timing.contains(&"--kernel-counters".to_string()),
            "{timing:?}"
        );
        // Timing windows still count in-process: the counts are exact and
        // cheap.
        assert!(!timing.contains(&"--no-syscall-counting".to_string()));
        let counting = args(RepetitionPurpose::Counting);
        assert!(
            counting.contains(&"--kernel-counters".to_string()),
            "{counting:?}"
        );
        // Nothing else differs between the two servers.
        let without: Vec<&String> = counting
            .iter()
            .filter(|a| *a != "--kernel-counters")
            .collect();
        assert_eq!(without, timing.iter().collect::<Vec<_>>());
        assert_eq!(Target::Spawn(template()).counting_repetitions(), 1);
    }

    #[test]
    fn a_remote_server_the_kernel_cannot_watch_gets_no_counting_repetition() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let remote = RemoteServer::connect(closed, None, Duration::from_millis(200));
        assert_eq!(Target::Remote(Box::new(remote)).counting_repetitions(), 0);
    }
}
