//! Keeps `docs/results-schema.md` and the schema in step: every field path
//! of a fully populated results file must have a row in the document, and
//! every row must name a field that exists.

use std::collections::BTreeSet;

use serde_json::Value;

/// Objects whose keys are data (syscall kinds), not field names.
const MAP_SUFFIXES: [&str; 10] = [
    "syscalls.by_kind",
    "syscalls.eagain_by_kind",
    "SyscallCounts.calls",
    "SyscallCounts.eagain",
    "syscalls_per_request",
    "eagain_per_request",
    // io_uring operations, by opcode.
    "uring_ops.sqes",
    "uring_ops.cqes",
    "sqes_per_request",
    "cqes_per_request",
];
/// Documented as a whole elsewhere (`docs/profiles.md`) or as a leaf.
const OPAQUE: [&str; 2] = [
    "cases[].case",
    "cases[].variants[].repetitions[].measurement.latency.percentile_curve_us",
];

/// Shared types documented once, in their own table: a field of that type
/// is a row of its own, and the type's fields are rows named
/// `Type.field`.
fn type_of(path: &str, value: &Value) -> Option<&'static str> {
    let object = value.as_object()?;
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys == ["cv_percent", "max", "median", "min", "samples"] {
        return Some("Spread");
    }
    let rules: [(&str, &str); 6] = [
        ("server_window.total", "ThreadReport"),
        ("server_window.threads[]", "ThreadReport"),
        (".verification", "VerificationCounts"),
        ("driver_syscalls", "SyscallCounts"),
        ("ThreadReport.syscalls", "SyscallCounts"),
        ("usage", "ThreadUsage"),
    ];
    rules
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix))
        .map(|(_, name)| *name)
}

/// Field paths of the leaves of `value`: `a.b`, `list[].c`, `map.<kind>.d`;
/// fields of shared types as `Type.field` (see [`type_of`]). A path that is
/// `null` in one place and an object in another counts once, as the
/// object's fields.
pub fn leaf_paths(value: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(value, String::new(), &mut out);
    let parents: BTreeSet<String> = out
        .iter()
        .filter(|p| {
            out.iter().any(|q| {
                q.len() > p.len()
                    && q.starts_with(p.as_str())
                    && matches!(q.as_bytes()[p.len()], b'.' | b'[')
            })
        })
        .cloned()
        .collect();
    out.difference(&parents).cloned().collect()
}

fn walk(value: &Value, path: String, out: &mut BTreeSet<String>) {
    if OPAQUE.contains(&path.as_str()) {
        out.insert(path);
        return;
    }
    if let Some(name) = type_of(&path, value) {
        out.insert(path);
        walk_fields(value, name.to_string(), out);
        return;
    }
    walk_fields(value, path, out);
}

fn walk_fields(value: &Value, path: String, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            let is_map = MAP_SUFFIXES.iter().any(|s| path.ends_with(s));
            for (key, child) in map {
                let name = if is_map { "<kind>" } else { key.as_str() };
                let child_path = if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                walk(child, child_path, out);
            }
        }
        Value::Array(items) if items.iter().any(|i| i.is_object()) => {
            for item in items {
                walk(item, format!("{path}[]"), out);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

/// Paths named in the first column of the document's tables.
pub fn documented_paths(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(path, _)| path.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    fn whole_memory() -> crate::results::connection_memory::ConnectionMemory {
        use crate::metrics::kernel_memory::{MemoryProbe, SlabReading};
        use crate::results::connection_memory::{ConnectionMemory, RampEnd};
        use crate::sys::memory::ProcessMemory;
        let probe = MemoryProbe {
            driver: Ok(ProcessMemory::default()),
            tcp_mem_pages: Ok(1),
            slabs: Ok(vec![SlabReading {
                name: "TCP".into(),
                active_objects: 1,
                object_size_bytes: 2368,
            }]),
        };
        let end = || RampEnd {
            server: ProcessMemory::default(),
            probe: &probe,
        };
        ConnectionMemory::over_ramp(1, 2, end(), end(), 4096)
    }

    #[test]
    fn every_field_is_documented_and_every_documented_field_exists() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/results-schema.md"
        ))
        .unwrap();
        let documented = documented_paths(&doc);
        let mut results = crate::results::ResultsFile {
            machine_limits: Some(fixture::machine_limits()),
            cpu_profiles: fixture::cpu_profiles(),
            not_applicable: vec![crate::results::not_applicable::NotApplicable {
                case: "file-4k-1conn".into(),
                variant: "lt-rw".into(),
                reason: "lt-rw does not serve the file protocol".into(),
            }],
            ..fixture::results_with_uring()
        };
        results.cases[0]
            .variants
            .push(fixture::external_variant(1000));
        // One whose kernel refused the EAGAIN filter, for the reason field.
        let mut refused = fixture::external_variant(1000);
        for r in &mut refused.repetitions {
            let counts = r.external_window.as_mut().and_then(|w| w.counts.as_mut());
            if let Some(syscalls) = counts.and_then(|c| c.syscalls.as_mut()) {
                syscalls.eagain_by_kind = None;
                syscalls.eagain_unavailable_reason = Some("the kernel refused the filter".into());
            }
        }
        results.cases[0].variants.push(refused);
        results.cases[0]
            .variants
            .push(fixture::zerocopy_variant(1000));
        results.cases[0]
            .variants
            .push(fixture::pooled_variant(1000));
        // One whose every repetition measured memory whole: its summary's.
        let idle_active = fixture::idle_active_case(1000, 9000);
        results.cases[0].variants.push(fixture::idle_active_variant(
            "et-writev",
            &idle_active,
            10.0,
            200.0,
        ));
        // A failed window after an idle ramp keeps the ramp's outcome.
        let mut failed = fixture::failed_repetition(3);
        failed.failure.as_mut().unwrap().scale_out = fixture::measurement(10, 64, 50.0).scale_out;
        results.cases[0].variants[0].repetitions.push(failed);
        // A multi-process server over an idle_active ramp.
        results.run.settings.server_processes = Some(2);
        let memory = results.cases[0].variants[0].repetitions[0]
            .server_memory
            .as_mut()
            .unwrap();
        memory.whole = Some(whole_memory());
        let produced = leaf_paths(&serde_json::to_value(results).unwrap());
        let missing: Vec<_> = produced.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "fields not in docs/results-schema.md: {missing:#?}"
        );
        let stale: Vec<_> = documented.difference(&produced).collect();
        assert!(
            stale.is_empty(),
            "documented fields that do not exist: {stale:#?}"
        );
    }

    #[test]
    fn paths_collapse_lists_and_kind_maps() {
        let spread =
            serde_json::json!({"median": 1, "min": 1, "max": 1, "cv_percent": 0, "samples": 1});
        let value = serde_json::json!({
            "a": {"b": 1},
            "list": [{"c": 1, "o": null}, {"d": null, "o": {"e": 2}}],
            "syscalls_per_request": {"read": {"x": 1}},
            "numbers": [1, 2],
            "rate": spread,
        });
        let paths: Vec<String> = leaf_paths(&value).into_iter().collect();
        assert_eq!(
            paths,
            [
                "Spread.cv_percent",
                "Spread.max",
                "Spread.median",
                "Spread.min",
                "Spread.samples",
                "a.b",
                "list[].c",
                "list[].d",
                "list[].o.e",
                "numbers",
                "rate",
                "syscalls_per_request.<kind>.x"
            ]
        );
        assert_eq!(
            documented_paths("| `x.y` | u64 | B | z |\n| other |\n"),
            BTreeSet::from(["x.y".to_string()])
        );
    }
}
