//! Charts: valid SVG and PNG of the declared size, byte-identical SVG from
//! the same results, the splice crossover found where the data puts it,
//! and failed runs refused.

mod common;

use epoll_bench::report::compare::Better;
use std::path::{Path, PathBuf};

use epoll_bench::report::charts::draw::LegendKey;
use epoll_bench::report::charts::style::OKABE_ITO;
use epoll_bench::report::charts::{
    ChartError, data, plan, render_charts, render_charts_with_notes, render_svg,
};
use plotters::style::RGBColor;

fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The text elements of an SVG document, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("SVG parses as XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect()
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn renders_every_chart_kind_as_valid_svg_and_png_of_the_declared_size() {
    let results = common::results();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("charts");
    let written = render_charts(&results, &out).unwrap();
    let names = file_names(&written);
    for stem in [
        "syscalls-per-request-pingpong-64b-1conn",
        "syscalls-per-request-size-sweep",
        "throughput-vs-size-size-sweep",
        "latency-percentiles-size-sweep",
        "latency-percentiles-pingpong-64b-64conn",
        "throughput-vs-connections-pingpong-64b-1conn-pingpong-64b-64conn",
        "cpu-per-request-pingpong-64b-1conn",
        "effects-pingpong-64b-1conn",
        "effects-size-sweep-16384",
    ] {
        for ext in ["svg", "png"] {
            let name = format!("{stem}.{ext}");
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }
    // Only sweeps get a size chart.
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("throughput-vs-size-pingpong"))
    );
    let mut sorted = written.clone();
    sorted.sort();
    assert_eq!(written, sorted, "paths are returned sorted");

    let charts = plan(&results).unwrap().charts;
    assert_eq!(written.len(), charts.len() * 2);
    for chart in &charts {
        let (width, height) = chart.size_px();
        let svg = std::fs::read_to_string(out.join(format!("{}.svg", chart.file_stem))).unwrap();
        let doc = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("{}.svg is not XML: {e}", chart.file_stem));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.attribute("width"), Some(width.to_string().as_str()));
        assert_eq!(root.attribute("height"), Some(height.to_string().as_str()));
        let texts = svg_texts(&svg);
        assert!(
            texts.contains(&chart.title),
            "{} has its title",
            chart.file_stem
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("kernel 6.1.0-fixture") && t.contains("Fixture CPU @ 2.0GHz"))
                && texts.iter().any(|t| t.contains("run 2026-02-03")),
            "{} has the environment footer",
            chart.file_stem
        );
        let png = std::fs::read(out.join(format!("{}.png", chart.file_stem))).unwrap();
        assert_eq!(png_size(&png), (width, height), "{}.png", chart.file_stem);
    }
}

#[test]
fn same_results_give_byte_identical_svg() {
    let dir = tempfile::tempdir().unwrap();
    let first = render_charts(&common::results(), &dir.path().join("a")).unwrap();
    let second = render_charts(&common::results(), &dir.path().join("b")).unwrap();
    assert_eq!(file_names(&first), file_names(&second));
    for (a, b) in first.iter().zip(&second) {
        if a.extension().unwrap() == "svg" {
            assert!(
                std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
                "{} differs between two renderings",
                a.display()
            );
        }
    }
    // And without the parallel pool: the same text again.
    for chart in plan(&common::results()).unwrap().charts {
        let again = render_svg(&chart).unwrap();
        let on_disk = std::fs::read_to_string(
            dir.path()
                .join("a")
                .join(format!("{}.svg", chart.file_stem)),
        )
        .unwrap();
        assert!(again == on_disk, "{}", chart.file_stem);
    }
}

