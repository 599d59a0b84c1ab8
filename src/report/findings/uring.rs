//! io_uring against epoll, in both currencies: for each copy strategy
//! with an io_uring variant in the run, its syscalls, operations and
//! server CPU per request against the best epoll variant of the same copy
//! strategy (least median server CPU per request in that case), on one
//! connection, 64 connections and pipelined, and where io_uring wins.
//! Intervals are paired over repetitions (`results::effects`), verdicts
//! by [`holds_from`]. A copy strategy whose io_uring variant the run did
//! not measure gives no finding at all.
//!
//! `uring-multishot` gets findings of its own, against the best epoll
//! writev variant: its responses are gathered writes (`IORING_OP_WRITEV`),
//! so writev is its copy strategy, whatever it does on the receiving side.

use crate::results::effects::paired_interval;
use crate::results::effects::{Change, MIN_REPETITIONS, RatioInterval, RepetitionFigures};
use crate::results::figures::FIGURES;
use crate::results::{CaseResult, ResultsFile, Status, VariantResult};
use crate::server::variant::{Backend, CopyMode, Variant};

use super::{Finding, SERVER_CPU, SYSCALLS, holds_from, ratio_text};

/// One connection, 64 connections, pipelined: where the two designs part.
pub(super) const URING_CASES: [&str; 3] = [
    "pingpong-64b-1conn",
    "pingpong-64b-64conn",
    "pipelined-16-64b",
];
const OPERATIONS: &str = "uring_sqes_per_request_total";

/// The io_uring variants compared, each with what its claims call it:
/// the plain variant of every copy strategy, then `uring-multishot`.
fn compared_variants() -> Vec<(Variant, &'static str)> {
    CopyMode::ALL
        .iter()
        .map(|&copy| (Variant::uring(copy), "io_uring"))
        .chain([(Variant::URING_MULTISHOT, "multishot io_uring")])
        .collect()
}

/// The two io_uring findings (syscalls; server CPU and where io_uring
/// wins) of every io_uring variant ([`compared_variants`]) that is in a
/// case of [`URING_CASES`].
pub(super) fn findings(results: &ResultsFile) -> Vec<Finding> {
    let mut out = Vec::new();
    for (uring, subject) in compared_variants() {
        let copy = uring.copy;
        let cases: Vec<&CaseResult> = URING_CASES
            .iter()
            .filter_map(|label| results.cases.iter().find(|c| c.label == *label))
            .filter(|case| result_of(case, uring).is_some())
            .collect();
        if cases.is_empty() {
            continue;
        }
        let pairs: Vec<Pair> = cases.iter().map(|case| Pair::of(case, uring)).collect();
        out.push(syscalls_finding(subject, copy, &pairs));
        out.push(cpu_finding(subject, copy, &pairs));
    }
    out
}

/// One case's comparison: io_uring against the best epoll variant of its
/// copy strategy, or why there is none.
struct Pair<'a> {
    case: &'a str,
    uring: Variant,
    compared: Result<Compared, String>,
}

struct Compared {
    epoll: Variant,
    syscalls: Figure,
    /// io_uring's operations (SQEs) against epoll's syscalls: on epoll each
    /// syscall is one operation.
    operations: Figure,
    server_cpu: Figure,
}

/// Medians (A: epoll, B: io_uring) and the paired interval of B/A.
struct Figure {
    epoll: f64,
    uring: f64,
    interval: Option<RatioInterval>,
}

impl Figure {
    fn change(&self) -> Option<Change> {
        self.interval.map(|i| i.change())
    }

    fn text(&self, what: &str) -> String {
        format!(
            "{what} {:.3} against {:.3}, {}",
            self.uring,
            self.epoll,
            ratio_text(self.interval.as_ref())
        )
    }
}

impl<'a> Pair<'a> {
    fn of(case: &'a CaseResult, uring: Variant) -> Pair<'a> {
        Pair {
            case: &case.label,
            uring,
            compared: compare(case, uring),
        }
    }

    fn evidence(&self, lines: impl Fn(&Compared) -> String) -> String {
        match &self.compared {
            Ok(c) => format!(
                "`{}`, {} against {}: {}",
                self.case,
                self.uring,
                c.epoll,
                lines(c)
            ),
            Err(why) => format!("`{}`, {}: {why}", self.case, self.uring),
        }
    }
}

fn result_of(case: &CaseResult, v: Variant) -> Option<&VariantResult> {
    case.variants
        .iter()
        .find(|r| r.variant.builtin() == Some(v))
}

fn figure(name: &str) -> &'static crate::results::figures::Figure {
    FIGURES
        .iter()
        .find(|f| f.name == name)
        .expect("a registry figure")
}

