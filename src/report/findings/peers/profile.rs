//! The goal's evidence from the run's perf profiles (`run --profile-cpu`):
//! where each server's CPU went at the goal case, kernel against user
//! space, and which user-space symbols took the most samples. The goal
//! of issue 13 asks for this when the built-in variant is not clearly
//! cheaper; the lines are there whenever the run has the profiles.

use crate::results::ResultsFile;
use crate::results::cpu_profile::{CpuProfile, CpuProfileTable};

/// User-space symbols named per server in the evidence.
const SYMBOLS_SHOWN: usize = 5;

/// One line per server (the best built-in first), then one setting their
/// sampled user-space CPU per request side by side; or one line saying
/// how to get them.
pub(super) fn evidence(results: &ResultsFile, case: &str, servers: [&str; 2]) -> Vec<String> {
    let profile_of = |server: &str| {
        results
            .cpu_profiles
            .iter()
            .find(|p| p.case == case && p.server == *server)
    };
    if servers.iter().all(|s| profile_of(s).is_none()) {
        return vec![format!(
            "no perf profile of `{case}` in this run (`run --profile-cpu {case}` records one)"
        )];
    }
    let mut out: Vec<String> = servers
        .iter()
        .map(|server| server_line(case, server, profile_of(server)))
        .collect();
    let tables: Vec<Option<&CpuProfileTable>> = servers
        .iter()
        .map(|s| profile_of(s).and_then(|p| p.table.as_ref()))
        .collect();
    if let [Some(a), Some(b)] = tables[..] {
        out.push(format!(
            "sampled user-space CPU per request at `{case}`: {} {:.2} µs against {} {:.2} µs; kernel {:.2} µs against {:.2} µs (perf's own cost included in both)",
            servers[0],
            user_us(a),
            servers[1],
            user_us(b),
            kernel_us(a),
            kernel_us(b),
        ));
    }
    out
}

fn user_us(t: &CpuProfileTable) -> f64 {
    t.sampled_cpu_us_per_request * t.user_share_percent / 100.0
}

fn kernel_us(t: &CpuProfileTable) -> f64 {
    t.sampled_cpu_us_per_request * t.kernel_share_percent / 100.0
}

fn server_line(case: &str, server: &str, profile: Option<&CpuProfile>) -> String {
    let Some(profile) = profile else {
        return format!("perf profile of {server} at `{case}`: not recorded");
    };
    let Some(table) = &profile.table else {
        let why = profile
            .unavailable_reason
            .as_deref()
            .unwrap_or("no samples");
        return format!("perf profile of {server} at `{case}`: unavailable ({why})");
    };
    let symbols: Vec<String> = table
        .top_user_symbols
        .iter()
        .take(SYMBOLS_SHOWN)
        .map(|s| format!("`{}` {:.1}%", s.symbol, s.share_percent))
        .collect();
    format!(
        "perf profile of {server} at `{case}` ({} cpu-clock samples, {:.2} µs per request sampled): {:.1}% kernel, {:.1}% user space; top user-space symbols: {}",
        table.samples_total,
        table.sampled_cpu_us_per_request,
        table.kernel_share_percent,
        table.user_share_percent,
        if symbols.is_empty() {
            "none sampled".to_string()
        } else {
            symbols.join(", ")
        }
    )
}