#[test]
fn labels_name_variants_kinds_and_the_splice_crossover() {
    let charts = plan(&common::results()).unwrap().charts;
    let size = charts
        .iter()
        .find(|c| c.file_stem == "throughput-vs-size-size-sweep")
        .unwrap();
    let svg = svg_texts(&render_svg(size).unwrap()).join("\n");
    assert!(
        svg.contains("lt-splice beats lt-rw/lt-writev from 16 KiB"),
        "crossover label"
    );
    assert!(
        svg.contains("et-splice beats et-rw/et-writev from 16 KiB"),
        "crossover label"
    );
    assert!(svg.contains("message size (bytes, log-2 scale)"));
    assert!(svg.contains("payload throughput (MB/s)"));
    assert!(svg.contains("requests per second (req/s)"));
    for variant in [
        "lt-rw",
        "lt-writev",
        "lt-splice",
        "et-rw",
        "et-writev",
        "et-splice",
    ] {
        assert!(svg.lines().any(|l| l == variant), "legend names {variant}");
    }
    let syscalls = charts
        .iter()
        .find(|c| c.file_stem == "syscalls-per-request-pingpong-64b-1conn")
        .unwrap();
    let svg = svg_texts(&render_svg(syscalls).unwrap()).join("\n");
    for kind in [
        "read",
        "write",
        "writev",
        "splice",
        "epoll_wait",
        "epoll_ctl",
    ] {
        assert!(svg.lines().any(|l| l == kind), "legend names {kind}");
    }
    // The failed variant is not drawn, and the footer says why.
    assert!(!svg.lines().any(|l| l == "et-writev-shortread"));
    assert!(svg.contains(
        "Not shown, failed: et-writev-shortread (pingpong-64b-1conn): 1 payload mismatch"
    ));
}

#[test]
fn splice_crossover_is_the_smallest_size_from_which_splice_stays_ahead() {
    let results = common::results();
    let cases: Vec<_> = results.cases.iter().collect();
    let sweep = data::sweep(&cases).unwrap();
    assert_eq!(
        sweep.iter().map(|(_, s)| *s as u32).collect::<Vec<_>>(),
        common::SWEEP_SIZES
    );
    let series = data::series_over(&sweep, |s| s.payload_megabytes_per_second);
    let crossovers = data::splice_crossovers(&series, Better::Higher);
    assert_eq!(crossovers.len(), 2, "{crossovers:?}");
    assert_eq!(crossovers[0].splice_variant, "lt-splice");
    assert_eq!(crossovers[0].counterparts, ["lt-rw", "lt-writev"]);
    assert_eq!(crossovers[0].size_bytes, 16384.0);
    assert_eq!(crossovers[1].splice_variant, "et-splice");

    // Splice ahead only at the largest size, behind at 16 KiB: crossover
    // moves up; never ahead at the largest: no crossover at all.
    let slower_at_16k = common::results_scaled(|v, label| {
        if v.contains("splice") && label == "size-sweep/16384" {
            0.5
        } else {
            1.0
        }
    });
    let cases: Vec<_> = slower_at_16k.cases.iter().collect();
    let series = data::series_over(&data::sweep(&cases).unwrap(), |s| {
        s.payload_megabytes_per_second
    });
    let crossovers = data::splice_crossovers(&series, Better::Higher);
    assert_eq!(crossovers[0].size_bytes, 262144.0);
    let never = common::results_scaled(|v, _| if v.contains("splice") { 0.5 } else { 1.0 });
    let cases: Vec<_> = never.cases.iter().collect();
    let series = data::series_over(&data::sweep(&cases).unwrap(), |s| {
        s.payload_megabytes_per_second
    });
    assert!(data::splice_crossovers(&series, Better::Higher).is_empty());
}

#[test]
fn connection_series_join_cases_that_differ_only_in_connections() {
    let results = common::results();
    let groups = data::connection_groups(&results);
    assert_eq!(groups.len(), 1);
    let labels: Vec<(&str, f64)> = groups[0]
        .iter()
        .map(|(c, n)| (c.label.as_str(), *n))
        .collect();
    assert_eq!(
        labels,
        [("pingpong-64b-1conn", 1.0), ("pingpong-64b-64conn", 64.0)]
    );
}

