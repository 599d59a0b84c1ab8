//! The run-level parts of `summary.md` around the case tables: the
//! machine's limits, the windows repeated for steal, what the instruments
//! cost, and what an external server's kernel counts say by kind.

use std::fmt::Write;

use super::cells::{number, optional_cell, spread_cell};
use crate::metrics::cpu_steal::STEAL_WARN_PERCENT;
use crate::results::ResultsFile;

/// The timing windows measured again because the hypervisor took too
/// much of the machine's CPU time in them; empty when there were none.
pub fn steal_repeats_note(results: &ResultsFile) -> String {
    let discarded: Vec<String> = results
        .variant_results()
        .flat_map(|(case, v)| {
            v.repetitions
                .iter()
                .filter(|r| r.purpose.discarded())
                .map(move |r| {
                    format!(
                        "{} / {} repetition {} ({:.0}%)",
                        case.label,
                        v.variant,
                        r.index + 1,
                        r.cpu_steal_percent().unwrap_or(f64::NAN)
                    )
                })
        })
        .collect();
    if discarded.is_empty() {
        return String::new();
    }
    format!(
        "**CPU steal**: {} timing window{} lost {STEAL_WARN_PERCENT:.0}% or more of the machine's CPU time to the hypervisor and {} measured again (at most 2 per case; the stolen windows stay in results.json as `purpose: discarded_steal` and count in no figure): {}.\n\n",
        discarded.len(),
        if discarded.len() == 1 { "" } else { "s" },
        if discarded.len() == 1 { "was" } else { "were" },
        discarded.join("; ")
    )
}

/// What the instruments cost the server, when the run measured it
/// (`run --instrument-cost`); empty otherwise.
pub fn instrument_cost_section(results: &ResultsFile) -> String {
    let Some(cost) = &results.instrument_cost else {
        return String::new();
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Instrument cost

{} at {} req/s offered (open loop) × {} connections × {} B, {} interleaved rounds of {:.2} s windows; server CPU µs per request, median ±CV:
",
        cost.variant,
        number(cost.offered_rate_per_second),
        cost.connections,
        cost.payload_bytes,
        cost.rounds,
        cost.window_seconds
    );
    let _ = writeln!(
        out,
        "| server | CPU µs/req | req/s | syscalls/req | cost |\n|---|---|---|---|---|"
    );
    let settings = [
        ("no instruments", &cost.no_instruments, None),
        (
            "in-process counting (timing windows)",
            &cost.syscall_counting,
            Some(&cost.syscall_counting_cost_percent),
        ),
        (
            "+ kernel counters (counting windows)",
            &cost.syscall_and_kernel_counting,
            Some(&cost.kernel_counters_cost_percent),
        ),
    ];
    for (name, setting, extra) in settings {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} |",
            spread_cell(&setting.server_cpu_us_per_request),
            spread_cell(&setting.requests_per_second),
            optional_cell(setting.syscalls_per_request_total.as_ref()),
            extra.map_or("–".to_string(), |p| format!(
                "{:+.1}% (rounds {:+.1} to {:+.1}%)",
                p.median, p.min, p.max
            )),
        );
    }
    let _ = writeln!(
        out,
        "\nKernel counters: {:.3} µs per counted syscall. In-process counting, the only instrument in timing windows, costs {:+.1}% of server CPU per request: {} the {:.0}% limit. Costs are paired per round; on a shared machine their spread across rounds can be larger than the costs.\n",
        cost.kernel_counters_cost_us_per_syscall,
        cost.syscall_counting_cost_percent.median,
        if cost.timing_window_within_limit {
            "within"
        } else {
            "above"
        },
        cost.timing_window_limit_percent
    );
    out
}

/// "Machine limits": what this machine allowed when the run started
/// (`epoll-bench limits`), to read the tables' throughput against; nothing
/// when the run did not measure it.
pub fn machine_limits_section(out: &mut String, results: &ResultsFile) {
    let Some(limits) = &results.machine_limits else {
        return;
    };
    let _ = writeln!(
        out,
        "## Machine limits\n\nMeasured by the tool before the first case (`epoll-bench limits{}`): median over {} trials, min–max. Loopback moves {} B messages; echo figures count each direction.\n",
        if limits.quick { " --quick" } else { "" },
        limits.null_syscall_ns.samples,
        limits.loopback_message_bytes
    );
    let _ = writeln!(out, "| limit | median | min – max |\n|---|---:|---|");
    for figure in limits.figures() {
        let (unit, spread) = (figure.unit, figure.spread);
        let _ = writeln!(
            out,
            "| {} | {} | {} – {} |",
            figure.describe(limits),
            unit.format(spread.median),
            unit.format(spread.min),
            unit.format(spread.max)
        );
    }
    out.push('\n');
}

/// An external server's syscalls by kind, as the kernel counted them
/// (kernel names: `epoll_pwait`, `futex`), largest first.
pub fn external_syscalls_note(
    variant: &str,
    external: &crate::results::external::ExternalServerSummary,
) -> String {
    let Some(all) = external.all_syscalls_per_request_total else {
        return format!("{variant}: syscalls by kind unavailable (no counting repetition).");
    };
    let mut kinds: Vec<(&String, f64)> = external
        .syscalls_per_request
        .iter()
        .map(|(kind, spread)| (kind, spread.median))
        .collect();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    let listed: Vec<String> = kinds
        .iter()
        .map(|(kind, per_request)| format!("{kind} {}", number(*per_request)))
        .collect();
    let eagain = match &external.eagain_per_request {
        Some(by_kind) if by_kind.is_empty() => " No call returned EAGAIN.".to_string(),
        Some(by_kind) => {
            let listed: Vec<String> = by_kind
                .iter()
                .map(|(kind, spread)| format!("{kind} {}", number(spread.median)))
                .collect();
            format!(" EAGAIN returns/req by kind: {}.", listed.join(", "))
        }
        None => " EAGAIN returns unavailable (the kernel did not count them).".to_string(),
    };
    format!(
        "{variant}: kernel syscalls/req by kind (all its threads): {} of {} in all.{eagain}",
        listed.join(", "),
        number(all.median)
    )
}
