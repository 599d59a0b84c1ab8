//! `summary.md`: tables ready to paste into a design review. One table per
//! case, one row per variant; every cell is the median over repetitions
//! with its coefficient of variation, and noisy cells (CV above
//! [`NOISY_CV_PERCENT`]) are marked. Failed results show why, never numbers.
//! The figure columns are the registry's [`figures::summary_figures`].
//! After each case's table, its effects ([`crate::results::effects`]):
//! ratios between variants with intervals, computed here from the stored
//! repetitions, so older results get them too.

use std::fmt::Write;

use super::cells::optional_cell;
pub use super::cells::{NOISY_MARK, number, spread_cell};
use super::run_notes::{
    external_syscalls_note, instrument_cost_section, machine_limits_section, steal_repeats_note,
};
use super::{ExportError, Exporter};
use crate::metrics::cpu_steal::STEAL_WARN_PERCENT;
use crate::metrics::cross_check::CrossCheck;
use crate::results::connection_memory;
use crate::results::effects::{self, CONFIDENCE_PERCENT, Effect};
use crate::results::figures::{self, FIGURES, Figure, Group};
use crate::results::other_load;
use crate::results::workload::{Shape, SizeDistribution};
use crate::results::{
    CaseResult, DriverBottleneck, NOISY_CV_PERCENT, ResultsFile, RunStatus, Spread, Status,
    VariantResult,
};
use crate::sys::SyscallKind;

pub struct MarkdownExporter;

/// At most this many per-kind syscall columns per table.
const MAX_KIND_COLUMNS: usize = 6;
/// Kinds below this many calls per request in every variant get no column.
const MIN_KIND_PER_REQUEST: f64 = 0.01;

impl Exporter for MarkdownExporter {
    fn file_name(&self) -> &'static str {
        "summary.md"
    }

    fn render(&self, results: &ResultsFile) -> Result<Vec<u8>, ExportError> {
        Ok(summary_markdown(results).into_bytes())
    }
}

/// Keeps free text (failure reasons) from breaking the table.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn describe_case(case: &CaseResult) -> String {
    let c = &case.case;
    let shape = match &c.shape {
        Shape::PingPong => "ping-pong".to_string(),
        Shape::Pipelined { depth } => format!("pipelined, depth {depth}"),
        Shape::ConstantRate { rate_per_second } => {
            format!("open loop, {} req/s", number(*rate_per_second))
        }
        Shape::Bulk { window_bytes } => {
            format!("bulk, {} B in flight", number(*window_bytes as f64))
        }
        Shape::Churn {
            requests_per_connection,
        } => format!("churn, {requests_per_connection} requests per connection"),
        Shape::IdleActive { idle_connections } => {
            format!("{idle_connections} idle connections beside the active ones")
        }
        Shape::Trace { path, speed } => format!("trace {} at {speed}× speed", path.display()),
    };
    let sizes = match &c.sizes {
        SizeDistribution::Fixed { bytes } => format!("{bytes} B"),
        SizeDistribution::Uniform {
            min_bytes,
            max_bytes,
        } => format!("uniform {min_bytes}–{max_bytes} B"),
        SizeDistribution::LogNormal {
            median_bytes,
            sigma,
            max_bytes,
        } => format!("log-normal, median {median_bytes} B, σ {sigma}, max {max_bytes} B"),
        SizeDistribution::Bimodal {
            small_bytes,
            large_bytes,
            large_fraction,
        } => format!("bimodal {small_bytes} B / {large_bytes} B ({large_fraction} large)"),
        SizeDistribution::FromTrace {
            mean_bytes,
            max_bytes,
        } => format!(
            "sizes from the trace, mean {} B, max {max_bytes} B",
            number(*mean_bytes)
        ),
    };
    let connections = if c.connections == 1 {
        "1 connection".to_string()
    } else {
        format!("{} connections", c.connections)
    };
    format!(
        "{} protocol · {shape} · {connections} · {sizes}",
        c.protocol.name()
    )
}

