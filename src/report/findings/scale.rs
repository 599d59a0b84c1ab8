//! Findings at scale (issue 15): `idle_active` cases that measured memory
//! per connection, whole, or ramped idle connections out in worker
//! processes. What a connection costs in memory (server and driver user
//! space, kernel) by variant and connection count, and per idle and per
//! active connection from the slope over idle counts; whether a pooled idle
//! connection stays within a few KiB; how server CPU, epoll wake-ups and
//! the active set's p99 follow the connection count, LT against ET
//! ([`curve`]); and how far a very large attempt got ([`attempt`]). A run
//! without such cases (one from before issue 15) gets none of these.

use crate::results::connection_memory::ConnectionMemory;
use crate::results::spread::spread;
use crate::results::workload::Shape;
use crate::results::{CaseResult, ResultsFile, Status, VariantResult};
use crate::server::BufferPolicy;

use super::pairing::failed;
use super::tpc::thousands;
use super::{Finding, Holds};

/// Idle connections from which an attempt is reported on its own, whether
/// or not it held them all: the million-connection profile's scale.
pub(super) const LARGE_ATTEMPT_IDLE: u32 = 500_000;
/// Issue 15's "a few KiB": what a pooled idle connection may cost the
/// server in user memory.
const POOLED_IDLE_LIMIT_BYTES: f64 = 4096.0;

/// An `idle_active` case: its active and (requested) idle connections.
#[derive(Clone, Copy)]
pub(super) struct ScaleCase<'a> {
    pub case: &'a CaseResult,
    pub active: u32,
    pub idle: u32,
}

impl ScaleCase<'_> {
    pub fn connections(&self) -> u64 {
        u64::from(self.active) + u64::from(self.idle)
    }

    /// `` `label` (N connections: A active, I idle) ``.
    pub fn heading(&self) -> String {
        format!(
            "`{}` ({} connections: {} active, {} idle)",
            self.case.label,
            thousands_u64(self.connections()),
            thousands(self.active),
            thousands(self.idle)
        )
    }
}

pub(super) fn thousands_u64(n: u64) -> String {
    match u32::try_from(n) {
        Ok(n) => thousands(n),
        Err(_) => n.to_string(),
    }
}

/// The run's `idle_active` cases by connection count, when any of them
/// measured at scale (memory whole, a scaled-out ramp, or an attempt of
/// [`LARGE_ATTEMPT_IDLE`] idle connections or more); otherwise none.
pub(super) fn scale_cases(results: &ResultsFile) -> Vec<ScaleCase<'_>> {
    let mut cases: Vec<ScaleCase> = results
        .cases
        .iter()
        .filter_map(|case| match case.case.shape {
            Shape::IdleActive { idle_connections } => Some(ScaleCase {
                case,
                active: case.case.connections,
                idle: idle_connections,
            }),
            _ => None,
        })
        .collect();
    let at_scale = cases.iter().any(|c| {
        c.idle >= LARGE_ATTEMPT_IDLE
            || c.case
                .variants
                .iter()
                .flat_map(|v| &v.repetitions)
                .any(|r| {
                    r.server_memory.as_ref().is_some_and(|m| m.whole.is_some())
                        || r.measurement
                            .as_ref()
                            .is_some_and(|m| m.scale_out.is_some())
                })
    });
    if !at_scale {
        return Vec::new();
    }
    cases.sort_by_key(|c| (c.active, c.idle));
    cases
}

pub(super) fn findings(results: &ResultsFile) -> Vec<Finding> {
    let cases = scale_cases(results);
    if cases.is_empty() {
        return Vec::new();
    }
    let policy = results.run.settings.server_buffers;
    let slopes = slopes(&cases);
    let mut out = vec![
        memory_by_count(&cases, policy, results.run.settings.server_processes),
        idle_against_active(&cases, &slopes),
        pooled_idle(&cases, policy, &slopes),
    ];
    out.extend(curve::findings(&cases));
    out.push(attempt::finding(&cases));
    out
}

fn policy_name(policy: Option<BufferPolicy>) -> String {
    match policy {
        Some(p) => format!("{} buffers", p.name()),
        None => "buffer policy not recorded (`drive`, or a file from before `--buffers`: \
                 per-connection)"
            .to_string(),
    }
}

