//! From a [`Case`] to what each driver thread does: which connection slots
//! it owns, how each slot issues requests, and the checks that must pass
//! before any socket is opened.

use std::collections::BTreeMap;

// Descriptors the driver needs beside its connections: the same spare the
// profile check allows for, so a profile that passes it fits here too.
use crate::driver::profile::FD_HEADROOM;
use crate::driver::workload::TraceEvent;

use crate::protocol::Protocol;
use crate::results::workload::{Case, Shape};

use super::error::EngineError;

/// How a slot's requests are issued.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Issue {
    /// Closed loop: keep up to `depth` requests in flight.
    Depth(u32),
    /// Closed loop: keep up to `window_bytes` of payload in flight (at
    /// least one request).
    Window(u64),
    /// Ping-pong on a connection that is closed and reopened after
    /// `requests_per_connection` requests.
    Churn(u32),
    /// Open loop at fixed intervals: request `k` of this slot is due at
    /// `(k * stride + rank) * ns_per_request` after the start.
    Rate {
        rank: u64,
        stride: u64,
        ns_per_request: f64,
    },
    /// Open loop from a trace: `(due ns after the start, size)`, in order.
    Trace(Vec<(u64, u32)>),
    /// Connected and held, never used.
    Idle,
}

impl Issue {
    pub fn is_open_loop(&self) -> bool {
        matches!(self, Issue::Rate { .. } | Issue::Trace(_))
    }