/// The per-kind columns of one table: kinds that matter in some variant,
/// in [`SyscallKind::ALL`] order.
fn kind_columns(case: &CaseResult) -> Vec<&'static str> {
    let mut kinds: Vec<(&'static str, f64)> = SyscallKind::ALL
        .iter()
        .map(|k| k.name())
        .filter_map(|name| {
            let peak = case
                .variants
                .iter()
                .filter_map(|v| v.summary.as_ref()?.server.as_ref())
                .filter_map(|s| s.syscalls_per_request.get(name))
                .map(|s| s.median)
                .fold(0.0, f64::max);
            (peak >= MIN_KIND_PER_REQUEST).then_some((name, peak))
        })
        .collect();
    if kinds.len() > MAX_KIND_COLUMNS {
        let mut by_weight = kinds.clone();
        by_weight.sort_by(|a, b| b.1.total_cmp(&a.1));
        let keep: Vec<&str> = by_weight[..MAX_KIND_COLUMNS].iter().map(|k| k.0).collect();
        kinds.retain(|k| keep.contains(&k.0));
    }
    kinds.into_iter().map(|k| k.0).collect()
}

/// A figure column of a case table.
#[derive(Clone, Copy)]
enum Column<'a> {
    /// A registry figure with its heading.
    Figure(&'static Figure, &'static str),
    /// One syscall kind's calls per request.
    Kind(&'a str),
}

/// The figure columns of a case table: the registry's summary figures,
/// with the per-kind syscall columns after the last syscall figure, and
/// io_uring operations (right after them) only where a variant has them.
fn columns<'a>(kinds: &[&'a str], uring: bool) -> Vec<Column<'a>> {
    let mut out: Vec<Column> = figures::summary_figures()
        .filter(|(figure, _)| uring || figure.group != Group::UringOps)
        .map(|(figure, heading)| Column::Figure(figure, heading))
        .collect();
    let after_syscalls = out
        .iter()
        .rposition(|c| matches!(c, Column::Figure(f, _) if f.group == Group::Syscalls))
        .map_or(out.len(), |i| i + 1);
    out.splice(
        after_syscalls..after_syscalls,
        kinds.iter().map(|k| Column::Kind(k)),
    );
    out
}

/// Whether some variant of `case` has io_uring operations.
fn has_uring_ops(case: &CaseResult) -> bool {
    case.variants
        .iter()
        .filter_map(|v| v.summary.as_ref()?.server.as_ref())
        .any(|s| s.uring_ops.is_some())
}

fn variant_row(v: &VariantResult, kinds: &[&str], uring: bool, width: usize) -> String {
    let Some(s) = v.summary.as_ref().filter(|_| v.status == Status::Passed) else {
        let mut cells = vec![
            v.variant.to_string(),
            format!("**FAILED**: {}", escape(&v.failure_reasons.join("; "))),
        ];
        cells.resize(width, "—".to_string());
        return format!("| {} |", cells.join(" | "));
    };
    let server = s.server.as_ref();
    let mut name = v.variant.to_string();
    match s.driver_bottleneck() {
        Some(DriverBottleneck::DriverOnly { .. }) => name.push_str(" (driver-bound)"),
        Some(_) => name.push_str(" (driver saturated)"),
        None => {}
    }
    let mut cells = vec![name];
    for column in columns(kinds, uring) {
        cells.push(match column {
            Column::Figure(figure, _) => optional_cell((figure.pick)(s).as_ref()),
            Column::Kind(kind) => {
                optional_cell(server.map(|s| s.syscalls_per_request.get(kind).unwrap_or(&ZERO)))
            }
        });
    }
    cells.push(
        match s.kernel_cross_check_passed {
            Some(true) => "passed",
            Some(false) => "**FAILED**",
            None => "n/a",
        }
        .to_string(),
    );
    format!("| {} |", cells.join(" | "))
}

