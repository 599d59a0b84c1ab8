//! Charts: valid SVG and PNG of the declared size, byte-identical SVG from
//! the same results, the splice crossover found where the data puts it,
//! and failed runs refused.

mod common;

use std::path::Path;

use epoll_bench::report::charts::{
    self, ChartError, data, render_charts, render_charts_with_notes,
};

fn names(paths: &[std::path::PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn renders_every_chart_kind_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("charts");
    let written = render_charts(&common::results(), &out).unwrap();
    let names = names(&written);
    for stem in [
        "syscalls-per-request-pingpong-64b-1conn",
        "syscalls-per-request-size-sweep",
        "throughput-vs-size-size-sweep",
        "latency-percentiles-size-sweep",
        "latency-percentiles-pingpong-64b-64conn",
        "throughput-vs-connections-pingpong-64b-1conn-pingpong-64b-64conn",
        "cpu-per-request-pingpong-64b-1conn",
    ] {
        for ext in ["svg", "png"] {
            let name = format!("{stem}.{ext}");
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }
    // Only sweeps get a size chart.
    assert!(!names.iter().any(|n| n.starts_with("throughput-vs-size-pingpong")));
    if let Some(keep) = std::env::var_os("EPOLL_BENCH_KEEP_CHARTS") {
        render_charts(&common::results(), Path::new(&keep)).unwrap();
    }
}
