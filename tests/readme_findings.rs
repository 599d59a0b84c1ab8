//! The README's findings are what `epoll-bench report` generates for the
//! committed reference runs (no hand-typed figure): each block between a
//! run's markers must equal `findings_block` of that run, and each run's
//! committed findings.md must equal `findings_markdown`.

use std::path::Path;

use epoll_bench::report::findings::{findings_block, findings_markdown};
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

fn load(run: &str) -> ResultsFile {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ResultsFile::load(&root.join(run)).unwrap_or_else(|e| panic!("{run}: {e}"))
}

#[test]
fn the_readme_findings_are_generated_from_the_reference_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for (run, marker) in RUNS {
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
        let generated = findings_block(&load(run));
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
    for (run, _) in RUNS {
        let committed = std::fs::read_to_string(root.join(run).join("findings.md"))
            .unwrap_or_else(|e| panic!("{run}/findings.md: {e}"));
        assert!(
            committed == findings_markdown(&load(run)),
            "{run}/findings.md is not what `epoll-bench report {run}` writes now"
        );
    }
}
