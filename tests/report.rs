//! `report` and `chart` commands on fixture results directories.

mod common;

use epoll_bench::commands::chart::{self, ChartArgs};
use epoll_bench::commands::report::{self, ReportArgs};
use epoll_bench::report::export::markdown::MarkdownExporter;
use epoll_bench::report::export::{Exporter, default_exporters, export_all};

#[test]
fn report_regenerates_summary_md_from_results_json() {
    let dir = tempfile::tempdir().unwrap();
    let results = common::results();
    export_all(dir.path(), &results, &default_exporters()).unwrap();
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "stale").unwrap();
    report::run(ReportArgs {
        results: dir.path().join("results.json"),
        print: false,
        recompute: false,
        findings_block: None,
    })
    .unwrap();
    let md = std::fs::read_to_string(&summary).unwrap();
    let expected = MarkdownExporter.render(&results).unwrap();
    assert_eq!(md.as_bytes(), expected.as_slice());
    // Specific cells: lt-rw on one connection, and the failed variant.
    assert!(md.contains("| lt-rw | 39,844 ±3.0% | 2.55 ±3.0% |"), "{md}");
    assert!(
        md.contains("| et-writev-shortread | **FAILED**: 1 payload mismatch |"),
        "{md}"
    );
    assert!(md.contains("## size-sweep/16384"), "{md}");
}

#[test]
fn chart_command_writes_into_the_results_directory() {
    let dir = tempfile::tempdir().unwrap();
    export_all(dir.path(), &common::results(), &default_exporters()).unwrap();
    chart::run(ChartArgs {
        results: dir.path().to_path_buf(),
        out: None,
    })
    .unwrap();
    let charts = dir.path().join("charts");
    assert!(charts.join("throughput-vs-size-size-sweep.svg").is_file());
    assert!(charts.join("throughput-vs-size-size-sweep.png").is_file());
}

#[test]
fn chart_command_refuses_a_failed_run_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // Exporters refuse nothing valid, and a failed run is valid results.
    export_all(dir.path(), &common::failed_run(), &default_exporters()).unwrap();
    let err = chart::run(ChartArgs {
        results: dir.path().to_path_buf(),
        out: None,
    })
    .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("results.json"), "{message}");
    assert!(message.contains("every variant failed"), "{message}");
    assert!(!dir.path().join("charts").exists());
}

#[test]
fn commands_name_a_missing_or_broken_results_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = report::run(ReportArgs {
        results: dir.path().to_path_buf(),
        print: false,
        recompute: false,
        findings_block: None,
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("no results.json or results.json.gz in this directory"),
        "{err}"
    );
    assert!(
        err.downcast_ref::<epoll_bench::error::UsageError>()
            .is_some()
    );

    let broken = dir.path().join("results.json");
    std::fs::write(&broken, r#"{"schema_version": 99}"#).unwrap();
    let err = chart::run(ChartArgs {
        results: broken.clone(),
        out: None,
    })
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&broken.display().to_string()), "{message}");
    assert!(message.contains("schema version 99"), "{message}");

    // A compressed file that is not gzip names the file too.
    std::fs::remove_file(&broken).unwrap();
    let not_gzip = dir.path().join("results.json.gz");
    std::fs::write(&not_gzip, "plain text").unwrap();
    let err = report::run(ReportArgs {
        results: dir.path().to_path_buf(),
        print: false,
        recompute: false,
        findings_block: None,
    })
    .unwrap_err();
    assert!(
        err.to_string().contains(&not_gzip.display().to_string()),
        "{err}"
    );
}

/// Results written before a figure existed: the figure is absent on load,
/// `report --recompute` derives it from the stored repetitions and leaves
/// every measurement and every other figure as it was.
#[test]
fn recompute_adds_figures_from_stored_repetitions_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let current = common::results();
    let mut old = current.clone();
    for case in &mut old.cases {
        for variant in &mut case.variants {
            if let Some(summary) = variant.summary.as_mut() {
                summary.driver_cpu_utilization_percent = None;
                summary.server_cpu_utilization_percent = None;
            }
        }
    }
    export_all(dir.path(), &old, &default_exporters()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    report::run(ReportArgs {
        results: dir.path().to_path_buf(),
        print: false,
        recompute: true,
        findings_block: None,
    })
    .unwrap();
    let recomputed =
        epoll_bench::results::ResultsFile::load(&dir.path().join("results.json")).unwrap();
    let passed = recomputed
        .cases
        .iter()
        .flat_map(|c| &c.variants)
        .filter_map(|v| v.summary.as_ref());
    for summary in passed {
        assert!(summary.driver_cpu_utilization_percent.is_some());
    }
    assert_eq!(recomputed.cases, current.cases);
    assert_eq!(recomputed.run, current.run);
    let new_md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert_eq!(
        new_md.as_bytes(),
        MarkdownExporter.render(&current).unwrap()
    );
    assert_eq!(md.lines().count(), new_md.lines().count());
}

