//! summary.md's "Where the server CPU goes" section: per profiled case
//! (`run --profile-cpu`), its servers side by side: kernel and user-space
//! shares of the perf samples, samples per request, and the user-space
//! symbols with the most samples.

use std::fmt::Write as _;

use crate::results::ResultsFile;
use crate::results::cpu_profile::CpuProfile;

use super::cells::number;

/// The section, or nothing when the run profiled no case.
pub fn cpu_profile_section(results: &ResultsFile) -> String {
    if results.cpu_profiles.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let first = &results.cpu_profiles[0];
    let _ = writeln!(
        out,
        "## Where the server CPU goes (perf, cpu-clock samples)\n\n\
         One extra window per server after its case's other repetitions, its threads sampled by `perf record -e {} -F {}` from the window's first instant to its last; never part of the figures above (the sampling costs the server CPU). Shares are of all the window's samples, a symbol's samples its self time; `perf report` of each window is under `profiles/`.\n",
        first.event, first.frequency_hz
    );
    let mut cases: Vec<&str> = Vec::new();
    for profile in &results.cpu_profiles {
        if !cases.contains(&profile.case.as_str()) {
            cases.push(&profile.case);
        }
    }
    for case in cases {
        let profiles: Vec<&CpuProfile> = results
            .cpu_profiles
            .iter()
            .filter(|p| p.case == case)
            .collect();
        case_table(&mut out, case, &profiles);
    }
    out
}

fn case_table(out: &mut String, case: &str, profiles: &[&CpuProfile]) {
    let _ = writeln!(out, "### `{case}`\n");
    let header: Vec<String> = profiles
        .iter()
        .map(|p| {
            if p.external {
                format!("{} (external)", p.server)
            } else {
                p.server.to_string()
            }
        })
        .collect();
    let _ = writeln!(out, "| | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(profiles.len()));
    let row = |out: &mut String, name: &str, cell: &dyn Fn(&CpuProfile) -> String| {
        let cells: Vec<String> = profiles
            .iter()
            .map(|p| match &p.table {
                Some(_) => cell(p),
                None => "–".to_string(),
            })
            .collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    };
    let table = |p: &CpuProfile| p.table.clone().expect("rows are drawn only with a table");
    row(out, "user space", &|p| {
        format!("{:.1}%", table(p).user_share_percent)
    });
    row(out, "kernel", &|p| {
        format!("{:.1}%", table(p).kernel_share_percent)
    });
    row(out, "samples (lost)", &|p| {
        let t = table(p);
        format!("{} ({})", number(t.samples_total as f64), t.samples_lost)
    });
    row(out, "samples/req", &|p| {
        format!("{:.4}", table(p).samples_per_request)
    });
    row(out, "sampled CPU µs/req", &|p| {
        format!("{:.2}", table(p).sampled_cpu_us_per_request)
    });
    let deepest = profiles
        .iter()
        .filter_map(|p| p.table.as_ref())
        .map(|t| t.top_user_symbols.len())
        .max()
        .unwrap_or(0);
    for rank in 0..deepest {
        row(
            out,
            &format!("user #{}", rank + 1),
            &|p| match table(p).top_user_symbols.get(rank) {
                Some(s) => format!(
                    "`{}` {:.1}% ({})",
                    short_symbol(&s.symbol)
                        .replace('|', "\\|")
                        .replace('`', "'"),
                    s.share_percent,
                    s.samples
                ),
                None => String::new(),
            },
        );
    }
    let _ = writeln!(out);
    for p in profiles {
        if let Some(reason) = &p.unavailable_reason {
            let _ = writeln!(out, "- {}: no profile: {reason}", p.server);
        }
    }
    if profiles.iter().any(|p| p.unavailable_reason.is_some()) {
        let _ = writeln!(out);
    }
}

/// The symbol without its leading crate path (`a::b::Type::f` →
/// `Type::f`), so that the side-by-side table stays readable; the full
/// names are in results.json and the raw reports. Generic and trait-impl
/// names (`<A as B>::f`) are kept whole.
fn short_symbol(symbol: &str) -> &str {
    if symbol.starts_with('<') {
        return symbol;
    }
    // Cut before the last two `::`-separated parts, outside `<...>`.
    let mut depth = 0i32;
    let mut cuts = Vec::new();
    let bytes = symbol.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'<' => depth += 1,
            b'>' => depth -= 1,
            b':' if depth == 0 && i > 0 && bytes[i - 1] == b':' => cuts.push(i + 1),
            _ => {}
        }
    }
    match cuts.len() {
        0 | 1 => symbol,
        n => &symbol[cuts[n - 2]..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    #[test]
    fn profiled_servers_are_side_by_side_with_the_unavailable_one_said() {
        let mut results = fixture::results();
        assert_eq!(cpu_profile_section(&results), "");
        results.cpu_profiles = fixture::cpu_profiles();
        let section = cpu_profile_section(&results);
        assert!(
            section.starts_with("## Where the server CPU goes (perf, cpu-clock samples)"),
            "{section}"
        );
        for needle in [
            "### `pingpong-64b-1conn`",
            "| | lt-rw | tokio (external) |",
            "| user #1 | `RingConn::after_read` 1.3% (23) | – |",
            "- tokio: no profile: `perf record` exited",
        ] {
            assert!(section.contains(needle), "no `{needle}` in\n{section}");
        }
        let table = fixture::cpu_profiles()[0].table.clone().unwrap();
        let kernel = format!("| kernel | {:.1}% | – |", table.kernel_share_percent);
        assert!(section.contains(&kernel), "no `{kernel}` in\n{section}");
        assert!(table.kernel_share_percent > 90.0);
    }

    #[test]
    fn symbols_lose_their_crate_path_but_not_their_generics() {
        assert_eq!(
            short_symbol("epoll_bench::server::copy::ring::RingConn::gather"),
            "RingConn::gather"
        );
        assert_eq!(
            short_symbol("epoll_bench::server::event_loop::EventLoop<T,C>::run"),
            "EventLoop<T,C>::run"
        );
        assert_eq!(
            short_symbol("tokio::a::<b::c as d::e>::f"),
            "<b::c as d::e>::f"
        );
        assert_eq!(short_symbol("<A as B>::f"), "<A as B>::f");
        assert_eq!(short_symbol("memcpy"), "memcpy");
        assert_eq!(short_symbol("main.main"), "main.main");
    }
}