/// Memory per connection of one result: medians over its passed
/// repetitions that measured it.
pub(super) struct MemoryFigures {
    pub connections: u64,
    pub server_processes: usize,
    pub server_bytes: f64,
    pub driver_bytes: Result<f64, String>,
    pub kernel_tcp_bytes: Result<f64, String>,
    pub kernel_slab_bytes: Result<f64, String>,
    pub repetitions: usize,
}

impl MemoryFigures {
    pub fn of(result: &VariantResult) -> Option<MemoryFigures> {
        let wholes: Vec<&ConnectionMemory> = result
            .repetitions
            .iter()
            .filter(|r| r.status == Status::Passed && !r.purpose.discarded())
            .filter_map(|r| r.server_memory.as_ref()?.whole.as_ref())
            .collect();
        MemoryFigures::over(&wholes)
    }

    pub fn over(wholes: &[&ConnectionMemory]) -> Option<MemoryFigures> {
        let first = wholes.first()?;
        let median = |f: fn(&ConnectionMemory) -> Option<f64>,
                      why: fn(&ConnectionMemory) -> Option<&String>|
         -> Result<f64, String> {
            let values: Option<Vec<f64>> = wholes.iter().map(|m| f(m)).collect();
            values.map(|v| spread(&v).median).ok_or_else(|| {
                wholes
                    .iter()
                    .find_map(|m| why(m).cloned())
                    .unwrap_or_else(|| "not read".to_string())
            })
        };
        let connections: Vec<f64> = wholes.iter().map(|m| m.connections as f64).collect();
        Some(MemoryFigures {
            connections: spread(&connections).median.round() as u64,
            server_processes: first.server_processes,
            server_bytes: median(|m| Some(m.server_rss_per_connection_bytes), |_| None)
                .unwrap_or_default(),
            driver_bytes: median(
                |m| m.driver_rss_per_connection_bytes,
                |m| m.driver_rss_unavailable_reason.as_ref(),
            ),
            kernel_tcp_bytes: median(
                |m| m.kernel_tcp_mem_per_connection_bytes,
                |m| m.kernel_tcp_mem_unavailable_reason.as_ref(),
            ),
            kernel_slab_bytes: median(
                |m| m.kernel_slab_per_connection_bytes,
                |m| m.kernel_slab_unavailable_reason.as_ref(),
            ),
            repetitions: wholes.len(),
        })
    }

    /// Server user space, driver user space and kernel, in KiB per
    /// connection.
    pub fn text(&self) -> String {
        let kib = |bytes: f64| format!("{:.2} KiB", bytes / 1024.0);
        let or_why = |v: &Result<f64, String>| match v {
            Ok(v) => kib(*v),
            Err(why) => format!("unavailable ({why})"),
        };
        let kernel = match (&self.kernel_tcp_bytes, &self.kernel_slab_bytes) {
            (Ok(tcp), Ok(slab)) => format!(
                "{} (TCP buffers {} + slab {})",
                kib(tcp + slab),
                kib(*tcp),
                kib(*slab)
            ),
            (tcp, slab) => format!("TCP buffers {}, slab {}", or_why(tcp), or_why(slab)),
        };
        format!(
            "server user space {} ({} process{}), driver user space {}, kernel {kernel} per \
             connection",
            kib(self.server_bytes),
            self.server_processes,
            if self.server_processes == 1 { "" } else { "es" },
            or_why(&self.driver_bytes),
        )
    }

    /// The server's resident growth over the ramp, all connections.
    pub fn server_total_bytes(&self) -> f64 {
        self.server_bytes * self.connections as f64
    }
}

