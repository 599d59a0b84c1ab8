//! Serving a file (`--protocol file`, issue 14): every variant that served
//! a file case against read+write through a user buffer (the rw variant
//! of its backend), in server CPU per request and payload MB/s, each with
//! its interval paired by round, per response size; and the break-even:
//! the smallest response size from which the strategy costs less server
//! CPU than rw beyond doubt at that size and every larger one. Generic
//! over the variants: whichever strategies serve files, the run says.

use crate::protocol::Protocol;
use crate::report::charts::style::format_bytes;
use crate::results::effects::Change;
use crate::results::workload::SizeDistribution;
use crate::results::{CaseResult, ResultsFile};
use crate::server::variant::{CopyMode, ReadPolicy, Variant};

use super::pairing::{Paired, failed, result_of};
use super::{Finding, Holds, SERVER_CPU};

pub(super) fn findings(results: &ResultsFile) -> Vec<Finding> {
    let cases: Vec<&CaseResult> = results
        .cases
        .iter()
        .filter(|c| c.case.protocol == Protocol::File)
        .collect();
    if cases.is_empty() {
        return vec![Finding {
            claim:
                "a file-serving strategy costs less server CPU per request than read+write from a \
                    break-even response size on"
                    .to_string(),
            holds: Holds::NotMeasured,
            evidence: vec!["no case of the file protocol in this run".to_string()],
        }];
    }
    let mut strategies: Vec<Variant> = Vec::new();
    for case in &cases {
        for v in case.variants.iter().filter_map(|r| r.variant.builtin()) {
            if v != read_write(v) && !strategies.contains(&v) {
                strategies.push(v);
            }
        }
    }
    strategies.sort_by_key(|v| Variant::ALL.iter().position(|w| w == v));
    strategies
        .into_iter()
        .map(|v| break_even(&cases, v))
        .collect()
}

/// What `v` is measured against: read+write through a user buffer on the
/// same backend (so, for epoll, the same trigger), draining as the backend
/// does.
fn read_write(v: Variant) -> Variant {
    Variant {
        copy: CopyMode::ReadWrite,
        read_policy: ReadPolicy::Backend,
        ..v
    }
}

/// The one response size of a case: its sweep point or its fixed size.
fn response_bytes(case: &CaseResult) -> Option<u32> {
    case.case.sweep_size_bytes.or(match case.case.sizes {
        SizeDistribution::Fixed { bytes } => Some(bytes),
        _ => None,
    })
}

fn break_even(cases: &[&CaseResult], v: Variant) -> Finding {
    let rw = read_write(v);
    let claim = format!(
        "{v} costs less server CPU per request than {rw} serving a file, from a break-even \
         response size on"
    );
    let mut evidence = Vec::new();
    // (response size, server CPU change) of every case that compared them.
    let mut by_size: Vec<(u32, Option<Change>, String)> = Vec::new();
    for case in cases {
        let Some(result) = result_of(case, v) else {
            continue;
        };
        let label = &case.label;
        let Some(bytes) = response_bytes(case) else {
            evidence.push(format!("`{label}`: left out, its response sizes vary"));
            continue;
        };
        let size = format_bytes(f64::from(bytes));
        let Some(baseline) = result_of(case, rw) else {
            evidence.push(format!("{size} (`{label}`): {rw} did not run in this case"));
            continue;
        };
        if let Some(why) = failed(result).or_else(|| failed(baseline)) {
            evidence.push(format!("{size} (`{label}`): {why}"));
            continue;
        }
        let cpu = Paired::of(baseline, result, SERVER_CPU);
        let rate = Paired::of(baseline, result, "payload_megabytes_per_second");
        let line = format!(
            "{size} (`{label}`), {v} against {rw}: {}; {}",
            cpu.text("server CPU µs per request", 3),
            rate.text("payload MB/s", 1)
        );
        by_size.push((bytes, cpu.interval().map(|i| i.change()), line));
    }
    by_size.sort_by_key(|(bytes, _, _)| *bytes);
    evidence.extend(by_size.iter().map(|(_, _, line)| line.clone()));
    let cheaper = |change: &Option<Change>| *change == Some(Change::Lower);
    // Every case of a size must agree, so the start is a size's first case.
    let from = (0..by_size.len())
        .filter(|&i| i == 0 || by_size[i - 1].0 != by_size[i].0)
        .find(|&i| by_size[i..].iter().all(|(_, c, _)| cheaper(c)));
    match from {
        Some(i) => Finding {
            claim: format!("{claim}: from {} on", format_bytes(f64::from(by_size[i].0))),
            holds: Holds::Yes,
            evidence,
        },
        None if by_size.iter().any(|(_, c, _)| c.is_some()) => {
            evidence.push(format!(
                "no response size from which {v} costs less than {rw} at it and every larger \
                 size"
            ));
            Finding {
                claim,
                holds: Holds::No,
                evidence,
            }
        }
        None => {
            if evidence.is_empty() {
                evidence.push(format!("no file case ran both {v} and {rw}"));
            }
            Finding {
                claim,
                holds: Holds::NotMeasured,
                evidence,
            }
        }
    }
}
