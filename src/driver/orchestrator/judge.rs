//! Whether one measurement passed, and what a passed or failed repetition
//! keeps: any verification failure, server protocol or connection error,
//! server death or engine error fails it, and a failed repetition keeps its
//! counts but no throughput or latency.

use crate::driver::server_process::{ProcessMemory, ServerWindow, WindowError};
use crate::metrics::cpu_steal::steal_note;
use crate::metrics::kernel_memory::MemoryProbe;
use crate::results::connection_memory::{ConnectionMemory, RampEnd};
use crate::results::measurement::{CaseMeasurement, VerificationCounts};
use crate::results::workload::{Case, Shape};
use crate::results::{FailureRecord, Repetition, ServerMemory, Status};
use crate::sys::memory::page_size_bytes;

/// Connections open at once in a case (active plus idle).
pub fn open_connections(case: &Case) -> u64 {
    let idle = match case.shape {
        Shape::IdleActive { idle_connections } => idle_connections as u64,
        _ => 0,
    };
    case.connections as u64 + idle
}

/// What the server side of one measurement gave.
pub struct ServerSide {
    /// The window, or why there is none.
    pub window: Result<ServerWindow, WindowError>,
    pub baseline_memory: Option<ProcessMemory>,
    /// Driver and kernel memory before the first connection (spawned
    /// servers), for the whole memory per connection of `idle_active`.
    pub baseline_probe: Option<MemoryProbe>,
    /// Set when the server could not be asked at all (no control
    /// interface): not a failure, the figures are just unavailable.
    pub unavailable_reason: Option<String>,
    /// A problem after the window (the server did not stop cleanly).
    pub after_window_error: Option<String>,
}

impl ServerSide {
    /// A window read through a control interface, nothing else known.
    pub fn of_window(window: Result<ServerWindow, WindowError>) -> ServerSide {
        ServerSide {
            window,
            baseline_memory: None,
            baseline_probe: None,
            unavailable_reason: None,
            after_window_error: None,
        }
    }

    /// A server that cannot be asked, for `reason`.
    pub fn unavailable(reason: &str) -> ServerSide {
        ServerSide {
            window: Err(WindowError::NeverOpened),
            baseline_memory: None,
            baseline_probe: None,
            unavailable_reason: Some(reason.to_string()),
            after_window_error: None,
        }
    }
}

/// Judges one measurement. An engine error arrives as the full reason to
/// record.
pub fn judge(
    index: u32,
    case: &Case,
    engine_result: Result<CaseMeasurement, String>,
    server: ServerSide,
    server_command_line: Vec<String>,
) -> Repetition {
    let mut reasons = Vec::new();
    let engine = judge_engine(engine_result, &mut reasons);
    let window = judge_window(
        server.window,
        server.unavailable_reason.is_some(),
        &mut reasons,
    );
    reasons.extend(server.after_window_error);
    if !reasons.is_empty() {
        return Repetition {
            index,
            status: Status::Failed,
            measurement: None,
            failure: Some(FailureRecord {
                reasons,
                verification: engine.verification,
                server_protocol_errors: window.protocol_errors,
                server_connection_errors: window.connection_errors,
                cpu_steal_percent: engine.cpu_steal_percent,
                scale_out: engine.scale_out,
            }),
            server_window: None,
            server_memory: None,
            kernel_cross_check: None,
            server_command_line,
            // Set by the loop, which knows the plan.
            purpose: Default::default(),
            order_position: None,
            external_window: None,
        };
    }
    let window = window.window;
    let server_memory = server_memory(
        case,
        server.baseline_memory,
        server.baseline_probe.as_ref(),
        window.as_ref(),
    );
    Repetition {
        index,
        status: Status::Passed,
        measurement: engine.measurement,
        failure: None,
        kernel_cross_check: window.as_ref().and_then(|w| w.cross_check.clone()),
        // A server built without syscall counting reports zeros: those must
        // not be shown as measured figures.
        server_window: window
            .map(|w| w.delta)
            .filter(|delta| delta.syscall_counting),
        server_memory,
        server_command_line,
        purpose: Default::default(),
        order_position: None,
        external_window: None,
    }
}

