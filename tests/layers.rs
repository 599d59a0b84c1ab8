//! The crate's layering, enforced: every `crate::…` path in `src/` must point
//! to the same top-level module or to one in a lower layer, top-level modules
//! form no cycle, and (outside unit-test modules) neither do files.
//!
//! [`LAYERS`] is the single written statement of the layering;
//! `docs/architecture.md` explains it and points here. Run with
//! `cargo test --test layers`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One floor of the crate.
struct Layer {
    modules: &'static [&'static str],
    /// Whether modules of this floor may import each other (only the leaf
    /// floor, whose members are small and independent; cycles are still
    /// refused).
    siblings_may_import: bool,
}

/// The layers of `src/`, top first. A top-level module (`src/NAME.rs` or
/// `src/NAME/`) may import its own files and any module of a lower layer,
/// never one of its own layer or above. `main` is the binary (`src/main.rs`),
/// which reaches the library through `epoll_bench::cli` only.
const LAYERS: &[Layer] = &[
    Layer {
        modules: &["main"],
        siblings_may_import: false,
    },
    Layer {
        modules: &["cli"],
        siblings_may_import: false,
    },
    Layer {
        modules: &["commands"],
        siblings_may_import: false,
    },
    Layer {
        modules: &["report", "driver", "doctor"],
        siblings_may_import: false,
    },
    Layer {
        modules: &["results"],
        siblings_may_import: false,
    },
    Layer {
        modules: &["server", "metrics"],
        siblings_may_import: false,
    },
    Layer {
        modules: &["sys"],
        siblings_may_import: false,
    },
    // Leaves: errors and exit codes, number and unit parsing, the wire and
    // control protocols. Usable from every layer, they import only each other.
    Layer {
        modules: &["error", "units", "protocol"],
        siblings_may_import: true,
    },
];

/// Where a top-level module sits: its layer's index (0 is the top).
fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.modules.contains(&module))
}

/// One `crate::` path found in a file.
#[derive(Debug)]
struct Reference {
    line: usize,
    /// The full path after `crate::`, e.g. `results::workload::Case`.
    path: Vec<String>,
}

/// A source file: its path under `src/` (with `/`), its module path, its
/// text.
struct SourceFile {
    relative: String,
    module_path: Vec<String>,
    text: String,
}

impl SourceFile {
    fn new(relative: &str, text: String) -> Self {
        let stem = relative.trim_end_matches(".rs");
        let mut module_path: Vec<String> = stem.split('/').map(str::to_string).collect();
        if module_path.last().is_some_and(|s| s == "mod") {
            module_path.pop();
        }
        if module_path == ["lib"] {
            module_path.clear();
        }
        SourceFile {
            relative: relative.to_string(),
            module_path,
            text,
        }
    }

    /// The top-level module this file belongs to (`None` for `lib.rs`, the
    /// crate root, which only declares the modules).
    fn top(&self) -> Option<&str> {
        self.module_path.first().map(String::as_str)
    }
}

fn read_sources(dir: &Path, under: &Path, out: &mut Vec<SourceFile>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_sources(&path, under, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(under)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            out.push(SourceFile::new(&relative, text));
        }
    }
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Reads a use-tree starting at `at` (just after `crate::`): segments
/// joined by `::`, with `{a, b::c}` groups, and pushes every full path.
fn read_tree(text: &[u8], mut at: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    loop {
        while at < text.len() && text[at].is_ascii_whitespace() {
            at += 1;
        }
        if at < text.len() && text[at] == b'{' {
            at += 1;
            loop {
                at = read_tree(text, at, path.clone(), out);
                while at < text.len() && text[at].is_ascii_whitespace() {
                    at += 1;
                }
                match text.get(at) {
                    Some(b',') => at += 1,
                    Some(b'}') => return at + 1,
                    _ => return at,
                }
                while at < text.len() && text[at].is_ascii_whitespace() {
                    at += 1;
                }
                if text.get(at) == Some(&b'}') {
                    return at + 1; // trailing comma
                }
            }
        }
        let start = at;
        while at < text.len() && (is_ident_char(text[at]) || text[at] == b'*') {
            at += 1;
        }
        if at > start {
            path.push(String::from_utf8_lossy(&text[start..at]).into_owned());
        }
        if text[at..].starts_with(b"::") {
            at += 2;
        } else {
            if !path.is_empty() {
                out.push(path);
            }
            return at;
        }
    }
}