#[test]
fn nines_axis_maps_percentiles_to_nines() {
    assert!((data::nines(90.0) - 1.0).abs() < 1e-9);
    assert!((data::nines(99.9) - 3.0).abs() < 1e-9);
    assert_eq!(data::nines(100.0), data::MAX_NINES);
    assert_eq!(data::nines(0.0), 0.0);
}

#[test]
fn a_failed_run_is_refused_with_the_reason_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("charts");
    let err = render_charts(&common::failed_run(), &out).unwrap_err();
    assert!(matches!(err, ChartError::NothingToChart(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("every variant failed"), "{message}");
    assert!(message.contains("1 payload mismatch"), "{message}");
    assert!(!out.exists());
}

#[test]
fn invalid_results_are_refused() {
    let mut results = common::results();
    results.run.passed_count += 1;
    let err = render_charts(&results, Path::new("/nonexistent/never")).unwrap_err();
    assert!(matches!(err, ChartError::Invalid(_)), "{err}");
}

#[test]
fn a_case_where_every_variant_failed_is_skipped_with_a_note() {
    let mut results = common::results();
    let case = results
        .cases
        .iter_mut()
        .find(|c| c.label == "size-sweep/64")
        .unwrap();
    let n = case.variants.len() as u32;
    for v in &mut case.variants {
        *v = common::failed_variant(&v.variant.to_string());
    }
    results.run.passed_count -= n;
    results.run.failed_count += n;
    let dir = tempfile::tempdir().unwrap();
    let output = render_charts_with_notes(&results, dir.path()).unwrap();
    assert!(
        output
            .notes
            .iter()
            .any(|n| n.contains("case `size-sweep/64` left out of every chart: no variant passed")),
        "{:?}",
        output.notes
    );
    let svg =
        std::fs::read_to_string(dir.path().join("throughput-vs-size-size-sweep.svg")).unwrap();
    let texts = svg_texts(&svg);
    assert!(
        !texts.iter().any(|t| t == "64 B"),
        "the failed size has no tick"
    );
    assert!(texts.iter().any(|t| t == "1 KiB"));
}

/// Splice's throughput at 16 KiB limited by a saturated driver while its
/// server idles: the point is ringed, the MB/s crossover moves up to the
/// next size, and the server-CPU crossover, which the driver cannot limit,
/// stays at 16 KiB.
#[test]
fn driver_bound_points_are_ringed_and_the_cpu_crossover_ignores_them() {
    let mut results = common::results_scaled(|v, label| {
        if v.contains("splice") && label == "size-sweep/16384" {
            0.5
        } else {
            1.0
        }
    });
    for case in results
        .cases
        .iter_mut()
        .filter(|c| c.label == "size-sweep/16384")
    {
        for variant in case
            .variants
            .iter_mut()
            .filter(|v| v.variant.to_string().contains("splice"))
        {
            for repetition in &mut variant.repetitions {
                let m = repetition.measurement.as_mut().unwrap();
                m.driver_usage.cpu_user_seconds = 0.0;
                m.driver_usage.cpu_system_seconds = 0.95 * m.measured_seconds;
            }
        }
    }
    epoll_bench::commands::report::recompute(&mut results);

    let cases: Vec<_> = results.cases.iter().collect();
    let sweep = data::sweep(&cases).unwrap();
    let mbps = data::series_over(&sweep, |s| s.payload_megabytes_per_second);
    for series in &mbps {
        let expected: &[f64] = if series.variant.to_string().contains("splice") {
            &[16384.0]
        } else {
            &[]
        };
        assert_eq!(series.driver_bound_x, expected, "{}", series.variant);
    }
    let by_mbps = data::splice_crossovers(&mbps, Better::Higher);
    assert_eq!(by_mbps[0].size_bytes, 262144.0);
    let cpu = data::series_of_available(&sweep, |s| {
        s.server
            .as_ref()
            .map(|server| server.server_cpu_us_per_request)
    });
    let by_cpu = data::splice_crossovers(&cpu, Better::Lower);
    assert_eq!(by_cpu.len(), 2, "{by_cpu:?}");
    assert!(by_cpu.iter().all(|c| c.size_bytes == 16384.0), "{by_cpu:?}");

    let charts = plan(&results).unwrap().charts;
    let size = charts
        .iter()
        .find(|c| c.file_stem == "throughput-vs-size-size-sweep")
        .unwrap();
    let svg = render_svg(size).unwrap();
    let texts = svg_texts(&svg).join("\n");
    assert!(
        texts.contains("lt-splice beats lt-rw/lt-writev from 256 KiB"),
        "{texts}"
    );
    assert!(
        texts.contains("lt-splice cheaper than lt-rw/lt-writev from 16 KiB"),
        "{texts}"
    );
    assert!(texts.contains("server CPU per request (µs, user + system)"));
    assert!(texts.contains("Ringed points: the driver was saturated"));
    // Two splice variants × the two throughput panels and the MB/s ratio
    // panel; none on server CPU.
    assert_eq!(svg.matches("r=\"9\"").count(), 6, "rings drawn");
}

/// The swatch colour of every legend entry of a chart.
fn legend_colors(chart: &epoll_bench::report::charts::Chart) -> Vec<(String, RGBColor)> {
    chart
        .legend
        .iter()
        .filter_map(|(label, key)| match key {
            LegendKey::Swatch(c) => Some((label.clone(), *c)),
            LegendKey::Line(_) => None,
        })
        .collect()
}

#[test]
fn a_syscall_kind_has_one_colour_in_every_chart_and_none_of_the_variants() {
    let mut results = common::results();
    // Take the most-called kinds out of one profile, so the two charts rank
    // their kinds differently.
    let dropped = ["epoll_wait", "read"];
    for case in results
        .cases
        .iter_mut()
        .filter(|c| c.profile == "pingpong-64b-1conn")
    {
        for v in &mut case.variants {
            if let Some(server) = v.summary.as_mut().and_then(|s| s.server.as_mut()) {
                server
                    .syscalls_per_request
                    .retain(|k, _| !dropped.contains(&k.as_str()));
            }
        }
    }
    let charts = plan(&results).unwrap().charts;
    let legend_of =
        |stem: &str| legend_colors(charts.iter().find(|c| c.file_stem == stem).unwrap());
    let narrow = legend_of("syscalls-per-request-pingpong-64b-1conn");
    let full = legend_of("syscalls-per-request-pingpong-64b-64conn");
    assert!(narrow.iter().all(|(k, _)| !dropped.contains(&k.as_str())));
    assert!(full.iter().any(|(k, _)| k == "epoll_wait"));
    let mut shared = 0;
    for (kind, color) in &narrow {
        if let Some((_, other)) = full.iter().find(|(k, _)| k == kind) {
            assert_eq!(color, other, "{kind} changes colour between charts");
            shared += 1;
        }
    }
    assert!(shared >= 2, "{narrow:?} / {full:?}");
    for (kind, color) in narrow.iter().chain(&full) {
        assert!(
            !OKABE_ITO.contains(color),
            "{kind} is drawn in a variant colour"
        );
    }
}

#[test]
fn percentile_curves_stop_where_the_sample_count_does() {
    assert!((data::supported_percentile(257) - 96.108).abs() < 0.01);
    assert!((data::supported_percentile(1_000_000) - 99.999).abs() < 1e-9);
    assert_eq!(data::supported_percentile(5), 50.0);

    let mut results = common::results();
    let case = &mut results.cases[0];
    let variant = &mut case.variants[0];
    // A synthetic curve out to 99.9999 % from few samples; one repetition
    // has fewer than the others, and that one decides.
    let curve: Vec<(f64, f64)> = [0.0, 50.0, 90.0, 95.0, 96.0, 97.0, 99.0, 99.9, 99.9999]
        .into_iter()
        .map(|p| (p, 100.0 + p))
        .collect();
    for (i, repetition) in variant.repetitions.iter_mut().enumerate() {
        let m = repetition.measurement.as_mut().unwrap();
        m.latency.percentile_curve_us = curve.clone();
        m.latency.samples = if i == 1 { 257 } else { 5000 };
    }
    let passed = data::passed(&results.cases[0]);
    let p = passed
        .iter()
        .find(|p| p.variant.variant == results.cases[0].variants[0].variant)
        .unwrap();
    let percentiles: Vec<f64> = data::latency_curve(p).iter().map(|q| q.0).collect();
    assert_eq!(percentiles, [0.0, 50.0, 90.0, 95.0, 96.0]);
}

#[test]
fn a_sweep_charts_p50_and_p99_against_the_swept_value_and_single_cases_keep_curves() {
    use epoll_bench::report::charts::Panel;
    let results = common::results();
    let charts = plan(&results).unwrap().charts;
    let chart = |stem: &str| charts.iter().find(|c| c.file_stem == stem).unwrap();
    let sweep = chart("latency-percentiles-size-sweep");
    let captions: Vec<String> = sweep
        .panels
        .iter()
        .map(|p| match p {
            Panel::Lines(l) => l.caption.clone(),
            Panel::Bars(b) => b.caption.clone(),
            Panel::Effects(_) => panic!("no effects panel in a latency chart"),
        })
        .collect();
    assert_eq!(
        captions,
        [
            "p50 latency against message size",
            "p99 latency against message size"
        ]
    );
    let Panel::Lines(p99) = &sweep.panels[1] else {
        panic!("a line panel");
    };
    let sizes: Vec<&str> = p99.x_ticks.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(sizes, ["64 B", "1 KiB", "16 KiB", "256 KiB"]);
    assert_eq!(p99.lines.len(), 6, "one line per variant");
    // The points are the variants' p99 medians, at log2 of each size.
    let cases: Vec<_> = results.cases.iter().collect();
    let series = data::series_over(&data::sweep(&cases).unwrap(), |s| s.p99_latency_us);
    for (line, s) in p99.lines.iter().zip(&series) {
        let expected: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|(x, sp)| (x.log2(), sp.median))
            .collect();
        let drawn: Vec<(f64, f64)> = line.points.iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(drawn, expected, "{}", s.variant);
    }
    // A single case keeps its curve against percentile.
    let single = chart("latency-percentiles-pingpong-64b-64conn");
    assert_eq!(single.panels.len(), 1);
    let Panel::Lines(curve) = &single.panels[0] else {
        panic!("a line panel");
    };
    assert!(curve.x_ticks.iter().any(|(_, l)| l == "90%"));

    // A profile of cases that differ only in connections is a sweep too.
    let mut by_connections = common::results();
    for case in &mut by_connections.cases {
        if case.profile.starts_with("pingpong") {
            case.profile = "connections-sweep".into();
        }
    }
    let charts = plan(&by_connections).unwrap().charts;
    let connections = charts
        .iter()
        .find(|c| c.file_stem == "latency-percentiles-connections-sweep")
        .unwrap();
    assert_eq!(connections.panels.len(), 2);
    assert!(connections.title.contains("against connections"));
}