const ZERO: Spread = Spread {
    median: 0.0,
    min: 0.0,
    max: 0.0,
    cv_percent: 0.0,
    samples: 0,
};

fn case_table(out: &mut String, case: &CaseResult, logical_cpus: usize) {
    let kinds = kind_columns(case);
    let uring = has_uring_ops(case);
    let mut header = vec!["variant".to_string()];
    header.extend(
        columns(&kinds, uring)
            .into_iter()
            .map(|column| match column {
                Column::Figure(_, heading) => heading.to_string(),
                Column::Kind(kind) => format!("{kind}/req"),
            }),
    );
    header.push("kernel check".into());
    let _ = writeln!(out, "## {}\n", case.label);
    let _ = writeln!(out, "{}\n", describe_case(case));
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let align: Vec<&str> = std::iter::once(":---")
        .chain(std::iter::repeat_n("---:", header.len() - 1))
        .collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for v in &case.variants {
        let _ = writeln!(out, "{}", variant_row(v, &kinds, uring, header.len()));
    }
    let mut notes = Vec::new();
    let mut unavailable_noted = false;
    for v in &case.variants {
        let checks: Vec<&CrossCheck> = v
            .repetitions
            .iter()
            .filter_map(|r| r.kernel_cross_check.as_ref())
            .collect();
        let failed: Vec<&&CrossCheck> = checks
            .iter()
            .filter(|c| c.passed() == Some(false))
            .collect();
        if let Some(first) = failed.first() {
            notes.push(format!(
                "{}: kernel cross-check failed in {} of {} windows; first: {}",
                v.variant,
                failed.len(),
                checks.len(),
                escape(&first.to_string())
            ));
        }
        if !unavailable_noted && let Some(check) = checks.iter().find(|c| c.passed().is_none()) {
            unavailable_noted = true;
            notes.push(escape(&check.to_string()));
        }
    }
    for v in &case.variants {
        match (&v.server_side_unavailable_reason, &v.external_command) {
            // The reason says what is unavailable and what is not.
            (Some(reason), Some(_)) => notes.push(format!("{}: {}.", v.variant, escape(reason))),
            (Some(reason), None) => notes.push(format!(
                "{}: server-side figures unavailable ({reason}).",
                v.variant
            )),
            (None, _) => {}
        }
        if let Some(external) = v.summary.as_ref().and_then(|s| s.external_server.as_ref()) {
            notes.push(external_syscalls_note(&v.variant.to_string(), external));
        }
        if let Some(zerocopy) = v
            .summary
            .as_ref()
            .and_then(|s| s.server.as_ref()?.zerocopy.as_ref())
        {
            notes.push(format!("{}: {}.", v.variant, zerocopy.describe()));
        }
        if let Some(buffers) = v
            .summary
            .as_ref()
            .and_then(|s| s.server.as_ref()?.buffers.as_ref())
        {
            notes.push(format!("{}: {}.", v.variant, buffers.describe()));
        }
        if let Some((index, memory)) = connection_memory::first_passed(&v.repetitions) {
            let line = memory.summary_line();
            notes.push(format!("{}: {line} (repetition {index}).", v.variant));
        }
        if let Some(bottleneck) = v.summary.as_ref().and_then(|s| s.driver_bottleneck()) {
            notes.push(format!("{}: {}.", v.variant, bottleneck.describe()));
        }
        if let Some(steal) = v
            .summary
            .as_ref()
            .and_then(|s| s.cpu_steal_percent)
            .filter(|steal| steal.max >= STEAL_WARN_PERCENT)
        {
            notes.push(format!(
                "{}: the hypervisor took up to {:.0}% of the machine's CPU time in a window (steal; median {:.0}%): these figures carry the host's contention, rerun on a quieter machine.",
                v.variant, steal.max, steal.median
            ));
        }
        let other_load = v
            .repetitions
            .iter()
            .filter(|r| r.purpose.gives_time() && !r.purpose.discarded())
            .filter_map(|r| other_load::other_load_percent(r, logical_cpus))
            .fold(None, |most: Option<f64>, p| {
                Some(most.map_or(p, |m| m.max(p)))
            });
        if let Some(most) = other_load.filter(|p| *p >= other_load::OTHER_LOAD_FLAG_PERCENT) {
            notes.push(format!(
                "{}: other processes took up to {most:.0}% of the machine's CPU time in a window (beside the server and the driver): these figures were measured beside competing load, rerun on a quiet machine.",
                v.variant
            ));
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out.push('\n');
    effects_table(out, &effects::case_effects(case));
}

/// How the effects table names a figure: its summary column heading.
fn figure_heading(name: &str) -> &str {
    FIGURES
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.summary_column)
        .unwrap_or(name)
}

/// The case's effects as one compact table; nothing when the case has no
/// pair of variants to compare.
fn effects_table(out: &mut String, effects: &[Effect]) {
    if effects.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Effects\n");
    let _ = writeln!(
        out,
        "B/A: ratio of geometric means over repetitions paired by index, with its {CONFIDENCE_PERCENT:.0}% interval (Student's t on the paired log-ratios; README: Methodology).\n"
    );
    let _ = writeln!(
        out,
        "| B / A | figure | B/A | {CONFIDENCE_PERCENT:.0}% CI | verdict |"
    );
    let _ = writeln!(out, "|:---|:---|---:|---:|:---|");
    for effect in effects {
        let (ratio, interval) = match &effect.interval {
            Some(i) => (
                format!("{:.3}", i.ratio),
                format!("{:.3}–{:.3}", i.ci_low, i.ci_high),
            ),
            None => ("—".to_string(), "—".to_string()),
        };
        let verdict = if effect
            .interval
            .is_some_and(|i| i.change() != effects::Change::NoDifference)
        {
            format!("**{}**", escape(&effect.verdict))
        } else {
            escape(&effect.verdict)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {ratio} | {interval} | {verdict} |",
            effect.comparison.name(),
            figure_heading(effect.figure)
        );
    }
    out.push('\n');
}

/// The whole `summary.md`.
pub fn summary_markdown(results: &ResultsFile) -> String {
    let mut out = String::new();
    let run = &results.run;
    let env = &results.environment;
    let _ = writeln!(out, "# epoll-bench results\n");
    if run.status == RunStatus::Incomplete {
        let _ = writeln!(
            out,
            "**Incomplete run**: {}. Only what finished is shown.\n",
            run.incomplete_reason.as_deref().unwrap_or("interrupted")
        );
    }
    let settings = &run.settings;
    let _ = writeln!(
        out,
        "Started {} · {} repetitions · warm-up {:.2} s · window {:.2} s · {} passed, {} failed",
        run.started_at_utc,
        settings.repetitions_planned,
        settings.warmup_seconds,
        settings.duration_seconds,
        run.passed_count,
        run.failed_count
    );
    if let Some(buffers) = settings.server_buffers {
        let _ = writeln!(out, "\nServer buffers: {}", buffers.name());
    }
    let pinning = match (&env.pinning.server_cpus, &env.pinning.driver_cpus) {
        (Some(s), Some(d)) => format!(
            "server on CPUs {s:?}, driver on CPUs {d:?} ({})",
            env.pinning.method
        ),
        _ => format!("not pinned ({})", env.pinning.method),
    };
    let commit: String = env.git_commit.chars().take(12).collect();
    let _ = writeln!(
        out,
        "\nMachine: {}, {} CPUs, Linux {} · {} · {} build · commit {}{}\n",
        env.cpu_model,
        env.logical_cpus,
        env.kernel_release,
        pinning,
        env.build_profile,
        commit,
        if env.git_dirty == Some(true) {
            " (dirty)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "Cells: median over repetitions ±coefficient of variation; {NOISY_MARK} marks CV above {NOISY_CV_PERCENT}% (noisy). Server figures are per request completed by the driver inside the measured window; min and max are in results.csv.\n"
    );
    let _ = writeln!(
        out,
        "Syscall sources: `syscalls/req` and the per-kind columns are the server's in-process counts (every call through src/sys); `kernel syscalls/req` is the kernel's count of the same serving threads (perf tracepoints `syscalls:sys_enter_*`), read in the same instant (for an external server: every syscall of all its threads, counted from outside), in the counting repetition only (the counters slow every call, so timing repetitions run without them); `kernel check` says whether the two agree within 1% for every kind in that repetition.\n"
    );
    machine_limits_section(&mut out, results);
    out.push_str(&steal_repeats_note(results));
    for case in &results.cases {
        case_table(&mut out, case, results.environment.logical_cpus);
    }
    out.push_str(&not_applicable_section(results));
    out.push_str(&instrument_cost_section(results));
    out.push_str(&super::cpu_profile::cpu_profile_section(results));
    out
}

/// The (case, variant) pairs the run left out, one line per reason with
/// its cases; empty when none were.
fn not_applicable_section(results: &ResultsFile) -> String {
    use crate::results::not_applicable::by_reason;
    if results.not_applicable.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "## Not applicable\n\nLeft out of these cases (not measured, not failed):\n\n",
    );
    for (reason, cases) in by_reason(&results.not_applicable) {
        let _ = writeln!(out, "- not applicable: {reason} ({})", cases.join(", "));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    fn rows_of<'a>(md: &'a str, label: &str) -> Vec<Vec<&'a str>> {
        let start = md.find(&format!("## {label}\n")).unwrap();
        md[start..]
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect()
    }

    #[test]
    fn the_instrument_cost_is_shown_when_measured() {
        let mut results = fixture::results();
        let md = summary_markdown(&results);
        assert!(md.contains("## Instrument cost"), "{md}");
        assert!(
            md.contains("costs +0.5% of server CPU per request: within the 1% limit"),
            "{md}"
        );
        assert!(
            md.contains("| + kernel counters (counting windows) |"),
            "{md}"
        );
        results.instrument_cost = None;
        assert!(!summary_markdown(&results).contains("Instrument cost"));
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(number(1234567.4), "1,234,567");
        assert_eq!(number(1100.0), "1,100");
        assert_eq!(number(240.4), "240");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(1.0), "1.00");
        assert_eq!(number(0.0704), "0.070");
        assert_eq!(number(0.0), "0");
    }

    #[test]
    fn io_uring_operations_are_shown_beside_syscalls_only_where_present() {
        let md = summary_markdown(&fixture::results_with_uring());
        let rows = rows_of(&md, "pingpong-64b-1conn");
        let column = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
        let ops = column("io_uring ops/req");
        assert_eq!(ops, column("write/req") + 1, "{:?}", rows[0]);
        let uring = rows.iter().find(|r| r[0] == "uring-rw").unwrap();
        assert_eq!(uring[column("syscalls/req")], "0.200 ±0.0%");
        assert_eq!(uring[ops], "2.10 ±0.0%");
        let lt_rw = rows.iter().find(|r| r[0] == "lt-rw").unwrap();
        assert_eq!(lt_rw[ops], "n/a");
        // A table without io_uring variants has no such column.
        let size_sweep = rows_of(&md, "size-sweep/4096");
        assert!(!size_sweep[0].contains(&"io_uring ops/req"));
    }

    #[test]
    fn one_table_per_case_with_expected_cells() {
        let md = summary_markdown(&fixture::results());
        let rows = rows_of(&md, "pingpong-64b-1conn");
        assert_eq!(
            rows[0],
            [
                "variant",
                "req/s",
                "MB/s",
                "p50 µs",
                "p99 µs",
                "p99.9 µs",
                "syscalls/req",
                "kernel syscalls/req",
                "epoll_wait/req",
                "read/req",
                "write/req",
                "copied B/req",
                "server CPU µs/req",
                "kernel check"
            ]
        );
        let lt_rw = &rows[2];
        assert_eq!(lt_rw[0], "lt-rw");
        assert_eq!(lt_rw[1], "1,100 ±9.1% ⚠");
        assert_eq!(lt_rw[3], "60.0 ±16.7% ⚠");
        assert_eq!(lt_rw[6], "3.00 ±0.0%");
        // Kernel counts exist for one repetition only: not summarised.
        assert_eq!(lt_rw[7], "n/a");
        assert_eq!(lt_rw[9], "1.00 ±0.0%");
        assert_eq!(lt_rw[11], "128 ±0.0%");
        assert_eq!(lt_rw[12], "10.0 ±0.0%");
        assert_eq!(lt_rw[13], "n/a");
        assert!(md.contains("- kernel cross-check unavailable: fixture: perf_event_paranoid is 3"));
        assert_eq!(lt_rw.len(), rows[0].len());
        let et_rw = &rows[3];
        assert_eq!(et_rw[0], "et-rw");
        assert_eq!(et_rw[1], "**FAILED**: 1 payload mismatch");
        assert!(et_rw[2..].iter().all(|c| *c == "—"));
        assert_eq!(et_rw.len(), rows[0].len());
        assert!(md.contains("et-rw: server-side figures unavailable (fixture: no reason)."));
        assert!(md.contains("## size-sweep/4096\n"));
        assert!(md.contains("2 passed, 1 failed"));
    }

    #[test]
    fn effects_follow_each_case_table_and_a_failed_variant_has_no_number() {
        let md = summary_markdown(&fixture::results());
        let start = md.find("## pingpong-64b-1conn\n").unwrap();
        let end = md.find("## size-sweep/4096\n").unwrap();
        let case = &md[start..end];
        let effects = case.find("### Effects\n").expect("an effects section");
        assert!(effects > case.find("| lt-rw |").unwrap(), "after the table");
        assert!(
            case.contains("| B / A | figure | B/A | 95% CI | verdict |"),
            "{case}"
        );
        assert!(
            case.contains("| et-rw / lt-rw | server CPU µs/req | — | — | not enough data: `et-rw` failed (1 payload mismatch) |"),
            "{case}"
        );
        assert_eq!(case.matches("| et-rw / lt-rw |").count(), 5, "{case}");
        // One variant: nothing to compare, no section.
        assert!(!md[end..].contains("### Effects"));
    }

    #[test]
    fn kernel_disagreements_are_listed_per_variant() {
        let mut results = fixture::results();
        let rep = &mut results.cases[0].variants[0].repetitions[0];
        if let Some(CrossCheck::Checked(report)) = &mut rep.kernel_cross_check {
            report.agrees = false;
            report.kinds[0].agrees = Some(false);
        }
        let md = summary_markdown(&results);
        assert!(
            md.contains("- lt-rw: kernel cross-check failed in 1 of 3 windows; first: kernel cross-check FAILED:"),
            "{md}"
        );
    }

    #[test]
    fn incomplete_runs_say_so() {
        let mut results = fixture::results();
        results.run.status = RunStatus::Incomplete;
        results.run.incomplete_reason = Some("interrupted by Ctrl-C".into());
        let md = summary_markdown(&results);
        assert!(md.contains("**Incomplete run**: interrupted by Ctrl-C."));
    }

    #[test]
    fn the_buffer_policy_and_the_pools_figures_are_shown() {
        let mut results = fixture::results();
        results.cases[0]
            .variants
            .push(fixture::pooled_variant(1000));
        let md = summary_markdown(&results);
        assert!(md.contains("\nServer buffers: pooled\n"), "{md}");
        assert!(
            md.contains("- lt-writev: user buffers: peak 4 allocated, peak 3 in use; pool: 1.00 takes/request, 99.6% hits, 0.004 misses/request, 0.000 waits/request."),
            "{md}"
        );
        results.run.settings.server_buffers = None;
        assert!(!summary_markdown(&results).contains("Server buffers"));
    }
}
