//! The README's findings are what `epoll-bench report` generates for
//! `results/reference` (no hand-typed figure): the block between the
//! markers must equal `findings_block` of that run, and the committed
//! findings.md must equal `findings_markdown`.

use std::path::Path;

use epoll_bench::report::findings::{findings_block, findings_markdown};
use epoll_bench::results::ResultsFile;

const BEGIN: &str = "<!-- findings:begin -->\n";
const END: &str = "<!-- findings:end -->";

fn reference() -> ResultsFile {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ResultsFile::load(&root.join("results/reference")).expect("reference results")
}

#[test]
fn the_readme_findings_are_generated_from_the_reference_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find(BEGIN).expect("findings begin marker") + BEGIN.len();
    let end = readme[start..].find(END).expect("findings end marker") + start;
    let generated = findings_block(&reference());
    assert!(
        readme[start..end] == generated,
        "README findings differ from what the code generates for results/reference; \
         regenerate with `epoll-bench report results/reference --recompute` and paste \
         findings.md's list between the markers.\n--- generated ---\n{generated}"
    );
}

#[test]
fn the_committed_findings_md_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(root.join("results/reference/findings.md")).unwrap();
    assert_eq!(committed, findings_markdown(&reference()));
}