/// A measurement that never ran (no server, unreachable, wrong protocol):
/// failed for `reason`, with nothing measured.
pub fn not_measured(
    index: u32,
    case: &Case,
    reason: String,
    server_command_line: Vec<String>,
) -> Repetition {
    let server = ServerSide::unavailable("not measured");
    judge(index, case, Err(reason), server, server_command_line)
}

/// What the engine's side says.
struct EngineVerdict {
    measurement: Option<CaseMeasurement>,
    verification: Option<VerificationCounts>,
    cpu_steal_percent: Option<f64>,
    scale_out: Option<crate::results::measurement::ScaleOutcome>,
}

fn judge_engine(
    result: Result<CaseMeasurement, String>,
    reasons: &mut Vec<String>,
) -> EngineVerdict {
    let m = match result {
        Ok(m) => m,
        Err(reason) => {
            reasons.push(reason);
            return EngineVerdict {
                measurement: None,
                verification: None,
                cpu_steal_percent: None,
                scale_out: None,
            };
        }
    };
    reasons.extend(verification_reasons(&m.verification));
    if m.requests_completed == 0 && reasons.is_empty() {
        reasons.push("no request completed inside the measured window".to_string());
    }
    // Not a reason of its own, but what a reader of the failure needs next
    // to it.
    if !reasons.is_empty()
        && let Some(note) = steal_note(m.cpu_steal_percent)
    {
        reasons.push(note);
    }
    EngineVerdict {
        verification: Some(m.verification),
        cpu_steal_percent: m.cpu_steal_percent,
        scale_out: m.scale_out.clone(),
        measurement: Some(m),
    }
}

fn verification_reasons(v: &VerificationCounts) -> Vec<String> {
    let counts = [
        (
            v.payload_mismatches,
            "payload mismatch",
            "payload mismatches",
        ),
        (v.header_mismatches, "header mismatch", "header mismatches"),
        (v.unexpected_closes, "unexpected close", "unexpected closes"),
        (v.connect_failures, "connect failure", "connect failures"),
        (
            v.unanswered_requests,
            "unanswered request",
            "unanswered requests",
        ),
    ];
    counts
        .into_iter()
        .filter_map(|(count, one, many)| match count {
            0 => None,
            1 => Some(format!("1 {one}")),
            n => Some(format!("{n} {many}")),
        })
        .collect()
}

/// What the server's side says.
struct WindowVerdict {
    window: Option<ServerWindow>,
    protocol_errors: Option<u64>,
    connection_errors: Option<u64>,
}

fn judge_window(
    window: Result<ServerWindow, WindowError>,
    unavailable: bool,
    reasons: &mut Vec<String>,
) -> WindowVerdict {
    let window = match window {
        Ok(window) => window,
        Err(e) => {
            if !unavailable {
                reasons.push(format!("server: {e}"));
            }
            return WindowVerdict {
                window: None,
                protocol_errors: None,
                connection_errors: None,
            };
        }
    };
    let counters = window.delta.total.counters;
    if counters.protocol_errors > 0 {
        reasons.push(format!(
            "server counted {} protocol errors",
            counters.protocol_errors
        ));
    }
    if counters.connection_errors > 0 {
        reasons.push(format!(
            "server counted {} connection errors",
            counters.connection_errors
        ));
    }
    WindowVerdict {
        window: Some(window),
        protocol_errors: Some(counters.protocol_errors),
        connection_errors: Some(counters.connection_errors),
    }
}

