//! The blocking thread-per-connection server (`tpc-rw`, issue 14) against
//! the best epoll variant of the same case (least median server CPU per
//! request there, named in the evidence) at 1, 64 and 1,000 connections:
//! server CPU per request, throughput and p99 latency side by side, each
//! with its interval paired by round. No effects axis pairs the two (the
//! baseline is no step along the backend axis), so the pairing is here.

use crate::results::effects::Change;
use crate::results::{CaseResult, ResultsFile};
use crate::server::variant::Variant;

use super::pairing::{Paired, best_epoll, failed, result_of};
use super::{Finding, SERVER_CPU, holds_from};

/// The closed-loop 64 B ping-pong cases, by connection count.
pub(super) const TPC_CASES: [(&str, u32); 3] = [
    ("pingpong-64b-1conn", 1),
    ("pingpong-64b-64conn", 64),
    ("pingpong-64b-1000conn", 1000),
];

pub(super) fn findings(results: &ResultsFile) -> Vec<Finding> {
    TPC_CASES
        .iter()
        .map(|(label, connections)| {
            let case = results.cases.iter().find(|c| c.label == *label);
            against_best_epoll(label, *connections, case)
        })
        .collect()
}

fn against_best_epoll(label: &str, connections: u32, case: Option<&CaseResult>) -> Finding {
    let tpc = Variant::TPC_RW;
    let claim = format!(
        "thread per connection ({tpc}) costs more server CPU per request than the best epoll \
         variant at {} connection{}",
        thousands(connections),
        if connections == 1 { "" } else { "s" }
    );
    let compared = compare(label, case, tpc);
    let (change, evidence) = match compared {
        Ok((change, lines)) => (change, lines),
        Err(why) => (None, vec![why]),
    };
    Finding {
        claim,
        holds: holds_from(&[change], Change::Higher),
        evidence,
    }
}

/// The server CPU change (B: tpc, A: best epoll) and the evidence, or why
/// the case gives none.
fn compare(
    label: &str,
    case: Option<&CaseResult>,
    tpc: Variant,
) -> Result<(Option<Change>, Vec<String>), String> {
    let case = case.ok_or_else(|| format!("no `{label}` case in this run"))?;
    let tpc_result = result_of(case, tpc).ok_or_else(|| format!("`{label}` did not run {tpc}"))?;
    if let Some(why) = failed(tpc_result) {
        return Err(format!("`{label}`: {why}"));
    }
    let (epoll, epoll_result) = best_epoll(case)
        .ok_or_else(|| format!("`{label}`: no epoll variant passed to compare with"))?;
    let cpu = Paired::of(epoll_result, tpc_result, SERVER_CPU);
    let rate = Paired::of(epoll_result, tpc_result, "requests_per_second");
    let p99 = Paired::of(epoll_result, tpc_result, "p99_latency_us");
    let change = cpu.interval().map(|i| i.change());
    let head = format!(
        "`{label}`, {tpc} against {epoll} (best epoll: least median server CPU per request)"
    );
    Ok((
        change,
        vec![
            format!("{head}: {}", cpu.text("server CPU µs per request", 3)),
            format!("{head}: {}", rate.text("requests/s", 0)),
            format!("{head}: {}", p99.text("p99 latency µs", 0)),
        ],
    ))
}

/// `1000` as `1,000`, as the claims write counts.
pub(super) fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
