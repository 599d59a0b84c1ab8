//! External servers (`run --server NAME=COMMAND`, such as the tokio and Go
//! reference peers) beside the best built-in epoll variant of each case
//! (least median server CPU per request there): syscalls per request by
//! kind as the kernel counted them (reads, the reads and writes that
//! returned `EAGAIN`, epoll waits, futex, writes), server CPU per request
//! with paired intervals, and the goal of issue 13 at the fixed-load case.
//! Ratios are always best built-in / external, so below 1 means the
//! built-in variant is cheaper. A run without an external server gives no
//! finding at all.

use std::collections::BTreeMap;

use crate::results::effects::{
    Change, RatioInterval, RepetitionFigures, paired_by_round, unpaired_interval,
};
use crate::results::figures::FIGURES;
use crate::results::workload::Shape;
use crate::results::{CaseResult, ResultsFile, Spread, Status, Summary, VariantResult};
use crate::server::variant::{Backend, Variant};
use crate::sys::SyscallKind;

use super::{Finding, Holds, SERVER_CPU, SUSTAINED_SHARE, SYSCALLS, holds_from, ratio_text};

/// One connection, 64 connections, pipelined, and the fixed load where
/// server CPU per request compares servers at the same work.
pub(super) const PEER_CASES: [&str; 4] = [
    "pingpong-64b-1conn",
    "pingpong-64b-64conn",
    "pipelined-16-64b",
    "fixed-load-25k-64conn",
];
/// The case of the goal claim.
const GOAL_CASE: &str = "fixed-load-25k-64conn";
/// The goal: the best built-in variant's server CPU per request at most
/// this share of the external server's.
const GOAL_RATIO: f64 = 0.95;

/// The syscall kinds shown, by the kernel's name, in groups: reads, epoll
/// waits, futex, writes.
const SHOWN_KINDS: [&[&str]; 4] = [
    &["read", "readv", "recvfrom", "recvmsg"],
    &["epoll_wait", "epoll_pwait", "epoll_pwait2"],
    &["futex"],
    &["write", "writev", "sendto", "sendmsg"],
];

/// For every external server in a case of [`PEER_CASES`]: its syscalls,
/// its server CPU, and the goal, against the best built-in epoll variant.
pub(super) fn findings(results: &ResultsFile) -> Vec<Finding> {
    let cases: Vec<&CaseResult> = PEER_CASES
        .iter()
        .filter_map(|label| results.cases.iter().find(|c| c.label == *label))
        .collect();
    let mut externals: Vec<String> = Vec::new();
    for case in &cases {
        for result in &case.variants {
            let name = result.variant.to_string();
            if result.variant.builtin().is_none() && !externals.contains(&name) {
                externals.push(name);
            }
        }
    }
    let mut out = Vec::new();
    for external in &externals {
        let pairs: Vec<Pair> = cases
            .iter()
            .filter_map(|case| Pair::of(case, external))
            .collect();
        out.push(syscalls_finding(external, &pairs));
        out.push(cpu_finding(external, &pairs));
        out.push(goal_finding(results, external, &pairs));
    }
    out
}

/// One case's comparison of an external server with the best built-in
/// epoll variant, or why there is none.
struct Pair<'a> {
    case: &'a CaseResult,
    external: &'a str,
    compared: Result<Compared, String>,
}

struct Compared {
    builtin: Variant,
    /// Medians by the kernel's syscall name, per request.
    external_kinds: Option<KindMedians>,
    builtin_kinds: Option<KindMedians>,
    /// Every syscall per request, best built-in / external, unpaired
    /// (the external server's come from its counting repetitions).
    syscalls: Ratio,
    /// Server CPU per request, best built-in / external, paired by round.
    server_cpu: Ratio,
}

/// Per-request medians of one server: calls and `EAGAIN` returns by the
/// kernel's name, and every syscall. `eagain` is `None` when not counted.
struct KindMedians {
    calls: BTreeMap<String, f64>,
    eagain: Option<BTreeMap<String, f64>>,
    total: f64,
}