/// Memory per open connection: the peak over the window above the
/// resident size before any connection.
fn server_memory(
    case: &Case,
    baseline: Option<ProcessMemory>,
    baseline_probe: Option<&MemoryProbe>,
    window: Option<&ServerWindow>,
) -> Option<ServerMemory> {
    let window = window?;
    let mut memory = memory_per_connection(case, baseline, window.memory_at_end)?;
    // Where the case is a ramp of idle connections, the whole picture.
    if let (Shape::IdleActive { .. }, Some(before), Some(after), Some(base), Some(end)) = (
        &case.shape,
        baseline_probe,
        window.probe_at_end.as_ref(),
        baseline,
        window.memory_at_end,
    ) {
        memory.whole = Some(ConnectionMemory::over_ramp(
            memory.connections,
            window.end.processes.len().max(1),
            RampEnd {
                server: base,
                probe: before,
            },
            RampEnd {
                server: end,
                probe: after,
            },
            page_size_bytes(),
        ));
    }
    Some(memory)
}

/// Memory per open connection from the resident size before any
/// connection and the peak at the window's end.
pub fn memory_per_connection(
    case: &Case,
    baseline: Option<ProcessMemory>,
    end: Option<ProcessMemory>,
) -> Option<ServerMemory> {
    let base = baseline?;
    let end = end?;
    let connections = open_connections(case).max(1);
    let grown = end.peak_rss_bytes.saturating_sub(base.rss_bytes);
    Some(ServerMemory {
        baseline_rss_bytes: base.rss_bytes,
        peak_rss_bytes: end.peak_rss_bytes,
        connections,
        per_connection_bytes: grown as f64 / connections as f64,
        whole: None,
    })
}