/// Every `crate::…` path of `text`, and every `super::…` path that leaves
/// the file's module, as a path from the crate root. In `src/main.rs`,
/// `epoll_bench::…` plays the part of `crate::`.
fn references(file: &SourceFile, text: &str) -> Vec<Reference> {
    let bytes = text.as_bytes();
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let roots: &[&str] = if file.relative == "main.rs" {
        &["crate::", "epoll_bench::"]
    } else {
        &["crate::"]
    };
    for root in roots {
        for (at, _) in text.match_indices(root) {
            if at > 0 && is_ident_char(bytes[at - 1]) {
                continue;
            }
            let mut paths = Vec::new();
            read_tree(bytes, at + root.len(), Vec::new(), &mut paths);
            for path in paths {
                found.push(Reference {
                    line: line_of(at),
                    path,
                });
            }
        }
    }
    // `super::` chains, resolved against the file's module path (an inline
    // module adds a level this does not see, which can only make a path look
    // like it stays inside its module).
    for (at, _) in text.match_indices("super::") {
        if at > 0 && (is_ident_char(bytes[at - 1]) || bytes[at - 1] == b':') {
            continue;
        }
        let mut rest = at;
        let mut supers = 0;
        while text[rest..].starts_with("super::") {
            supers += 1;
            rest += "super::".len();
        }
        if supers > file.module_path.len() {
            continue;
        }
        let base = file.module_path[..file.module_path.len() - supers].to_vec();
        let mut paths = Vec::new();
        read_tree(bytes, rest, base, &mut paths);
        for path in paths {
            found.push(Reference {
                line: line_of(at),
                path,
            });
        }
    }
    found
}

/// The part of a file outside its unit-test module (by convention the last
/// item, `#[cfg(test)] mod tests { … }`).
fn without_test_module(text: &str) -> &str {
    let mut from = 0;
    while let Some(found) = text[from..].find("#[cfg(test)]") {
        let at = from + found;
        let after = text[at + "#[cfg(test)]".len()..].trim_start();
        let after = after.strip_prefix("pub ").unwrap_or(after);
        if let Some(rest) = after.strip_prefix("mod ") {
            let name_end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'));
            if let Some(end) = name_end
                && rest[end..].trim_start().starts_with('{')
            {
                return &text[..at];
            }
        }
        from = at + 1;
    }
    text
}