#[test]
fn the_size_chart_shows_each_variants_mb_per_s_relative_to_the_best_writev() {
    use epoll_bench::report::charts::Panel;
    use epoll_bench::report::charts::draw::YScale;
    // Synthetic: at x = 1 the best writev is 200; at x = 2 only one writev.
    let series = |name: &str, points: &[(f64, f64)]| data::Series {
        variant: name.into(),
        points: points
            .iter()
            .map(|(x, m)| {
                (
                    *x,
                    epoll_bench::results::Spread {
                        median: *m,
                        min: m * 0.9,
                        max: m * 1.1,
                        ..Default::default()
                    },
                )
            })
            .collect(),
        driver_bound_x: Vec::new(),
    };
    let all = [
        series("lt-rw", &[(1.0, 100.0), (2.0, 50.0)]),
        series("lt-writev", &[(1.0, 200.0), (2.0, 100.0)]),
        series("et-writev", &[(1.0, 160.0)]),
        series("lt-splice", &[(1.0, 300.0), (2.0, 150.0)]),
    ];
    let is_writev = |v: &epoll_bench::server::VariantName| v.to_string().contains("writev");
    let relative = data::relative_to_best(&all, is_writev);
    let medians: Vec<Vec<(f64, f64)>> = relative
        .iter()
        .map(|s| s.points.iter().map(|(x, sp)| (*x, sp.median)).collect())
        .collect();
    assert_eq!(
        medians,
        [
            vec![(1.0, 0.5), (2.0, 0.5)],
            vec![(1.0, 1.0), (2.0, 1.0)],
            vec![(1.0, 0.8)],
            vec![(1.0, 1.5), (2.0, 1.5)],
        ]
    );
    assert!((relative[0].points[0].1.max - 0.55).abs() < 1e-12);

    let charts = plan(&common::results()).unwrap().charts;
    let size = charts
        .iter()
        .find(|c| c.file_stem == "throughput-vs-size-size-sweep")
        .unwrap();
    let Panel::Lines(ratio) = &size.panels[1] else {
        panic!("a line panel");
    };
    assert_eq!(
        ratio.caption,
        "payload MB/s relative to the best writev variant"
    );
    assert_eq!(ratio.y_scale, YScale::Linear);
    assert_eq!(ratio.reference_y.as_ref().map(|r| r.0), Some(1.0));
    // At every size some writev variant is the best: its ratio is 1, and
    // no writev variant is above 1.
    for (x, _) in &ratio.x_ticks {
        let at_x: Vec<f64> = ratio
            .lines
            .iter()
            .filter(|l| l.style.marker == epoll_bench::report::charts::style::Marker::Triangle)
            .filter_map(|l| l.points.iter().find(|p| p.0 == *x).map(|p| p.1))
            .collect();
        assert!(!at_x.is_empty());
        assert!(at_x.iter().any(|r| (r - 1.0).abs() < 1e-12), "{at_x:?}");
        assert!(at_x.iter().all(|r| *r <= 1.0 + 1e-12), "{at_x:?}");
    }
}