fn compare(case: &CaseResult, uring: Variant) -> Result<Compared, String> {
    let uring_result = result_of(case, uring).expect("only cases with the variant");
    if uring_result.status != Status::Passed {
        return Err(format!(
            "{uring} failed ({})",
            uring_result.failure_reasons.join("; ")
        ));
    }
    let cpu = figure(SERVER_CPU);
    let best = case
        .variants
        .iter()
        .filter(|r| r.status == Status::Passed)
        .filter_map(|r| {
            let v = r.variant.builtin()?;
            let is_epoll = matches!(v.backend, Backend::Epoll(_)) && v.copy == uring.copy;
            let median = (cpu.pick)(r.summary.as_ref()?)?.median;
            is_epoll.then_some((v, r, median))
        })
        .min_by(|a, b| a.2.total_cmp(&b.2));
    let Some((epoll, epoll_result, _)) = best else {
        return Err(format!(
            "no epoll {} variant passed to compare with",
            uring.copy.name()
        ));
    };
    let (a, b) = (
        RepetitionFigures::of(epoll_result),
        RepetitionFigures::of(uring_result),
    );
    let paired = |a_name: &str, b_name: &str| {
        let a_values = a.values(figure(a_name));
        let b_values = b.values(figure(b_name));
        let (pa, pb): (Vec<f64>, Vec<f64>) = a_values
            .iter()
            .filter_map(|(i, va)| Some((*va, *b_values.get(i)?)))
            .unzip();
        let interval = if pa.len() >= MIN_REPETITIONS {
            paired_interval(&pa, &pb).ok()
        } else {
            None
        };
        let median = |name: &str, r: &VariantResult| {
            r.summary
                .as_ref()
                .and_then(figure(name).pick)
                .map_or(f64::NAN, |s| s.median)
        };
        Figure {
            epoll: median(a_name, epoll_result),
            uring: median(b_name, uring_result),
            interval,
        }
    };
    Ok(Compared {
        epoll,
        syscalls: paired(SYSCALLS, SYSCALLS),
        operations: paired(SYSCALLS, OPERATIONS),
        server_cpu: paired(SERVER_CPU, SERVER_CPU),
    })
}

fn syscalls_finding(subject: &str, copy: CopyMode, pairs: &[Pair]) -> Finding {
    let changes: Vec<Option<Change>> = pairs
        .iter()
        .map(|p| p.compared.as_ref().ok().and_then(|c| c.syscalls.change()))
        .collect();
    Finding {
        claim: format!(
            "{subject} makes fewer syscalls per request than the best epoll {} variant, though \
             not fewer operations",
            copy.name()
        ),
        holds: holds_from(&changes, Change::Lower),
        evidence: pairs
            .iter()
            .map(|p| {
                p.evidence(|c| {
                    format!(
                        "{}; {} (each epoll syscall is one operation)",
                        c.syscalls.text("syscalls per request"),
                        c.operations
                            .text("io_uring operations (SQEs) per request against syscalls")
                    )
                })
            })
            .collect(),
    }
}

fn cpu_finding(subject: &str, copy: CopyMode, pairs: &[Pair]) -> Finding {
    let changes: Vec<Option<Change>> = pairs
        .iter()
        .map(|p| p.compared.as_ref().ok().and_then(|c| c.server_cpu.change()))
        .collect();
    let mut evidence: Vec<String> = pairs
        .iter()
        .map(|p| p.evidence(|c| c.server_cpu.text("server CPU µs per request")))
        .collect();
    let with = |change: Change| -> Vec<String> {
        pairs
            .iter()
            .zip(&changes)
            .filter(|(_, c)| **c == Some(change))
            .map(|(p, _)| format!("`{}`", p.case))
            .collect()
    };
    let (wins, losses) = (with(Change::Lower), with(Change::Higher));
    evidence.push(if wins.is_empty() {
        format!("{subject} wins on server CPU in none of these cases")
    } else {
        format!("{subject} wins on server CPU in {}", wins.join(", "))
    });
    if !losses.is_empty() {
        evidence.push(format!("epoll wins in {}", losses.join(", ")));
    }
    Finding {
        claim: format!(
            "{subject} costs less server CPU per request than the best epoll {} variant",
            copy.name()
        ),
        holds: holds_from(&changes, Change::Lower),
        evidence,
    }
}