/// Strongly connected components with more than one member (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(state: &mut State<'g>, node: &'g str) {
        let n = state.index.len();
        state.index.insert(node, n);
        state.low.insert(node, n);
        state.stack.push(node);
        state.on_stack.insert(node);
        if let Some(targets) = state.graph.get(node) {
            for target in targets {
                let target = target.as_str();
                if !state.index.contains_key(target) {
                    visit(state, target);
                    let low = state.low[node].min(state.low[target]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(target) {
                    let low = state.low[node].min(state.index[target]);
                    state.low.insert(node, low);
                }
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            loop {
                let member = state.stack.pop().expect("on the stack");
                state.on_stack.remove(member);
                component.push(member.to_string());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

/// Every breach of the layering in `files`, one line each.
fn layering_problems(files: &[SourceFile]) -> Vec<String> {
    let tops: BTreeSet<&str> = files.iter().filter_map(SourceFile::top).collect();
    let mut problems = Vec::new();
    for top in &tops {
        if layer_of(top).is_none() {
            problems.push(format!(
                "src/{top}: top-level module in no layer; add it to LAYERS in tests/layers.rs"
            ));
        }
    }

    let mut module_graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(top) = file.top() else { continue };
        let Some(own) = layer_of(top) else { continue };
        for reference in references(file, &file.text) {
            let target = reference.path[0].as_str();
            if target == top || !tops.contains(target) {
                continue;
            }
            let Some(theirs) = layer_of(target) else {
                continue;
            };
            let allowed = theirs > own || (theirs == own && LAYERS[own].siblings_may_import);
            if !allowed {
                let relation = if theirs == own { "beside" } else { "above" };
                problems.push(format!(
                    "src/{}:{}: imports `{}`, a module {relation} `{top}` in the layers",
                    file.relative,
                    reference.line,
                    reference.path.join("::"),
                ));
            }
            module_graph
                .entry(top.to_string())
                .or_default()
                .insert(target.to_string());
        }
    }
    for cycle in cycles(&module_graph) {
        problems.push(format!("module cycle: {}", cycle.join(" <-> ")));
    }

    // Files: the longest prefix of each path that is a file of its own.
    let by_module_path: BTreeMap<Vec<String>, &str> = files
        .iter()
        .filter(|f| f.relative != "main.rs")
        .map(|f| (f.module_path.clone(), f.relative.as_str()))
        .collect();
    let mut file_graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        for reference in references(file, without_test_module(&file.text)) {
            let target = (1..=reference.path.len())
                .rev()
                .find_map(|n| by_module_path.get(&reference.path[..n]));
            if let Some(&target) = target
                && target != file.relative
            {
                file_graph
                    .entry(file.relative.clone())
                    .or_default()
                    .insert(target.to_string());
            }
        }
    }
    for cycle in cycles(&file_graph) {
        problems.push(format!("file cycle: {}", cycle.join(", ")));
    }
    problems
}

#[test]
fn src_follows_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_sources(&src, &src, &mut files);
    assert!(files.len() > 20, "found only {} files in src/", files.len());
    let problems = layering_problems(&files);
    assert!(
        problems.is_empty(),
        "the layering of src/ is broken (see LAYERS in tests/layers.rs):\n{}",
        problems.join("\n")
    );
}

fn fake(files: &[(&str, &str)]) -> Vec<SourceFile> {
    files
        .iter()
        .map(|(path, text)| SourceFile::new(path, text.to_string()))
        .collect()
}

#[test]
fn an_upward_import_is_named_with_its_file_and_line() {
    let files = fake(&[
        (
            "results/mod.rs",
            "//! Results.\n\nuse crate::driver::workload::Case;\n",
        ),
        ("driver/mod.rs", "use crate::results::ResultsFile;\n"),
    ]);
    let problems = layering_problems(&files);
    assert!(
        problems.contains(
            &"src/results/mod.rs:3: imports `driver::workload::Case`, a module above `results` in the layers"
                .to_string()
        ),
        "{problems:#?}"
    );
    assert!(
        problems.contains(&"module cycle: driver <-> results".to_string()),
        "{problems:#?}"
    );
}

#[test]
fn grouped_and_relative_paths_are_read() {
    let files = fake(&[
        (
            "report/export/mod.rs",
            "use crate::{\n    results::ResultsFile,\n    driver::{orchestrator::Plan, profile},\n};\n",
        ),
        ("report/charts.rs", "use super::super::doctor::Status;\n"),
        ("driver/orchestrator.rs", ""),
        ("driver/profile.rs", ""),
        ("results/mod.rs", ""),
        ("doctor/mod.rs", ""),
    ]);
    let problems = layering_problems(&files);
    for expected in [
        "src/report/export/mod.rs:1: imports `driver::orchestrator::Plan`, a module beside `report` in the layers",
        "src/report/export/mod.rs:1: imports `driver::profile`, a module beside `report` in the layers",
        "src/report/charts.rs:1: imports `doctor::Status`, a module beside `report` in the layers",
    ] {
        assert!(problems.contains(&expected.to_string()), "{problems:#?}");
    }
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

#[test]
fn leaves_may_import_each_other_but_not_in_a_cycle_and_new_modules_need_a_layer() {
    let files = fake(&[
        ("units.rs", "use crate::error::UsageError;\n"),
        ("error.rs", ""),
        ("sys/mod.rs", "use crate::units::parse_bytes;\n"),
        ("uring/mod.rs", ""),
    ]);
    assert_eq!(
        layering_problems(&files),
        ["src/uring: top-level module in no layer; add it to LAYERS in tests/layers.rs"]
    );

    let files = fake(&[
        ("units.rs", "use crate::error::UsageError;\n"),
        ("error.rs", "fn f() { crate::units::parse_bytes(\"1\"); }\n"),
    ]);
    let problems = layering_problems(&files);
    assert!(
        problems.contains(&"module cycle: error <-> units".to_string()),
        "{problems:#?}"
    );
    assert!(
        problems.contains(&"file cycle: error.rs, units.rs".to_string()),
        "{problems:#?}"
    );
}

#[test]
fn file_cycles_inside_a_module_are_found_but_test_modules_do_not_count() {
    let files = fake(&[
        ("driver/mod.rs", ""),
        ("driver/a.rs", "use crate::driver::b::B;\n"),
        ("driver/b.rs", "use super::a::A;\n"),
        (
            "driver/c.rs",
            "pub struct C;\n#[cfg(test)]\nmod tests {\n    use crate::driver::d::D;\n}\n",
        ),
        ("driver/d.rs", "use crate::driver::c::C;\n"),
    ]);
    assert_eq!(
        layering_problems(&files),
        ["file cycle: driver/a.rs, driver/b.rs"]
    );
}