fn memory_by_count(
    cases: &[ScaleCase],
    policy: Option<BufferPolicy>,
    processes: Option<usize>,
) -> Finding {
    let mut evidence = vec![format!(
        "{}; server processes: {} (kernel figures are machine-wide: both ends of each loopback \
         connection)",
        policy_name(policy),
        processes.unwrap_or(1)
    )];
    let (mut measured, mut missing) = (0, 0);
    for c in cases {
        for result in &c.case.variants {
            if let Some(why) = failed(result) {
                evidence.push(format!("{}: {why}", c.heading()));
                continue;
            }
            match MemoryFigures::of(result) {
                Some(m) => {
                    measured += 1;
                    evidence.push(format!(
                        "{}, {}: {} (median of {} passed repetition{} over {} connections held)",
                        c.heading(),
                        result.variant,
                        m.text(),
                        m.repetitions,
                        if m.repetitions == 1 { "" } else { "s" },
                        thousands_u64(m.connections)
                    ));
                }
                None => {
                    missing += 1;
                    evidence.push(format!(
                        "{}, {}: passed without memory per connection, whole",
                        c.heading(),
                        result.variant
                    ));
                }
            }
        }
    }
    let holds = match (measured, missing) {
        (0, _) => Holds::NotMeasured,
        (_, 0) => Holds::Yes,
        _ => Holds::No,
    };
    Finding {
        claim: format!(
            "every passed idle-active result measured its memory per connection, whole (server \
             and driver user space, kernel; {})",
            policy_name(policy)
        ),
        holds,
        evidence,
    }
}

/// The server's user memory per idle and per active connection of one
/// variant, from its cases with the fewest and the most idle connections
/// at one active count.
pub(super) struct Slope {
    pub variant: String,
    pub active: u64,
    pub idle_from: u64,
    pub idle_to: u64,
    pub total_from_bytes: f64,
    pub total_to_bytes: f64,
    pub per_idle_bytes: f64,
    pub per_active_bytes: f64,
}

impl Slope {
    /// Whether a line through the two counts describes the memory: a
    /// negative cost per active connection means the cost per connection
    /// itself grew with N (a thread per connection), and neither figure
    /// is a per-connection cost.
    fn fits(&self) -> bool {
        self.per_active_bytes >= 0.0
    }

    fn text(&self) -> String {
        let mib = |bytes: f64| format!("{:.1} MiB", bytes / (1024.0 * 1024.0));
        let head = format!(
            "{}, {} active: server RSS growth {} at {} idle and {} at {} idle",
            self.variant,
            thousands_u64(self.active),
            mib(self.total_from_bytes),
            thousands_u64(self.idle_from),
            mib(self.total_to_bytes),
            thousands_u64(self.idle_to),
        );
        if !self.fits() {
            let per_connection = |total: f64, idle: u64| total / (idle + self.active) as f64;
            return format!(
                "{head}: {:.2} and {:.2} KiB per connection, so the cost per connection grows \
                 with N and no line through the two counts splits it into idle and active parts \
                 (it would give {:.2} KiB per active connection)",
                per_connection(self.total_from_bytes, self.idle_from) / 1024.0,
                per_connection(self.total_to_bytes, self.idle_to) / 1024.0,
                self.per_active_bytes / 1024.0
            );
        }
        format!(
            "{head} (per connection × connections held): {:.2} KiB per idle connection (Δ total / \
             Δ idle), {:.2} KiB per active connection ((total − per idle × idle) / active)",
            self.per_idle_bytes / 1024.0,
            self.per_active_bytes / 1024.0
        )
    }
}

/// One variant's memory at one active count: (idle held, memory), in case
/// order.
type MemoryPoints = (String, u64, Vec<(u64, MemoryFigures)>);

fn slopes(cases: &[ScaleCase]) -> Vec<Slope> {
    let mut points: Vec<MemoryPoints> = Vec::new();
    for c in cases {
        for result in &c.case.variants {
            let Some(m) = passed(result).and_then(MemoryFigures::of) else {
                continue;
            };
            let (name, active) = (result.variant.to_string(), u64::from(c.active));
            let idle = m.connections.saturating_sub(active);
            match points
                .iter_mut()
                .find(|(v, a, _)| *v == name && *a == active)
            {
                Some((_, _, p)) => p.push((idle, m)),
                None => points.push((name, active, vec![(idle, m)])),
            }
        }
    }
    points
        .into_iter()
        .filter_map(|(variant, active, mut p)| {
            p.sort_by_key(|(idle, _)| *idle);
            let ((idle_from, a), (idle_to, b)) = (p.first()?, p.last()?);
            if idle_to <= idle_from || active == 0 {
                return None;
            }
            let (total_from, total_to) = (a.server_total_bytes(), b.server_total_bytes());
            let per_idle = (total_to - total_from) / (idle_to - idle_from) as f64;
            Some(Slope {
                variant,
                active,
                idle_from: *idle_from,
                idle_to: *idle_to,
                total_from_bytes: total_from,
                total_to_bytes: total_to,
                per_idle_bytes: per_idle,
                per_active_bytes: (total_from - per_idle * *idle_from as f64) / active as f64,
            })
        })
        .collect()
}