/// Why server-side figures are missing from passed repetitions, if they are.
pub(super) fn unavailable_reason(repetitions: &[Repetition]) -> Option<String> {
    let passed: Vec<&Repetition> = repetitions
        .iter()
        .filter(|r| r.status == Status::Passed)
        .collect();
    (!passed.is_empty() && passed.iter().any(|r| r.server_window.is_none()))
        .then(|| "the server was built without the count-syscalls feature".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::orchestrator::plan::driver_threads_for;
    use crate::results::fixture;

    fn side(window: ServerWindow) -> ServerSide {
        ServerSide {
            window: Ok(window),
            baseline_probe: None,
            baseline_memory: Some(ProcessMemory {
                rss_bytes: 1 << 20,
                peak_rss_bytes: 1 << 20,
            }),
            unavailable_reason: None,
            after_window_error: None,
        }
    }

    fn window(protocol_errors: u64) -> ServerWindow {
        let mut delta = fixture::server_window(1000, 64, 1, 1);
        delta.total.counters.protocol_errors = protocol_errors;
        ServerWindow {
            start: delta.clone(),
            end: delta.clone(),
            delta,
            memory_at_end: Some(ProcessMemory {
                rss_bytes: 2 << 20,
                peak_rss_bytes: (1 << 20) + 64 * 1024,
            }),
            probe_at_end: None,
            cross_check: None,
        }
    }

    #[test]
    fn a_clean_measurement_passes_with_memory_per_connection() {
        let case = fixture::case("pingpong-64b-1conn", 64);
        let rep = judge(
            0,
            &case,
            Ok(fixture::measurement(1000, 64, 50.0)),
            side(window(0)),
            vec![],
        );
        assert_eq!(rep.status, Status::Passed);
        let memory = rep.server_memory.unwrap();
        assert_eq!(memory.per_connection_bytes, 65536.0);
        assert_eq!(memory.connections, 1);
        assert!(rep.server_window.is_some());
    }

    #[test]
    fn verification_failures_and_server_errors_fail_without_figures() {
        let case = fixture::case("pingpong-64b-1conn", 64);
        let mut m = fixture::measurement(1000, 64, 50.0);
        m.verification.header_mismatches = 2;
        let rep = judge(0, &case, Ok(m), side(window(3)), vec![]);
        assert_eq!(rep.status, Status::Failed);
        assert!(rep.measurement.is_none() && rep.server_window.is_none());
        let failure = rep.failure.unwrap();
        assert_eq!(
            failure.reasons,
            ["2 header mismatches", "server counted 3 protocol errors"]
        );
        assert_eq!(failure.verification.unwrap().header_mismatches, 2);
        assert_eq!(failure.server_protocol_errors, Some(3));
    }

    #[test]
    fn a_dead_server_or_engine_error_fails_clearly() {
        let case = fixture::case("pingpong-64b-1conn", 64);
        let dead = ServerSide {
            window: Err(WindowError::Server(
                crate::driver::server_process::ServerError::Died {
                    variant: "lt-rw".into(),
                    status: "killed by signal 9".into(),
                    stderr: String::new(),
                },
            )),
            baseline_memory: None,
            baseline_probe: None,
            unavailable_reason: None,
            after_window_error: None,
        };
        let rep = judge(
            0,
            &case,
            Ok(fixture::measurement(10, 64, 50.0)),
            dead,
            vec![],
        );
        assert_eq!(rep.status, Status::Failed);
        assert_eq!(
            rep.failure.unwrap().reasons,
            ["server: server lt-rw died (killed by signal 9)"]
        );
        let rep = judge(
            0,
            &case,
            Err("load engine: connection refused".into()),
            side(window(0)),
            vec![],
        );
        assert_eq!(
            rep.failure.unwrap().reasons,
            ["load engine: connection refused"]
        );
    }

    #[test]
    fn unavailable_server_side_is_not_a_failure() {
        let case = fixture::case("pingpong-64b-1conn", 64);
        let rep = judge(
            0,
            &case,
            Ok(fixture::measurement(1000, 64, 50.0)),
            ServerSide {
                window: Err(WindowError::NeverOpened),
                baseline_memory: None,
                baseline_probe: None,
                unavailable_reason: Some("no control interface".into()),
                after_window_error: None,
            },
            vec![],
        );
        assert_eq!(rep.status, Status::Passed);
        assert!(rep.server_window.is_none());
    }

    #[test]
    fn zero_requests_fail() {
        let case = fixture::case("pingpong-64b-1conn", 64);
        let rep = judge(
            0,
            &case,
            Ok(fixture::measurement(0, 64, 50.0)),
            side(window(0)),
            vec![],
        );
        assert_eq!(
            rep.failure.unwrap().reasons,
            ["no request completed inside the measured window"]
        );
    }

    #[test]
    fn a_failure_in_a_stolen_window_says_so_and_a_pass_keeps_its_steal() {
        let case = fixture::case("pingpong-64b-1conn", 64);
        let mut m = fixture::measurement(1000, 64, 50.0);
        m.verification.unanswered_requests = 11;
        m.cpu_steal_percent = Some(85.2);
        let rep = judge(0, &case, Ok(m.clone()), side(window(0)), vec![]);
        assert_eq!(rep.cpu_steal_percent(), Some(85.2));
        assert_eq!(
            rep.failure.unwrap().reasons,
            [
                "11 unanswered requests",
                "the hypervisor took 85% of CPU time in that window (steal)"
            ]
        );

        // Little steal: not worth a word.
        m.cpu_steal_percent = Some(1.0);
        let rep = judge(0, &case, Ok(m.clone()), side(window(0)), vec![]);
        assert_eq!(rep.failure.unwrap().reasons, ["11 unanswered requests"]);

        m.verification.unanswered_requests = 0;
        m.cpu_steal_percent = Some(12.0);
        let rep = judge(0, &case, Ok(m), side(window(0)), vec![]);
        assert_eq!(rep.status, Status::Passed);
        assert_eq!(rep.cpu_steal_percent(), Some(12.0));
    }

    #[test]
    fn idle_connections_count_for_memory() {
        let mut case = fixture::case("idle", 64);
        case.connections = 16;
        case.shape = Shape::IdleActive {
            idle_connections: 10_000,
        };
        assert_eq!(open_connections(&case), 10_016);
        assert_eq!(driver_threads_for(&case, 4), 4);
        case.connections = 1;
        assert_eq!(driver_threads_for(&case, 4), 1);
    }
}
