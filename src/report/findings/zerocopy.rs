//! `MSG_ZEROCOPY` (issue 14): what share of its sends the kernel reports it
//! copied anyway (`SO_EE_CODE_ZEROCOPY_COPIED`), in every case a zerocopy
//! variant ran, and what the path costs in server CPU per request against
//! writev of the same trigger (the strategy it takes the payload copy
//! from). What the path is worth follows from the measured share, not
//! from what the kernel's documentation leads one to expect.

use crate::results::effects::Change;
use crate::results::{CaseResult, ResultsFile, VariantResult};
use crate::server::variant::{CopyMode, Variant};

use super::pairing::{Paired, failed, passed_summary, result_of};
use super::{Finding, Holds, SERVER_CPU, holds_from};

/// A window share at or above this counts as "every send copied": the
/// completions of a window's last sends arrive in the next window.
const ALL_COPIED_PERCENT: f64 = 99.5;

pub(super) fn findings(results: &ResultsFile) -> Vec<Finding> {
    let runs: Vec<(&CaseResult, Variant, &VariantResult)> = results
        .cases
        .iter()
        .flat_map(|case| {
            case.variants.iter().filter_map(move |r| {
                let v = r.variant.builtin()?;
                (v.copy == CopyMode::Zerocopy).then_some((case, v, r))
            })
        })
        .collect();
    vec![copied_share(&runs), cpu_against_writev(&runs)]
}

fn copied_share(runs: &[(&CaseResult, Variant, &VariantResult)]) -> Finding {
    let claim = "the kernel copies MSG_ZEROCOPY sends anyway on this machine, so the path saves \
                 no copy here"
        .to_string();
    let mut evidence = Vec::new();
    // (case, least and median share copied) of every result with completions.
    let mut shares: Vec<(&str, f64, f64)> = Vec::new();
    for (case, v, result) in runs {
        if let Some(why) = failed(result) {
            evidence.push(format!("`{}`: {why}", case.label));
            continue;
        }
        let Some(zc) = passed_summary(result)
            .and_then(|s| s.server.as_ref())
            .and_then(|s| s.zerocopy.as_ref())
        else {
            evidence.push(format!("`{}`, {v}: no zerocopy figures", case.label));
            continue;
        };
        let share = &zc.copied_by_kernel_percent;
        let per_request = format!(
            "per request {:.2} zerocopy sends, {:.2} completed, {:.2} copied by the kernel",
            zc.sends_per_request.median,
            zc.completed_sends_per_request.median,
            zc.copied_sends_per_request.median
        );
        if share.samples == 0 {
            evidence.push(format!(
                "`{}`, {v}: {per_request}; no completion reaped in any window",
                case.label
            ));
            continue;
        }
        shares.push((&case.label, share.min, share.median));
        evidence.push(format!(
            "`{}`, {v}: {per_request}; copied anyway: {:.1}% of completed sends (min {:.1}%, \
             max {:.1}%, {} windows)",
            case.label, share.median, share.min, share.max, share.samples
        ));
    }
    let least = shares.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    let holds = match least {
        None => Holds::NotMeasured,
        Some((case, min, _)) if *min < ALL_COPIED_PERCENT => {
            evidence.push(format!(
                "in some window the kernel sent {:.1}% of completed sends without a copy \
                 (`{case}`): for those sends the copy was saved",
                100.0 - min
            ));
            Holds::No
        }
        Some(_) => {
            evidence.push(
                "every completed send was copied: here MSG_ZEROCOPY only adds pinning and \
                 completion handling; it pays only where the NIC sends from the pinned pages \
                 (a real NIC with scatter-gather DMA), which loopback and veth do not"
                    .to_string(),
            );
            Holds::Yes
        }
    };
    if runs.is_empty() {
        evidence.push("no case ran a zerocopy variant (lt-zerocopy, et-zerocopy)".to_string());
    } else if least.is_none() {
        evidence.push("no zerocopy result reaped a completion".to_string());
    }
    Finding {
        claim,
        holds,
        evidence,
    }
}

fn cpu_against_writev(runs: &[(&CaseResult, Variant, &VariantResult)]) -> Finding {
    let mut evidence = Vec::new();
    let mut changes = Vec::new();
    for (case, v, result) in runs {
        let writev = Variant {
            copy: CopyMode::Writev,
            ..*v
        };
        let Some(baseline) = result_of(case, writev) else {
            evidence.push(format!(
                "`{}`, {v}: {writev} did not run in this case",
                case.label
            ));
            continue;
        };
        let cpu = Paired::of(baseline, result, SERVER_CPU);
        changes.push(cpu.interval().map(|i| i.change()));
        evidence.push(format!(
            "`{}`, {v} against {writev}: {}",
            case.label,
            cpu.text("server CPU µs per request", 3)
        ));
    }
    if evidence.is_empty() {
        evidence.push("no case ran a zerocopy variant (lt-zerocopy, et-zerocopy)".to_string());
    }
    Finding {
        claim: "MSG_ZEROCOPY costs more server CPU per request than writev of the same trigger"
            .to_string(),
        holds: holds_from(&changes, Change::Higher),
        evidence,
    }
}