#[test]
fn the_break_even_chart_is_splice_over_writev_server_cpu_per_trigger_mode() {
    use epoll_bench::report::charts::Panel;
    let results = common::results();
    let cases: Vec<_> = results.cases.iter().collect();
    let sweep = data::sweep(&cases).unwrap();
    let pairs = data::splice_writev_break_even(&sweep);
    let names: Vec<(String, String)> = pairs
        .iter()
        .map(|b| (b.splice_variant.to_string(), b.writev_variant.to_string()))
        .collect();
    assert_eq!(
        names,
        [
            ("lt-splice".to_string(), "lt-writev".to_string()),
            ("et-splice".to_string(), "et-writev".to_string())
        ]
    );
    for b in &pairs {
        let sizes: Vec<u32> = b.ratios.iter().map(|(s, _)| *s as u32).collect();
        assert_eq!(sizes, common::SWEEP_SIZES);
        for (size, spread) in &b.ratios {
            let expected = common::server_cpu_us("lt-splice", *size as u32)
                / common::server_cpu_us("lt-writev", *size as u32);
            assert!(
                (spread.median - expected).abs() < 1e-3,
                "{size}: {} vs {expected}",
                spread.median
            );
            assert_eq!(spread.samples, 3, "one ratio per paired repetition");
        }
    }
    let charts = plan(&results).unwrap().charts;
    let chart = charts
        .iter()
        .find(|c| c.file_stem == "cpu-per-request-size-sweep")
        .unwrap();
    assert_eq!(chart.panels.len(), 1, "one panel, not two per size");
    let Panel::Lines(panel) = &chart.panels[0] else {
        panic!("a line panel");
    };
    assert_eq!(panel.lines.len(), 2);
    assert_eq!(panel.reference_y.as_ref().map(|r| r.0), Some(1.0));
    assert_eq!(chart.legend[0].0, "lt-splice ÷ lt-writev");
    // Cases outside a sweep keep their bars.
    let single = charts
        .iter()
        .find(|c| c.file_stem == "cpu-per-request-pingpong-64b-1conn")
        .unwrap();
    assert!(matches!(single.panels[0], Panel::Bars(_)));
}

