//! The server a plan measures, as data: a fresh `serve` child per
//! measurement from a [`ServerTemplate`] (`run`), or one [`RemoteServer`]
//! started elsewhere (`drive`), asked through its control interface when it
//! has one.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::driver::measurement::{EngineConfig, Progress};
use crate::driver::server_process::{RemoteControl, ServerControl, ServerSpec};
use crate::metrics::cross_check::KernelWatch;
use crate::protocol::Protocol;
use crate::results::Repetition;
use crate::results::workload::Case;
use crate::server::report::ServerReport;
use crate::server::{Variant, VariantName};

use super::judge::not_measured;
use super::measure::{CaseEngine, measure_remote, measure_spawned, watch_threads_of};
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

    /// Why server-side figures are missing from every measurement, when
    /// the target itself says so.
    pub fn unavailable_reason(&self) -> Option<&str> {
        match self {
            Target::Spawn(_) => None,
            Target::Remote(remote) => remote.unavailable.as_deref(),
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
                Some(variant) => measure_spawned(
                    &template.spec(variant, step.case.protocol),
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
            Target::Remote(remote) => remote.measure(config, step, engine, on_progress),
        }
    }
}

/// How to start a server for one variant.
#[derive(Clone, Debug)]
pub struct ServerTemplate {
    pub program: PathBuf,
    pub leading_args: Vec<String>,
    pub threads: Option<usize>,
    pub cpus: Option<Vec<usize>>,
    pub extra_args: Vec<String>,
    pub ready_timeout: Duration,
}

impl ServerTemplate {
    pub fn spec(&self, variant: Variant, protocol: Protocol) -> ServerSpec {
        let mut spec = ServerSpec::new(self.program.clone(), variant, protocol);
        spec.leading_args = self.leading_args.clone();
        spec.threads = self.threads;
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
    kernel: KernelWatch,
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
        let kernel = match (&mut control, target.ip().is_loopback()) {
            (Some(control), true) => watch_threads_of(control),
            (Some(_), false) => KernelWatch::unavailable("the server runs on another host"),
            (None, _) => KernelWatch::unavailable("no control interface"),
        };
        RemoteServer {
            unreachable,
            control,
            first_report,
            kernel,
            unavailable,
            control_note,
        }
    }

    /// Why every measurement will fail undriven, if it will.
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
        let control = self
            .control
            .as_mut()
            .map(|c| (c as &mut dyn ServerControl, &self.kernel));
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