    /// Requests a slot usually has in flight (initial queue capacity).
    pub fn expected_depth(&self) -> usize {
        match self {
            Issue::Depth(depth) => *depth as usize,
            Issue::Window(_) => 16,
            Issue::Churn(_) => 1,
            Issue::Rate { .. } | Issue::Trace(_) => 8,
            Issue::Idle => 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct SlotPlan {
    /// Payload stream and size-sampler seed of the slot.
    pub payload_id: u32,
    pub issue: Issue,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Plan {
    /// Per driver thread, the slots it owns.
    pub threads: Vec<Vec<SlotPlan>>,
    /// Connections opened by all threads together.
    pub total_connections: u64,
    /// Open-loop shapes: the intended total request rate.
    pub target_rate_per_second: Option<f64>,
}

fn invalid(case: &Case, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidCase {
        label: case.label.clone(),
        reason: reason.into(),
    }
}

/// Splits `case` over at most `driver_threads` threads. `trace` holds the
/// events of a trace shape (ignored otherwise).
pub(super) fn plan(
    case: &Case,
    driver_threads: usize,
    trace: &[TraceEvent],
) -> Result<Plan, EngineError> {
    if driver_threads == 0 {
        return Err(invalid(case, "driver_threads: must be at least 1"));
    }
    // A trace carries its own sizes; `case.sizes` only summarises them.
    let is_trace = matches!(case.shape, Shape::Trace { .. });
    if !is_trace && let Err(message) = case.sizes.validate_with_max_frame(u32::MAX) {
        return Err(invalid(case, format!("sizes: {message}")));
    }
    let active = case.connections;
    if !is_trace && active == 0 {
        return Err(invalid(case, "connections: must be at least 1"));
    }
    let (slots, target_rate_per_second) = shape_slots(case, trace)?;
    let total_connections = slots.len() as u64;
    let thread_count = driver_threads.min(slots.len()).max(1);
    let mut threads: Vec<Vec<SlotPlan>> = vec![Vec::new(); thread_count];
    // Active slots come first, so round-robin spreads both active and idle
    // connections evenly.
    for (i, slot) in slots.into_iter().enumerate() {
        threads[i % thread_count].push(slot);
    }
    Ok(Plan {
        threads,
        total_connections,
        target_rate_per_second,
    })
}

/// Every connection slot `case`'s shape asks for, active ones first, and
/// the intended total request rate of open-loop shapes. A straight match:
/// one arm per shape, each checking its own parameter.
fn shape_slots(
    case: &Case,
    trace: &[TraceEvent],
) -> Result<(Vec<SlotPlan>, Option<f64>), EngineError> {
    let mut target_rate_per_second = None;
    let mut slots: Vec<SlotPlan> = Vec::new();
    let active = case.connections;
    let active_slots = |issue_for: &dyn Fn(u32) -> Issue| -> Vec<SlotPlan> {
        (0..active)
            .map(|i| SlotPlan {
                payload_id: i,
                issue: issue_for(i),
            })
            .collect()
    };
    match &case.shape {
        Shape::PingPong => slots.extend(active_slots(&|_| Issue::Depth(1))),
        Shape::Pipelined { depth } => {
            if *depth == 0 {
                return Err(invalid(case, "depth: must be at least 1"));
            }
            slots.extend(active_slots(&|_| Issue::Depth(*depth)));
        }
        Shape::Bulk { window_bytes } => {
            if *window_bytes == 0 {
                return Err(invalid(case, "window_bytes: must be at least 1"));
            }
            slots.extend(active_slots(&|_| Issue::Window(*window_bytes)));
        }
        Shape::Churn {
            requests_per_connection,
        } => {
            if *requests_per_connection == 0 {
                return Err(invalid(case, "requests_per_connection: must be at least 1"));
            }
            slots.extend(active_slots(&|_| Issue::Churn(*requests_per_connection)));
        }
        Shape::ConstantRate { rate_per_second } => {
            let rate = *rate_per_second;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(invalid(
                    case,
                    format!("rate_per_second: must be a positive number, got {rate}"),
                ));
            }
            target_rate_per_second = Some(rate);
            let stride = u64::from(active);
            slots.extend(active_slots(&|i| Issue::Rate {
                rank: u64::from(i),
                stride,
                ns_per_request: 1e9 / rate,
            }));
        }
        Shape::IdleActive { idle_connections } => {
            slots.extend(active_slots(&|_| Issue::Depth(1)));
            // Idle slots get payload ids after the active ones; they never
            // send, so the id only keeps slots distinguishable.
            slots.extend((0..*idle_connections).map(|i| SlotPlan {
                payload_id: active.saturating_add(i),
                issue: Issue::Idle,
            }));
        }
        Shape::Trace { speed, .. } => {
            if !(speed.is_finite() && *speed > 0.0) {
                return Err(invalid(
                    case,
                    format!("speed: must be a positive number, got {speed}"),
                ));
            }
            let (trace_slots, rate) = trace_slots(case, *speed, trace)?;
            target_rate_per_second = rate;
            slots = trace_slots;
        }
    }
    Ok((slots, target_rate_per_second))
}

fn trace_slots(
    case: &Case,
    speed: f64,
    trace: &[TraceEvent],
) -> Result<(Vec<SlotPlan>, Option<f64>), EngineError> {
    if trace.is_empty() {
        return Err(invalid(case, "the trace has no events"));
    }
    let mut per_connection: BTreeMap<u32, Vec<(u64, u32)>> = BTreeMap::new();
    for (line, event) in trace.iter().enumerate() {
        if case.protocol == Protocol::Echo && event.size_bytes == 0 {
            return Err(invalid(
                case,
                format!(
                    "trace event {}: an echo request cannot be empty (size_bytes 0)",
                    line + 1
                ),
            ));
        }
        let due_ns = (event.offset_us as f64 * 1000.0 / speed).round() as u64;
        per_connection
            .entry(event.connection)
            .or_default()
            .push((due_ns, event.size_bytes));
    }
    let mut last_ns = 0;
    let slots = per_connection
        .into_iter()
        .map(|(connection, mut events)| {
            // Stable: events at the same time keep their order in the file.
            events.sort_by_key(|&(due, _)| due);
            last_ns = last_ns.max(events.last().map_or(0, |&(due, _)| due));
            SlotPlan {
                payload_id: connection,
                issue: Issue::Trace(events),
            }
        })
        .collect();
    let rate = (last_ns > 0).then(|| trace.len() as f64 / (last_ns as f64 / 1e9));
    Ok((slots, rate))
}

/// Raises RLIMIT_NOFILE to its hard limit and checks that `connections`
/// sockets fit in it.
pub(super) fn ensure_fd_capacity(connections: u64) -> Result<(), EngineError> {
    let needed = connections + FD_HEADROOM;
    let (soft, hard) = crate::sys::rlimit::nofile().map_err(|source| EngineError::Io {
        context: "reading RLIMIT_NOFILE",
        source,
    })?;
    if needed <= soft {
        return Ok(());
    }
    if needed > hard {
        return Err(EngineError::FdLimit {
            connections,
            needed,
            hard_limit: hard,
        });
    }
    crate::sys::rlimit::raise_nofile_to_hard().map_err(|source| EngineError::Io {
        context: "raising RLIMIT_NOFILE to its hard limit",
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::workload::SizeDistribution;

    fn case(shape: Shape, connections: u32) -> Case {
        Case {
            profile: "p".into(),
            label: "l".into(),
            protocol: Protocol::Frame,
            connections,
            shape,
            sizes: SizeDistribution::Fixed { bytes: 64 },
            seed: 1,
            sweep_size_bytes: None,
            client: Default::default(),
        }
    }

    #[test]
    fn connections_spread_round_robin_and_idle_ones_too() {
        let plan = plan(
            &case(
                Shape::IdleActive {
                    idle_connections: 5,
                },
                3,
            ),
            2,
            &[],
        )
        .unwrap();
        assert_eq!(plan.total_connections, 8);
        assert_eq!(plan.threads.len(), 2);
        let active: Vec<usize> = plan
            .threads
            .iter()
            .map(|t| t.iter().filter(|s| s.issue != Issue::Idle).count())
            .collect();
        assert_eq!(active, vec![2, 1]);
        assert_eq!(plan.threads[0].len() + plan.threads[1].len(), 8);
    }

    #[test]
    fn no_more_threads_than_connections() {
        let plan = plan(&case(Shape::PingPong, 1), 4, &[]).unwrap();
        assert_eq!(plan.threads.len(), 1);
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let cases = [
            (case(Shape::Pipelined { depth: 0 }, 1), "depth"),
            (
                case(
                    Shape::ConstantRate {
                        rate_per_second: 0.0,
                    },
                    1,
                ),
                "rate_per_second",
            ),
            (case(Shape::PingPong, 0), "connections"),
            (case(Shape::Bulk { window_bytes: 0 }, 1), "window_bytes"),
        ];
        for (c, field) in cases {
            let err = plan(&c, 1, &[]).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn trace_events_group_by_connection_and_scale_by_speed() {
        let events = [
            TraceEvent {
                connection: 7,
                offset_us: 2000,
                size_bytes: 10,
            },
            TraceEvent {
                connection: 3,
                offset_us: 1000,
                size_bytes: 20,
            },
            TraceEvent {
                connection: 7,
                offset_us: 0,
                size_bytes: 30,
            },
        ];
        let c = case(
            Shape::Trace {
                path: "t".into(),
                speed: 2.0,
            },
            0,
        );
        let plan = plan(&c, 4, &events).unwrap();
        assert_eq!(plan.total_connections, 2);
        let slots: Vec<&SlotPlan> = plan.threads.iter().flatten().collect();
        assert_eq!(slots[0].payload_id, 3);
        assert_eq!(slots[0].issue, Issue::Trace(vec![(500_000, 20)]));
        assert_eq!(slots[1].issue, Issue::Trace(vec![(0, 30), (1_000_000, 10)]));
    }
}