/// The effect chart: one panel per figure, server CPU first, a row per
/// comparison with its change and interval, the failed variant's rows
/// without a number.
#[test]
fn effect_charts_show_each_comparison_with_its_interval() {
    let charts = plan(&common::results()).unwrap().charts;
    let chart = charts
        .iter()
        .find(|c| c.file_stem == "effects-size-sweep-16384")
        .unwrap();
    assert_eq!(chart.panels.len(), 5);
    let svg = svg_texts(&render_svg(chart).unwrap());
    let at = |text: &str| {
        svg.iter()
            .position(|t| t == text)
            .unwrap_or_else(|| panic!("no text `{text}` in {svg:?}"))
    };
    assert!(
        at("server CPU per request — lower is better")
            < at("requests per second — higher is better")
    );
    // splice needs 0.6× writev's server CPU in every repetition.
    let row = at("lt-splice / lt-writev");
    assert!(svg[row..].contains(&"−40.0% (−40.0% … −40.0%)".to_string()));
    assert!(svg.contains(&"1×".to_string()), "the line at 1 is labelled");
    assert!(svg.contains(&"B better than A".to_string()));

    let one_conn = charts
        .iter()
        .find(|c| c.file_stem == "effects-pingpong-64b-1conn")
        .unwrap();
    let svg = svg_texts(&render_svg(one_conn).unwrap());
    let failed = svg
        .iter()
        .position(|t| t == "et-writev-shortread / et-writev")
        .unwrap();
    assert_eq!(svg[failed + 1], "not enough data", "{svg:?}");
}

