//! Traces: generate → write → read gives back the same events, the same
//! seed gives the same trace, and sizes and arrivals follow the spec.

use std::path::Path;

use clap::Parser;
use epoll_bench::driver::trace::{
    Arrivals, GenerateArgs, GenerateSpec, TraceArgs, TraceCommand, TraceError, TraceLength,
    generate, parse_trace, read_trace, run_trace_command, summarize, write_trace, write_trace_file,
};
use epoll_bench::driver::workload::TraceEvent;
use epoll_bench::results::workload::SizeDistribution;

fn spec(sizes: SizeDistribution, arrivals: Arrivals, seed: u64) -> GenerateSpec {
    GenerateSpec {
        connections: 8,
        length: TraceLength::Requests(20_000),
        rate_per_second: 50_000.0,
        arrivals,
        sizes,
        seed,
    }
}

const LOG_NORMAL: SizeDistribution = SizeDistribution::LogNormal {
    median_bytes: 300,
    sigma: 1.2,
    max_bytes: 1 << 20,
};

#[test]
fn generate_write_read_round_trip_is_exact() {
    let directory = tempfile::tempdir().unwrap();
    for arrivals in [Arrivals::Poisson, Arrivals::Fixed] {
        let events = generate(&spec(LOG_NORMAL, arrivals, 5));
        let path = directory.path().join("round.trace");
        write_trace_file(&path, &events, "round trip\nsecond comment line").unwrap();
        assert_eq!(read_trace(&path).unwrap(), events, "{arrivals:?}");
    }
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let a = generate(&spec(LOG_NORMAL, Arrivals::Poisson, 11));
    let b = generate(&spec(LOG_NORMAL, Arrivals::Poisson, 11));
    let c = generate(&spec(LOG_NORMAL, Arrivals::Poisson, 12));
    assert_eq!(a, b);
    assert_ne!(a, c);
    // And byte for byte once written.
    let (mut text_a, mut text_b) = (Vec::new(), Vec::new());
    write_trace(&mut text_a, &a, "x").unwrap();
    write_trace(&mut text_b, &b, "x").unwrap();
    assert_eq!(text_a, text_b);
}

#[test]
fn generated_sizes_have_the_distributions_mean() {
    // 20,000 draws each. The loosest case, log-normal with sigma 1.2, has a
    // standard error of the mean near 1.3% of it, so 5% fails a wrong
    // parameterisation but not an honest sample.
    for sizes in [
        SizeDistribution::Fixed { bytes: 777 },
        SizeDistribution::Uniform {
            min_bytes: 64,
            max_bytes: 4096,
        },
        LOG_NORMAL,
        SizeDistribution::Bimodal {
            small_bytes: 64,
            large_bytes: 16384,
            large_fraction: 0.2,
        },
    ] {
        let events = generate(&spec(sizes.clone(), Arrivals::Poisson, 3));
        let summary = summarize(&events);
        let expected = sizes.mean_bytes();
        assert!(
            (summary.mean_size_bytes - expected).abs() <= 0.05 * expected,
            "{sizes:?}: trace mean {}, expected {expected}",
            summary.mean_size_bytes
        );
        assert!(summary.max_size_bytes <= sizes.max_bytes());
    }
}

#[test]
fn arrivals_follow_the_rate_and_spread_over_connections() {
    for arrivals in [Arrivals::Poisson, Arrivals::Fixed] {
        let events = generate(&spec(SizeDistribution::Fixed { bytes: 1 }, arrivals, 8));
        assert_eq!(events.len(), 20_000);
        // 20,000 requests at 50,000/s span 0.4 s; a Poisson sum of 20,000
        // gaps has a relative standard deviation of 0.7%.
        let span_us = summarize(&events).span_us as f64;
        assert!(
            (span_us - 400_000.0).abs() < 0.03 * 400_000.0,
            "{arrivals:?}: {span_us}"
        );
        assert!(
            events
                .windows(2)
                .all(|pair| pair[0].offset_us <= pair[1].offset_us)
        );
        let mut per_connection = [0u32; 8];
        for event in &events {
            per_connection[event.connection as usize] += 1;
        }
        // 2,500 expected each; binomial standard deviation is about 47.
        assert!(
            per_connection
                .iter()
                .all(|&count| (2_250..=2_750).contains(&count)),
            "{arrivals:?}: {per_connection:?}"
        );
    }
}

#[test]
fn interleaved_connections_parse_in_time_order() {
    let text = "2 500 1\n2 900 2\n0 100 3\n0 700 4\n";
    let events = parse_trace(text, Path::new("mixed.trace")).unwrap();
    let order: Vec<u32> = events.iter().map(|e| e.size_bytes).collect();
    assert_eq!(order, [3, 1, 4, 2]);
    assert_eq!(summarize(&events).connections, 3);
}

