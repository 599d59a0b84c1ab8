//! The README's findings are what `epoll-bench report` generates for the
//! committed reference runs (no hand-typed figure): each block between a
//! run's markers must equal `findings_block` of that run, and each run's
//! committed findings.md must equal `findings_markdown`.

use std::path::Path;

use epoll_bench::report::findings::{findings_block, findings_markdown, measured_findings_block};
use epoll_bench::results::ResultsFile;

/// Each committed reference run and the name in its README markers
/// (`<!-- NAME:begin -->` … `<!-- NAME:end -->`).
const RUNS: &[(&str, &str)] = &[
    // Every epoll and io_uring variant of its day, the tokio and Go peers.
    ("results/reference", "findings"),
    // The copy strategies (zerocopy, vmsplice, the file protocol's) and
    // thread-per-connection against the epoll variants they change.
    ("results/reference-copy", "findings-copy"),
];

/// The scale runs (issue 15): a few profiles each, so the README shows
/// only the claims they measured ([`measured_findings_block`]).
const SCALE_RUNS: &[(&str, &str)] = &[
    ("results/reference-scale/quiet-6p", "findings-scale"),
    ("results/reference-scale/pooled-6p", "findings-scale-pooled"),
    ("results/reference-scale/c1m", "findings-scale-c1m"),
    ("results/reference-scale/one-fd-6p", "findings-scale-one-fd"),
    ("results/reference-scale/pipe-17p", "findings-scale-pipe"),
    ("results/reference-scale/tpc-7p", "findings-scale-tpc"),
    ("results/reference-scale/file-6p", "findings-scale-file"),
];

fn load(run: &str) -> ResultsFile {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ResultsFile::load(&root.join(run)).unwrap_or_else(|e| panic!("{run}: {e}"))
}

#[test]
fn the_readme_findings_are_generated_from_the_reference_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let all = RUNS
        .iter()
        .map(|(run, marker)| (run, marker, findings_block(&load(run))));
    let measured = SCALE_RUNS
        .iter()
        .map(|(run, marker)| (run, marker, measured_findings_block(&load(run))));
    for (run, marker, generated) in all.chain(measured) {
        let begin = format!("<!-- {marker}:begin -->\n");
        let end_marker = format!("<!-- {marker}:end -->");
        let start = readme
            .find(&begin)
            .unwrap_or_else(|| panic!("README has no {begin:?} marker for {run}"))
            + begin.len();
        let end = readme[start..]
            .find(&end_marker)
            .unwrap_or_else(|| panic!("README has no {end_marker:?} marker for {run}"))
            + start;
        assert!(
            readme[start..end] == generated,
            "README findings for {run} differ from what the code generates; regenerate \
             with `epoll-bench report {run}` and paste findings.md's list between the \
             {marker} markers.\n--- generated ---\n{generated}"
        );
    }
}

#[test]
fn the_committed_findings_md_files_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (run, _) in RUNS.iter().chain(SCALE_RUNS) {
        let committed = std::fs::read_to_string(root.join(run).join("findings.md"))
            .unwrap_or_else(|e| panic!("{run}/findings.md: {e}"));
        assert!(
            committed == findings_markdown(&load(run)),
            "{run}/findings.md is not what `epoll-bench report {run}` writes now"
        );
    }
}

/// `results/reference-scale/threads-vs-processes.md` is what `epoll-bench
/// compare` writes for the two committed runs (the README links it).
#[test]
fn the_committed_threads_against_processes_comparison_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (a, b) = (
        "results/reference-scale/two-threads",
        "results/reference-scale/two-processes",
    );
    let generated = epoll_bench::report::compare::compare_markdown(
        &load(a),
        &format!("{a}/results.json.gz"),
        &load(b),
        &format!("{b}/results.json.gz"),
    );
    let committed =
        std::fs::read_to_string(root.join("results/reference-scale/threads-vs-processes.md"))
            .unwrap();
    assert!(
        committed == generated,
        "threads-vs-processes.md is not what `epoll-bench compare {a} {b} --out \
         results/reference-scale/threads-vs-processes.md` writes now"
    );
}