#[test]
fn io_uring_operations_stand_beside_their_variants_syscalls() {
    let results = epoll_bench::results::fixture::results_with_uring();
    let charts = plan(&results).unwrap().charts;
    let chart = charts
        .iter()
        .find(|c| c.file_stem == "syscalls-per-request-pingpong-64b-1conn")
        .unwrap();
    let epoll_bench::report::charts::Panel::Bars(panel) = &chart.panels[0] else {
        panic!("a bar panel");
    };
    let categories: Vec<&str> = panel.bars.iter().map(|b| b.category.as_str()).collect();
    // The operations bar right after its variant's syscalls bar; none for
    // the epoll variant.
    assert_eq!(categories, ["lt-rw", "uring-rw", "uring-rw ops"]);
    let total = |bar: &epoll_bench::report::charts::draw::Bar| {
        bar.segments.iter().map(|s| s.value).sum::<f64>()
    };
    assert!((total(&panel.bars[1]) - 0.2).abs() < 1e-9, "0.2 syscalls");
    assert!((total(&panel.bars[2]) - 2.1).abs() < 1e-9, "2.1 operations");
    assert!(panel.y_desc.contains("io_uring operations"));
    let legend = legend_colors(chart);
    for op in ["recv (io_uring op)", "send (io_uring op)"] {
        let (_, color) = legend.iter().find(|(l, _)| l == op).expect(op);
        assert!(!OKABE_ITO.contains(color), "{op} in a variant colour");
        // Not the colour of any syscall stack either.
        assert!(
            legend
                .iter()
                .filter(|(l, _)| !l.ends_with("(io_uring op)"))
                .all(|(_, c)| c != color),
            "{op} shares a syscall's colour"
        );
    }
    let svg = svg_texts(&render_svg(chart).unwrap()).join("\n");
    assert!(svg.lines().any(|l| l == "uring-rw ops"), "{svg}");
}