/// Medians of both sides and the interval of built-in / external, or why
/// there is none.
struct Ratio {
    external: Option<f64>,
    builtin: Option<f64>,
    interval: Result<RatioInterval, String>,
}

impl Ratio {
    fn change(&self) -> Option<Change> {
        self.interval.as_ref().ok().map(|i| i.change())
    }

    fn text(&self, what: &str, external: &str, builtin: Variant) -> String {
        let median = |m: Option<f64>| m.map_or("not measured".to_string(), |m| format!("{m:.3}"));
        let interval = match &self.interval {
            Ok(i) => format!("{builtin} / {external} {}", ratio_text(Some(i))),
            Err(why) => format!("no interval ({why})"),
        };
        format!(
            "{what} {} against {}, {interval}",
            median(self.external),
            median(self.builtin)
        )
    }
}

impl<'a> Pair<'a> {
    /// `None` when the case did not run `external`.
    fn of(case: &'a CaseResult, external: &'a str) -> Option<Pair<'a>> {
        let result = case.variants.iter().find(|r| r.variant == *external)?;
        Some(Pair {
            case,
            external,
            compared: compare(case, result),
        })
    }

    fn evidence(&self, line: impl Fn(&Compared) -> String) -> String {
        match &self.compared {
            Ok(c) => format!(
                "`{}`, {} against {} (best built-in epoll): {}",
                self.case.label,
                self.external,
                c.builtin,
                line(c)
            ),
            Err(why) => format!("`{}`, {}: {why}", self.case.label, self.external),
        }
    }
}

fn figure(name: &str) -> &'static crate::results::figures::Figure {
    FIGURES
        .iter()
        .find(|f| f.name == name)
        .expect("a registry figure")
}

fn passed_summary(result: &VariantResult) -> Option<&Summary> {
    result
        .summary
        .as_ref()
        .filter(|_| result.status == Status::Passed)
}

fn compare(case: &CaseResult, external: &VariantResult) -> Result<Compared, String> {
    let Some(external_summary) = passed_summary(external) else {
        return Err(format!(
            "{} failed ({})",
            external.variant,
            external.failure_reasons.join("; ")
        ));
    };
    let cpu = figure(SERVER_CPU);
    let best = case
        .variants
        .iter()
        .filter_map(|r| {
            let v = r.variant.builtin()?;
            let median = (cpu.pick)(passed_summary(r)?)?.median;
            matches!(v.backend, Backend::Epoll(_)).then_some((v, r, median))
        })
        .min_by(|a, b| a.2.total_cmp(&b.2));
    let Some((builtin, builtin_result, _)) = best else {
        return Err("no built-in epoll variant passed to compare with".to_string());
    };
    if let Some(shortfall) = below_offered_load(case, &[external, builtin_result]) {
        return Err(format!("left out, {shortfall}"));
    }
    let builtin_summary = passed_summary(builtin_result).expect("passed above");
    let median = |summary: &Summary, name: &str| (figure(name).pick)(summary).map(|s| s.median);
    let builtin_syscalls = RepetitionFigures::of(builtin_result)
        .values(figure(SYSCALLS))
        .into_values()
        .collect::<Vec<f64>>();
    Ok(Compared {
        builtin,
        external_kinds: external_kinds(external_summary),
        builtin_kinds: builtin_kinds(builtin_summary),
        syscalls: Ratio {
            external: external_summary
                .external_server
                .as_ref()
                .and_then(|e| e.all_syscalls_per_request_total)
                .map(|s| s.median),
            builtin: median(builtin_summary, SYSCALLS),
            interval: unpaired_interval(&external_syscall_values(external), &builtin_syscalls),
        },
        server_cpu: Ratio {
            external: median(external_summary, SERVER_CPU),
            builtin: median(builtin_summary, SERVER_CPU),
            interval: paired_cpu(external, builtin_result),
        },
    })
}