#[test]
fn bad_trace_lines_name_file_line_and_field() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("bad.trace");
    std::fs::write(&path, "# ok\n0 0 64\n\n1 10 big\n").unwrap();
    let message = read_trace(&path).unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "{}:4:6: size_bytes: expected a non-negative integer, got `big`",
            path.display()
        )
    );
    let missing = read_trace(&directory.path().join("absent.trace")).unwrap_err();
    assert!(matches!(missing, TraceError::Read { .. }), "{missing}");
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    Trace(TraceArgs),
}

fn trace_args(arguments: &[&str]) -> Result<TraceArgs, clap::Error> {
    let mut argv = vec!["epoll-bench", "trace"];
    argv.extend_from_slice(arguments);
    Cli::try_parse_from(argv).map(|cli| match cli.command {
        Command::Trace(args) => args,
    })
}

#[test]
fn trace_generate_command_writes_the_file_it_describes() {
    let directory = tempfile::tempdir().unwrap();
    let out = directory.path().join("cli.trace");
    let out_text = out.to_str().unwrap();
    let arguments = [
        "generate",
        "--out",
        out_text,
        "--connections",
        "4",
        "--duration-seconds",
        "0.5",
        "--rate-per-second",
        "2000",
        "--arrivals",
        "fixed",
        "--size",
        "bimodal:64:4096:0.25",
        "--seed",
        "9",
    ];
    run_trace_command(&trace_args(&arguments).unwrap()).unwrap();
    let events = read_trace(&out).unwrap();
    // 0.5 s at 2,000/s, evenly spaced: offsets 0, 500, ..., 499,500 µs.
    assert_eq!(events.len(), 1000);
    assert_eq!(events.last().unwrap().offset_us, 499_500);
    assert!(
        events
            .iter()
            .all(|e| e.size_bytes == 64 || e.size_bytes == 4096)
    );
    assert_eq!(
        events[..4].iter().map(|e| e.connection).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    // Same command, same file.
    let first = std::fs::read(&out).unwrap();
    run_trace_command(&trace_args(&arguments).unwrap()).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), first);
    // Nothing but the trace is left in the directory (the temporary file was
    // renamed, not copied).
    assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 1);
}

#[test]
fn trace_generate_rejects_bad_arguments() {
    let out = "/tmp/never-written.trace";
    // Exactly one of --requests and --duration-seconds.
    assert!(trace_args(&["generate", "--out", out, "--rate-per-second", "10"]).is_err());
    assert!(
        trace_args(&[
            "generate",
            "--out",
            out,
            "--rate-per-second",
            "10",
            "--requests",
            "5",
            "--duration-seconds",
            "1"
        ])
        .is_err()
    );
    // A size spec clap rejects, with the reason.
    let error = trace_args(&[
        "generate",
        "--out",
        out,
        "--rate-per-second",
        "10",
        "--requests",
        "5",
        "--size",
        "uniform:9:1",
    ])
    .err()
    .unwrap()
    .to_string();
    assert!(
        error.contains("max_bytes: must be at least min_bytes"),
        "{error}"
    );
    // Out-of-range numbers: clap refuses them with the flag's range.
    let base = ["generate", "--out", out];
    for (arguments, expected) in [
        (["--rate-per-second", "0"], "must be a number > 0"),
        (
            ["--connections", "0"],
            "must be a whole number from 1 to 100000",
        ),
        (["--requests", "20000000"], "from 1 to 10000000"),
    ] {
        let mut argv = base.to_vec();
        argv.extend_from_slice(&arguments);
        argv.extend_from_slice(&["--rate-per-second", "10", "--requests", "5"]);
        let error = trace_args(&argv).err().unwrap().to_string();
        assert!(
            error.contains(arguments[0]) && error.contains(expected),
            "{arguments:?}: {error}"
        );
    }
    // The same values set in code reach the spec check, which refuses them
    // as InvalidSpec.
    let valid = [&base[..], &["--rate-per-second", "10", "--requests", "5"]].concat();
    type Change = fn(&mut GenerateArgs);
    let changes: [(Change, &str); 3] = [
        (
            |g| g.rate_per_second = 0.0,
            "--rate-per-second: must be a positive number",
        ),
        (
            |g| g.connections = 0,
            "--connections: must be between 1 and",
        ),
        (
            |g| g.requests = Some(20_000_000),
            "more than the 10000000 allowed",
        ),
    ];
    for (change, expected) in changes {
        let mut arguments = trace_args(&valid).unwrap();
        let TraceCommand::Generate(generate) = &mut arguments.command;
        change(generate);
        let error = run_trace_command(&arguments).unwrap_err();
        assert!(
            matches!(
                error.downcast_ref::<TraceError>(),
                Some(TraceError::InvalidSpec(message)) if message.contains(expected)
            ),
            "{expected}: {error}"
        );
    }
    assert!(!Path::new(out).exists());
}

#[test]
fn written_traces_start_with_the_format_header() {
    let mut text = Vec::new();
    let events = [TraceEvent {
        connection: 1,
        offset_us: 2,
        size_bytes: 3,
    }];
    write_trace(&mut text, &events, "hello").unwrap();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "# epoll-bench trace v1: connection_id offset_us size_bytes\n# hello\n1 2 3\n"
    );
}