/// Windows that lost CPU time to the hypervisor are named in summary.md.
#[test]
fn summary_marks_results_whose_windows_were_stolen_from() {
    let mut results = common::results();
    let clean = MarkdownExporter.render(&results).unwrap();
    assert!(!String::from_utf8(clean).unwrap().contains("hypervisor"));
    let case = results
        .cases
        .iter_mut()
        .find(|c| c.label == "pingpong-64b-64conn")
        .unwrap();
    let variant = case
        .variants
        .iter_mut()
        .find(|v| v.variant == "lt-writev")
        .unwrap();
    for (repetition, steal) in variant.repetitions.iter_mut().zip([2.0, 30.0, 3.0]) {
        repetition.measurement.as_mut().unwrap().cpu_steal_percent = Some(steal);
    }
    epoll_bench::commands::report::recompute(&mut results);
    let md = String::from_utf8(MarkdownExporter.render(&results).unwrap()).unwrap();
    assert!(
        md.contains("- lt-writev: the hypervisor took up to 30% of the machine's CPU time in a window (steal; median 3%)"),
        "{md}"
    );
    assert_eq!(md.matches("hypervisor took").count(), 1);
}

/// summary.md states each case's effects from the stored repetitions:
/// the fixture's splice needs 0.6× writev's server CPU from 16 KiB on, and
/// ET's nominal rate is 1.02× LT's in every repetition.
#[test]
fn summary_states_effects_with_intervals() {
    let md = MarkdownExporter.render(&common::results()).unwrap();
    let md = String::from_utf8(md).unwrap();
    let start = md.find("## size-sweep/16384\n").unwrap();
    let case = &md[start..];
    let case = &case[..case[3..].find("\n## ").map_or(case.len(), |i| i + 3)];
    assert!(
        case.contains("| lt-splice / lt-writev | server CPU µs/req | 0.600 | 0.600–0.600 | **splice saves 40.0% of writev's server CPU per request (95% CI 40.0–40.0%)** |"),
        "{case}"
    );
    assert!(
        case.contains("| et-rw / lt-rw | req/s | 1.020 | 1.020–1.020 | **ET serves 2.0% more requests per second than LT (95% CI 2.0–2.0%)** |"),
        "{case}"
    );
    assert!(
        case.contains("| et-rw / lt-rw | server CPU µs/req | 1.000 | 1.000–1.000 | no difference larger than ±0.0% |"),
        "{case}"
    );
    // Six variants without short-read ones: 3 + 2 + 2 comparisons.
    let cpu_effects = case
        .lines()
        .filter(|l| l.contains(" / ") && l.contains("| server CPU µs/req |"))
        .count();
    assert_eq!(cpu_effects, 7, "{case}");
    // The failed variant's comparison on one connection has no number.
    assert!(md.contains("| et-writev-shortread / et-writev | server CPU µs/req | — | — | not enough data: `et-writev-shortread` failed (1 payload mismatch) |"), "{md}");
}

/// A directory holding results.json.gz (how results/reference is
/// committed) is read like results.json, and `report --recompute` writes it
/// back compressed, leaving no results.json beside it.
#[test]
fn compressed_results_are_read_and_written_back_compressed() {
    use epoll_bench::report::export::json::compress_results_file;
    use epoll_bench::results::ResultsFile;
    let dir = tempfile::tempdir().unwrap();
    let results = common::results();
    export_all(dir.path(), &results, &default_exporters()).unwrap();
    let compressed = compress_results_file(dir.path()).unwrap();
    assert!(compressed.ends_with("results.json.gz"));
    assert!(!dir.path().join("results.json").exists());
    assert_eq!(ResultsFile::load(dir.path()).unwrap(), results);
    assert_eq!(ResultsFile::load(&compressed).unwrap(), results);
    std::fs::write(dir.path().join("summary.md"), "stale").unwrap();
    report::run(ReportArgs {
        results: dir.path().to_path_buf(),
        print: false,
        recompute: true,
        findings_block: None,
    })
    .unwrap();
    assert!(!dir.path().join("results.json").exists());
    let reread = ResultsFile::load(dir.path()).unwrap();
    assert_eq!(reread.cases.len(), results.cases.len());
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert_ne!(md, "stale");
    chart::run(ChartArgs {
        results: dir.path().to_path_buf(),
        out: None,
    })
    .unwrap_or_else(|e| panic!("chart reads the compressed file: {e}"));
}