/// Why an open-loop case does not compare these servers at one load: one
/// that completes less than it is offered is saturated, and its cost per
/// request is that of another load.
fn below_offered_load(case: &CaseResult, results: &[&VariantResult]) -> Option<String> {
    let Shape::ConstantRate { rate_per_second } = case.case.shape else {
        return None;
    };
    results.iter().find_map(|r| {
        let completed = r.summary.as_ref()?.requests_per_second.median;
        (completed < SUSTAINED_SHARE * rate_per_second).then(|| {
            format!(
                "{} completed {completed:.0} of the {rate_per_second:.0} req/s offered \
                 (saturated: not the same load)",
                r.variant
            )
        })
    })
}

/// Every syscall per request in each passed counting repetition of an
/// external server.
fn external_syscall_values(external: &VariantResult) -> Vec<f64> {
    external
        .repetitions
        .iter()
        .filter(|r| r.status == Status::Passed && !r.purpose.discarded())
        .filter_map(|r| {
            let total = r
                .external_window
                .as_ref()?
                .counts
                .as_ref()?
                .syscalls
                .as_ref()?
                .total;
            let requests = r.measurement.as_ref()?.requests_completed.max(1);
            Some(total as f64 / requests as f64)
        })
        .collect()
}

/// Server CPU per request, best built-in / external, over the rounds both
/// were timed in.
fn paired_cpu(external: &VariantResult, builtin: &VariantResult) -> Result<RatioInterval, String> {
    let a = RepetitionFigures::of(external).values(figure(SERVER_CPU));
    let b = RepetitionFigures::of(builtin).values(figure(SERVER_CPU));
    paired_by_round(&a, &b)
}

fn medians(map: &BTreeMap<String, Spread>) -> BTreeMap<String, f64> {
    map.iter().map(|(k, s)| (k.clone(), s.median)).collect()
}

fn external_kinds(summary: &Summary) -> Option<KindMedians> {
    let external = summary.external_server.as_ref()?;
    Some(KindMedians {
        calls: medians(&external.syscalls_per_request),
        eagain: external.eagain_per_request.as_ref().map(medians),
        total: external.all_syscalls_per_request_total?.median,
    })
}

/// A built-in variant's in-process counts, renamed to the kernel's names
/// (`epoll_wait` is issued as `epoll_pwait`) to sit beside an external
/// server's. Every call goes through `src/sys`, so the total is all of
/// them.
fn builtin_kinds(summary: &Summary) -> Option<KindMedians> {
    let server = summary.server.as_ref()?;
    let kernel = |map: &BTreeMap<String, Spread>| -> BTreeMap<String, f64> {
        map.iter()
            .map(|(name, s)| {
                let kernel_name =
                    SyscallKind::from_name(name).map_or(name.as_str(), |k| k.kernel_name());
                (kernel_name.to_string(), s.median)
            })
            .collect()
    };
    Some(KindMedians {
        calls: kernel(&server.syscalls_per_request),
        eagain: Some(kernel(&server.eagain_per_request)),
        total: server.syscalls_per_request_total.median,
    })
}

/// `external against builtin` per request for each shown kind either
/// called, then `EAGAIN` returns by kind, then every syscall.
fn kinds_text(external: &KindMedians, builtin: &KindMedians) -> String {
    let get = |map: &BTreeMap<String, f64>, kind: &str| map.get(kind).copied().unwrap_or(0.0);
    let mut parts = Vec::new();
    for group in SHOWN_KINDS {
        let called: Vec<String> = group
            .iter()
            .filter(|k| get(&external.calls, k) > 0.0 || get(&builtin.calls, k) > 0.0)
            .map(|k| {
                format!(
                    "{k} {:.3} against {:.3}",
                    get(&external.calls, k),
                    get(&builtin.calls, k)
                )
            })
            .collect();
        if called.is_empty() {
            parts.push(format!("{} 0 against 0", group.join("/")));
        } else {
            parts.extend(called);
        }
    }
    let eagain = match (&external.eagain, &builtin.eagain) {
        (Some(e), Some(b)) => {
            let mut kinds: Vec<&String> = e.keys().chain(b.keys()).collect();
            kinds.sort();
            kinds.dedup();
            // From +0.0: `sum` of no values is -0.0.
            let total = |m: &BTreeMap<String, f64>| m.values().fold(0.0, |a, b| a + b);
            let by_kind: Vec<String> = kinds
                .iter()
                .map(|k| format!("{k} {:.3} against {:.3}", get(e, k), get(b, k)))
                .collect();
            format!(
                "EAGAIN returns {:.3} against {:.3}{}",
                total(e),
                total(b),
                if by_kind.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", by_kind.join(", "))
                }
            )
        }
        _ => "EAGAIN returns not shown (the kernel did not count them for the external server)"
            .to_string(),
    };
    parts.push(eagain);
    parts.push(format!(
        "all syscalls {:.3} against {:.3}",
        external.total, builtin.total
    ));
    parts.join("; ")
}