pub(super) fn passed(result: &VariantResult) -> Option<&VariantResult> {
    (result.status == Status::Passed).then_some(result)
}

fn idle_against_active(cases: &[ScaleCase], slopes: &[Slope]) -> Finding {
    let claim = "an idle connection costs the server less user memory than an active one \
                 (slope over idle counts)"
        .to_string();
    if slopes.is_empty() {
        let counts: Vec<String> = cases.iter().map(|c| thousands(c.idle)).collect();
        return Finding {
            claim,
            holds: Holds::NotMeasured,
            evidence: vec![format!(
                "no variant measured memory at two idle counts with the same active count \
                 (idle counts run: {})",
                counts.join(", ")
            )],
        };
    }
    let fitting: Vec<&Slope> = slopes.iter().filter(|s| s.fits()).collect();
    let cheaper = fitting
        .iter()
        .all(|s| s.per_idle_bytes < s.per_active_bytes);
    Finding {
        claim,
        holds: match (fitting.is_empty(), cheaper) {
            (true, _) => Holds::NotShown,
            (false, true) => Holds::Yes,
            (false, false) => Holds::No,
        },
        evidence: slopes.iter().map(Slope::text).collect(),
    }
}

fn pooled_idle(cases: &[ScaleCase], policy: Option<BufferPolicy>, slopes: &[Slope]) -> Finding {
    let claim = format!(
        "a pooled idle connection costs at most {:.0} KiB of server user memory",
        POOLED_IDLE_LIMIT_BYTES / 1024.0
    );
    if policy != Some(BufferPolicy::Pooled) {
        return Finding {
            claim,
            holds: Holds::NotMeasured,
            evidence: vec![format!(
                "this run's servers did not pool their buffers ({}); `run --buffers pooled` \
                 measures it",
                policy_name(policy)
            )],
        };
    }
    let mut evidence = Vec::new();
    let mut within = Vec::new();
    for s in slopes {
        within.push(s.per_idle_bytes <= POOLED_IDLE_LIMIT_BYTES);
        evidence.push(format!(
            "{}, {} active: {:.2} KiB per idle connection (slope from {} to {} idle)",
            s.variant,
            thousands_u64(s.active),
            s.per_idle_bytes / 1024.0,
            thousands_u64(s.idle_from),
            thousands_u64(s.idle_to)
        ));
    }
    // A variant measured at one idle count has only its figure per
    // connection, which also carries the active connections' share: an
    // upper bound, decisive only when within the limit.
    for c in cases {
        for result in &c.case.variants {
            let name = result.variant.to_string();
            if slopes.iter().any(|s| s.variant == name) {
                continue;
            }
            let Some(m) = passed(result).and_then(MemoryFigures::of) else {
                continue;
            };
            let bound = m.server_bytes <= POOLED_IDLE_LIMIT_BYTES;
            if bound {
                within.push(true);
            }
            evidence.push(format!(
                "{}, {name}: {:.2} KiB per connection, idle and active together ({}; one idle \
                 count, so no slope)",
                c.heading(),
                m.server_bytes / 1024.0,
                if bound {
                    "an upper bound within the limit"
                } else {
                    "above the limit but not an idle connection's own cost"
                }
            ));
        }
    }
    let holds = if within.is_empty() {
        Holds::NotMeasured
    } else if within.iter().all(|w| *w) {
        Holds::Yes
    } else {
        Holds::No
    };
    if evidence.is_empty() {
        evidence.push("no passed idle-active result measured memory per connection".into());
    }
    Finding {
        claim,
        holds,
        evidence,
    }
}

mod attempt;
mod curve;
#[cfg(test)]
mod tests;