fn syscalls_finding(external: &str, pairs: &[Pair]) -> Finding {
    let changes: Vec<Option<Change>> = pairs
        .iter()
        .map(|p| p.compared.as_ref().ok().and_then(|c| c.syscalls.change()))
        .collect();
    let evidence = pairs
        .iter()
        .map(|p| {
            p.evidence(|c| {
                let kinds = match (&c.external_kinds, &c.builtin_kinds) {
                    (Some(e), Some(b)) => format!(
                        "per request, {external} against {}: {}",
                        c.builtin,
                        kinds_text(e, b)
                    ),
                    (None, _) => format!(
                        "syscalls by kind not measured for {external} (no counting repetition)"
                    ),
                    (_, None) => format!("syscalls by kind not measured for {}", c.builtin),
                };
                format!(
                    "{kinds}; {}",
                    c.syscalls.text("syscalls per request", external, c.builtin)
                )
            })
        })
        .collect();
    Finding {
        claim: format!(
            "the best built-in epoll variant makes fewer syscalls per request than {external}"
        ),
        holds: holds_from(&changes, Change::Lower),
        evidence,
    }
}

fn cpu_finding(external: &str, pairs: &[Pair]) -> Finding {
    let changes: Vec<Option<Change>> = pairs
        .iter()
        .map(|p| p.compared.as_ref().ok().and_then(|c| c.server_cpu.change()))
        .collect();
    Finding {
        claim: format!(
            "the best built-in epoll variant costs less server CPU per request than {external}"
        ),
        holds: holds_from(&changes, Change::Lower),
        evidence: pairs
            .iter()
            .map(|p| {
                p.evidence(|c| {
                    c.server_cpu
                        .text("server CPU µs per request", external, c.builtin)
                })
            })
            .collect(),
    }
}

/// Issue 13's goal: it holds only when the interval's upper bound is at
/// most [`GOAL_RATIO`], and does not when its lower bound is above it.
fn goal_finding(results: &ResultsFile, external: &str, pairs: &[Pair]) -> Finding {
    let claim = format!(
        "the best built-in variant's server CPU per request at {GOAL_CASE} is at most \
         {GOAL_RATIO:.2}× {external}'s"
    );
    let Some(pair) = pairs.iter().find(|p| p.case.label == GOAL_CASE) else {
        return Finding {
            claim,
            holds: Holds::NotMeasured,
            evidence: vec![format!("no `{GOAL_CASE}` case with {external}")],
        };
    };
    // Against the goal's ratio instead of 1: below it beyond doubt, above
    // it beyond doubt, or neither.
    let change = pair.compared.as_ref().ok().and_then(|c| {
        let i = c.server_cpu.interval.as_ref().ok()?;
        Some(if i.ci_high <= GOAL_RATIO {
            Change::Lower
        } else if i.ci_low > GOAL_RATIO {
            Change::Higher
        } else {
            Change::NoDifference
        })
    });
    let mut evidence = vec![pair.evidence(|c| {
        c.server_cpu
            .text("server CPU µs per request", external, c.builtin)
    })];
    if let Ok(c) = &pair.compared {
        let builtin = c.builtin.to_string();
        evidence.extend(profile::evidence(results, GOAL_CASE, [&builtin, external]));
    }
    Finding {
        claim,
        holds: holds_from(&[change], Change::Lower),
        evidence,
    }
}

mod profile;
#[cfg(test)]
mod tests;
