//! Profile files: every built-in parses into the cases it promises, and
//! every kind of mistake gets one message naming file, line and field.

use std::path::Path;

use epoll_bench::driver::profile::{
    DEFAULT_SUITE, ProfileError, builtin_profiles, default_suite, load_builtin, load_profile,
    parse_profile, parse_profile_within_fd_limit, resolve_profile,
};
use epoll_bench::driver::trace::{TRACE_HEADER, write_trace_file};
use epoll_bench::driver::workload::TraceEvent;
use epoll_bench::protocol::Protocol;
use epoll_bench::results::workload::{Case, ClientReceive, Shape, SizeDistribution};

fn parse(text: &str) -> Result<Vec<Case>, ProfileError> {
    parse_profile(text, Path::new("profiles/bad.toml"))
}

fn error_of(text: &str) -> String {
    match parse(text) {
        Ok(cases) => panic!("expected an error for\n{text}\ngot {cases:?}"),
        Err(error) => error.to_string(),
    }
}

const PING_PONG: &str = r#"
name = "ok"
[shape]
kind = "ping_pong"
[sizes]
distribution = "fixed"
bytes = 64
"#;

#[test]
fn every_builtin_parses_and_the_repository_copy_matches_the_embedded_one() {
    let builtins = builtin_profiles();
    assert!(builtins.len() >= 10);
    for (name, text) in &builtins {
        let cases = load_builtin(name).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(!cases.is_empty(), "{name}");
        assert!(
            cases.iter().all(|case| case.profile == *name),
            "{name}: profile name"
        );
        let on_disk = std::fs::read_to_string(format!("profiles/{name}.toml")).unwrap();
        assert_eq!(
            &on_disk, text,
            "profiles/{name}.toml differs from the embedded copy"
        );
        assert_eq!(
            load_profile(Path::new(&format!("profiles/{name}.toml"))).unwrap(),
            cases
        );
    }
    // Every file in profiles/ is a built-in (none forgotten in the list).
    let files = std::fs::read_dir("profiles")
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "toml")
        })
        .count();
    assert_eq!(files, builtins.len());
}

#[test]
fn builtins_cover_the_shapes_the_issue_asks_for() {
    let all: Vec<Case> = builtin_profiles()
        .iter()
        .flat_map(|(name, _)| load_builtin(name).unwrap())
        .collect();
    let has = |predicate: &dyn Fn(&Case) -> bool| all.iter().any(predicate);
    let fixed_64 = |case: &Case| case.sizes == SizeDistribution::Fixed { bytes: 64 };
    assert!(has(&|c| c.shape == Shape::PingPong
        && fixed_64(c)
        && c.connections == 1));
    assert!(has(&|c| c.shape == Shape::PingPong
        && fixed_64(c)
        && c.connections == 64));
    assert!(has(&|c| c.shape == Shape::Pipelined { depth: 16 }));
    assert!(has(&|c| matches!(c.shape, Shape::Bulk { .. })
        && c.sizes == SizeDistribution::Fixed { bytes: 1 << 20 }));
    assert!(has(&|c| matches!(c.shape, Shape::ConstantRate { .. })));
    assert!(has(&|c| matches!(c.shape, Shape::Churn { .. })));
    assert!(has(&|c| c.shape
        == Shape::IdleActive {
            idle_connections: 10_000
        }
        && c.connections == 16));
    assert!(has(&|c| c.protocol == Protocol::Echo));
    assert!(has(&|c| c.client.read_rate_bytes_per_second.is_some()
        && c.client.receive_buffer_bytes.is_some()));

    let sweep: Vec<u32> = load_builtin("size-sweep")
        .unwrap()
        .iter()
        .map(|case| case.sweep_size_bytes.unwrap())
        .collect();
    let powers_of_four: Vec<u32> = (0..9).map(|i| 64 << (2 * i)).collect();
    assert_eq!(sweep, powers_of_four);
    assert_eq!(*sweep.last().unwrap(), 4 << 20);
}

#[test]
fn default_suite_is_small_and_labels_are_unique() {
    let suite = default_suite();
    assert_eq!(
        suite.len(),
        DEFAULT_SUITE.len(),
        "one case per default profile"
    );
    let mut labels: Vec<&str> = suite.iter().map(|case| case.label.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), suite.len());
    // The expensive shapes are opt-in.
    assert!(
        suite
            .iter()
            .all(|case| !matches!(case.shape, Shape::IdleActive { .. }))
    );
    assert!(suite.iter().all(|case| case.sweep_size_bytes.is_none()));
    // The fixed-load case compares server CPU at an offered load every
    // variant sustains.
    assert!(
        suite
            .iter()
            .any(|case| case.label == "fixed-load-25k-64conn"
                && case.connections == 64
                && case.shape
                    == Shape::ConstantRate {
                        rate_per_second: 25_000.0
                    }
                && case.sizes == SizeDistribution::Fixed { bytes: 64 })
    );
    assert!(suite.iter().all(|case| case.client.is_unset()));
}

#[test]
fn the_workload_profiles_expand_as_their_files_promise() {
    let backpressure = load_builtin("backpressure-slow-reader").unwrap();
    assert_eq!(backpressure.len(), 1);
    assert_eq!(
        backpressure[0].client,
        ClientReceive {
            receive_buffer_bytes: Some(4096),
            read_rate_bytes_per_second: Some(16_000_000),
        }
    );
    // What is in flight per connection must exceed a loopback send buffer
    // (~4 MB) plus the client's, or the server's writes would not block.
    assert_eq!(
        backpressure[0].sizes,
        SizeDistribution::Fixed { bytes: 256 << 10 }
    );
    assert_eq!(backpressure[0].shape, Shape::Pipelined { depth: 16 });

    let sweep = load_builtin("load-latency-sweep").unwrap();
    let rates: Vec<f64> = sweep
        .iter()
        .map(|case| match case.shape {
            Shape::ConstantRate { rate_per_second } => rate_per_second,
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        rates,
        [10e3, 25e3, 50e3, 75e3, 100e3, 125e3, 150e3, 200e3],
        "from low load past a 2-CPU machine's capacity"
    );
    assert_eq!(sweep[0].label, "load-latency-sweep/10000rps");
    assert_eq!(sweep[7].label, "load-latency-sweep/200000rps");
    assert!(sweep.iter().all(|case| case.connections == 64));

    let idle: Vec<(String, Shape)> = load_builtin("idle-scale")
        .unwrap()
        .into_iter()
        .map(|case| (case.label, case.shape))
        .collect();
    let expected: Vec<(String, Shape)> = [1000, 10_000, 18_000]
        .into_iter()
        .map(|idle_connections| {
            (
                format!("idle-scale/{idle_connections}idle"),
                Shape::IdleActive { idle_connections },
            )
        })
        .collect();
    assert_eq!(idle, expected);
}

#[test]
fn client_options_parse_into_every_case() {
    let cases = parse(
        r#"
name = "slow"
connections = [1, 4]
[shape]
kind = "ping_pong"
[sizes]
distribution = "fixed"
bytes = 65536
[client]
receive_buffer_bytes = 4096
read_rate_bytes_per_second = 1000000
"#,
    )
    .unwrap();
    assert_eq!(cases.len(), 2);
    for case in &cases {
        assert_eq!(case.client.receive_buffer_bytes, Some(4096));
        assert_eq!(case.client.read_rate_bytes_per_second, Some(1_000_000));
    }
    // Either option alone is fine; none means a fast reader.
    let only_rate = parse(&format!(
        "{PING_PONG}[client]\nread_rate_bytes_per_second = 5000\n"
    ))
    .unwrap();
    assert_eq!(
        only_rate[0].client,
        ClientReceive {
            receive_buffer_bytes: None,
            read_rate_bytes_per_second: Some(5000)
        }
    );
    assert!(parse(PING_PONG).unwrap()[0].client.is_unset());
    // Unset options stay out of results files, so older ones still read.
    let json = serde_json::to_value(&parse(PING_PONG).unwrap()[0]).unwrap();
    assert!(json.get("client").is_none(), "{json}");
}

#[test]
fn rate_and_idle_sweeps_expand_into_labelled_cases() {
    let cases = parse(
        r#"
name = "rates"
connections = [2, 8]
[shape]
kind = "constant_rate"
rates_per_second = [1000, 2500.5]
[sizes]
distribution = "fixed"
bytes = 64
"#,
    )
    .unwrap();
    let got: Vec<(&str, u32, Shape)> = cases
        .iter()
        .map(|case| (case.label.as_str(), case.connections, case.shape.clone()))
        .collect();
    let rate = |rate_per_second| Shape::ConstantRate { rate_per_second };
    assert_eq!(
        got,
        [
            ("rates/2conn/1000rps", 2, rate(1000.0)),
            ("rates/2conn/2500.5rps", 2, rate(2500.5)),
            ("rates/8conn/1000rps", 8, rate(1000.0)),
            ("rates/8conn/2500.5rps", 8, rate(2500.5)),
        ]
    );

    let cases = parse(
        r#"
name = "idle"
connections = 4
[shape]
kind = "idle_active"
idle_connections = [10, 100]
[sizes]
distribution = "fixed"
sweep_bytes = [64, 1024]
"#,
    )
    .unwrap();
    let labels: Vec<&str> = cases.iter().map(|case| case.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "idle/10idle/64B",
            "idle/10idle/1024B",
            "idle/100idle/64B",
            "idle/100idle/1024B"
        ]
    );
    assert_eq!(
        cases[3].shape,
        Shape::IdleActive {
            idle_connections: 100
        }
    );
    // A single count is not a sweep: no label part.
    let single = parse(
        "name = \"one\"\n[shape]\nkind = \"idle_active\"\nidle_connections = 7\n[sizes]\ndistribution = \"fixed\"\nbytes = 64\n",
    )
    .unwrap();
    assert_eq!(single[0].label, "one");
}

#[test]
fn connections_beyond_the_descriptor_limit_are_refused_naming_the_limit() {
    // Idle connections beyond one process go to driver worker processes, so
    // only the active set must fit the driver's main process.
    let idle = "name = \"x\"\nconnections = 16\n[shape]\nkind = \"idle_active\"\nidle_connections = [1000, 5000]\n[sizes]\ndistribution = \"fixed\"\nbytes = 64\n";
    let file = Path::new("profiles/bad.toml");
    assert_eq!(
        parse_profile_within_fd_limit(idle, file, 2000)
            .unwrap()
            .len(),
        2
    );
    let too_active = idle.replace("connections = 16", "connections = 3000");
    let message = parse_profile_within_fd_limit(&too_active, file, 2000)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(
            "profiles/bad.toml:2:15: connections: 3000 active connections stay in the driver's \
             main process"
        ) && message.contains("hard RLIMIT_NOFILE of 2000; at most 1936 active connections fit"),
        "{message}"
    );
    // More worker processes than a run may start: the idle count is named.
    let wide = idle.replace("[1000, 5000]", "[1000, 10000]");
    let message = parse_profile_within_fd_limit(&wide, file, 80)
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "profiles/bad.toml:5:27: shape.idle_connections[1]: 10000 idle connections at 16 per \
         process (the hard RLIMIT_NOFILE less 64 spare) need 625 worker processes, above the \
         512 a run may start: raise the hard RLIMIT_NOFILE (as root: `ulimit -Hn`, \
         /etc/security/limits.conf; fs.nr_open bounds it)"
    );
    assert_eq!(parse_profile(idle, file).unwrap().len(), 2);

    let many = format!("connections = [10, 3000]\n{PING_PONG}");
    let message = parse_profile_within_fd_limit(&many, file, 2000)
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(
            "profiles/bad.toml:1:15: connections: 3000 connections need 3064 file descriptors"
        ),
        "{message}"
    );
    assert!(message.contains("hard RLIMIT_NOFILE of 2000"), "{message}");
}

#[test]
fn lists_expand_into_one_case_per_point() {
    let cases = parse(
        r#"
name = "grid"
protocol = "echo"
connections = [1, 8]
seed = 99
[shape]
kind = "ping_pong"
[sizes]
distribution = "fixed"
sweep_bytes = [64, 4096, 65536]
"#,
    )
    .unwrap();
    let labels: Vec<&str> = cases.iter().map(|case| case.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "grid/1conn/64B",
            "grid/1conn/4096B",
            "grid/1conn/65536B",
            "grid/8conn/64B",
            "grid/8conn/4096B",
            "grid/8conn/65536B"
        ]
    );
    assert!(
        cases
            .iter()
            .all(|case| case.protocol == Protocol::Echo && case.seed == 99)
    );
    assert_eq!(cases[4].connections, 8);
    assert_eq!(cases[4].sweep_size_bytes, Some(4096));
    assert_eq!(cases[4].sizes, SizeDistribution::Fixed { bytes: 4096 });
}

#[test]
fn defaults_fill_name_protocol_connections_and_seed() {
    let cases = parse_profile(
        "[shape]\nkind = \"pipelined\"\ndepth = 2\n[sizes]\ndistribution = \"uniform\"\nmin_bytes = 1\nmax_bytes = 9\n",
        Path::new("somewhere/my-profile.toml"),
    )
    .unwrap();
    assert_eq!(
        cases,
        [Case {
            profile: "my-profile".into(),
            label: "my-profile".into(),
            protocol: Protocol::Frame,
            connections: 1,
            shape: Shape::Pipelined { depth: 2 },
            sizes: SizeDistribution::Uniform {
                min_bytes: 1,
                max_bytes: 9
            },
            seed: 1,
            sweep_size_bytes: None,
            client: Default::default(),
        }]
    );
}

#[test]
fn every_kind_of_mistake_names_file_line_and_field() {
    let with_shape = |shape: &str| {
        format!("name = \"x\"\n[shape]\n{shape}\n[sizes]\ndistribution = \"fixed\"\nbytes = 64\n")
    };
    let with_sizes =
        |sizes: &str| format!("name = \"x\"\n[shape]\nkind = \"ping_pong\"\n[sizes]\n{sizes}\n");
    let cases: Vec<(String, &str)> = vec![
        // TOML syntax.
        ("name = \"x\n".into(), "profiles/bad.toml:1:10: syntax: "),
        // Unknown fields, top level and nested.
        (
            format!("colour = 1\n{PING_PONG}"),
            "profiles/bad.toml:1:1: colour: unknown field `colour`",
        ),
        (
            with_shape("kind = \"pipelined\"\ndpeth = 3"),
            "profiles/bad.toml:4:1: shape.dpeth: unknown field `dpeth`",
        ),
        // Wrong types.
        (
            with_shape("kind = \"pipelined\"\ndepth = \"16\""),
            "profiles/bad.toml:4:9: shape.depth: invalid type: string \"16\", expected an integer",
        ),
        (
            format!("connections = [1, \"b\"]\n{PING_PONG}"),
            "profiles/bad.toml:1:19: connections[1]: invalid type: string \"b\"",
        ),
        // Missing fields and tables.
        (
            "name = \"x\"\n[sizes]\ndistribution = \"fixed\"\nbytes = 64\n".into(),
            "profiles/bad.toml:1:1: shape: missing field `shape`",
        ),
        (
            "name = \"x\"\n[shape]\ndepth = 4\n[sizes]\ndistribution = \"fixed\"\nbytes = 64\n".into(),
            "profiles/bad.toml:2:1: shape.kind: missing field `kind`",
        ),
        (
            with_shape("kind = \"pipelined\""),
            "profiles/bad.toml:2:1: shape.depth: missing (required by shape kind \"pipelined\")",
        ),
        (
            "name = \"x\"\n[shape]\nkind = \"ping_pong\"\n".into(),
            "profiles/bad.toml:1:1: sizes: missing",
        ),
        (
            with_sizes("distribution = \"uniform\"\nmin_bytes = 4"),
            "profiles/bad.toml:4:1: sizes.max_bytes: missing (required by distribution \"uniform\")",
        ),
        // Ranges.
        (
            with_shape("kind = \"pipelined\"\ndepth = 0"),
            "profiles/bad.toml:4:9: shape.depth: must be between 1 and 4096, got 0",
        ),
        (
            with_shape("kind = \"constant_rate\"\nrate_per_second = -5"),
            "profiles/bad.toml:4:19: shape.rate_per_second: must be greater than 0",
        ),
        (
            format!("connections = 0\n{PING_PONG}"),
            "profiles/bad.toml:1:15: connections: must be between 1 and 65536, got 0",
        ),
        (
            format!("connections = [4, 4]\n{PING_PONG}"),
            "profiles/bad.toml:1:19: connections[1]: 4 is listed twice",
        ),
        (
            with_sizes("distribution = \"fixed\"\nbytes = 16777217"),
            "profiles/bad.toml:6:9: sizes.bytes: must be between 1 and 16777216, got 16777217",
        ),
        (
            format!("connections = []\n{PING_PONG}"),
            "profiles/bad.toml:1:15: connections: must list 1 to 64 counts, got 0",
        ),
        (
            with_sizes("distribution = \"fixed\"\nsweep_bytes = [64, 256, 64]"),
            "profiles/bad.toml:6:25: sizes.sweep_bytes[2]: 64 is listed twice",
        ),
        (
            with_sizes("distribution = \"fixed\"\nsweep_bytes = [64, 0]"),
            "profiles/bad.toml:6:20: sizes.sweep_bytes[1]: must be between 1 and 16777216, got 0",
        ),
        (
            with_sizes("distribution = \"uniform\"\nmin_bytes = 100\nmax_bytes = 10"),
            "profiles/bad.toml:7:13: sizes.max_bytes: must be at least min_bytes (100), got 10",
        ),
        (
            with_sizes("distribution = \"log_normal\"\nmedian_bytes = 100\nsigma = 9.5\nmax_bytes = 1000"),
            "profiles/bad.toml:7:9: sizes.sigma: must be between 0 and 4, got 9.5",
        ),
        (
            with_sizes("distribution = \"bimodal\"\nsmall_bytes = 1\nlarge_bytes = 2\nlarge_fraction = 2"),
            "profiles/bad.toml:8:18: sizes.large_fraction: must be between 0 and 1, got 2",
        ),
        (
            format!("seed = -1\n{PING_PONG}"),
            "profiles/bad.toml:1:8: seed: must be non-negative, got -1",
        ),
        // Unknown names.
        (
            with_shape("kind = \"pingpong\""),
            "profiles/bad.toml:3:8: shape.kind: unknown kind \"pingpong\"",
        ),
        (
            with_sizes("distribution = \"normal\""),
            "profiles/bad.toml:5:16: sizes.distribution: unknown distribution \"normal\"",
        ),
        (
            format!("protocol = \"http\"\n{PING_PONG}"),
            "profiles/bad.toml:1:12: protocol: must be \"frame\", \"echo\" or \"file\", got \"http\"",
        ),
        (
            "name = \"has space\"\n[shape]\nkind = \"ping_pong\"\n".into(),
            "profiles/bad.toml:1:8: name: must be 1 to 64 characters",
        ),
        // Fields the chosen kind or distribution does not use.
        (
            with_shape("kind = \"ping_pong\"\ndepth = 4"),
            "profiles/bad.toml:4:9: shape.depth: not used by shape kind \"ping_pong\"",
        ),
        (
            with_sizes("distribution = \"fixed\"\nbytes = 64\nsigma = 1.0"),
            "profiles/bad.toml:7:9: sizes.sigma: not used by distribution \"fixed\"",
        ),
        (
            with_sizes("distribution = \"fixed\"\nbytes = 64\nsweep_bytes = [1]"),
            "profiles/bad.toml:7:15: sizes.sweep_bytes: give either bytes or sweep_bytes, not both",
        ),
        // The [client] table.
        (
            format!("{PING_PONG}[client]\nreceive_buffer_bytes = 100\n"),
            "profiles/bad.toml:9:24: client.receive_buffer_bytes: must be between 1024 and 1073741824, got 100",
        ),
        (
            format!("{PING_PONG}[client]\nread_rate_bytes_per_second = 0\n"),
            "profiles/bad.toml:9:30: client.read_rate_bytes_per_second: must be between 1000 and 100000000000, got 0",
        ),
        (
            format!("{PING_PONG}[client]\nread_rate_bytes_per_second = -5\n"),
            "profiles/bad.toml:9:30: client.read_rate_bytes_per_second: must be between 1000 and 100000000000, got -5",
        ),
        (
            format!("{PING_PONG}[client]\nread_rate_bytes_per_second = \"4 MB\"\n"),
            "profiles/bad.toml:9:30: client.read_rate_bytes_per_second: invalid type: string \"4 MB\", expected an integer",
        ),
        (
            format!("{PING_PONG}[client]\nread_rate = 5000\n"),
            "profiles/bad.toml:9:1: client.read_rate: unknown field `read_rate`",
        ),
        (
            format!("{PING_PONG}[client]\n"),
            "profiles/bad.toml:8:1: client: give receive_buffer_bytes, read_rate_bytes_per_second or both",
        ),
        // Sweeps of shape parameters.
        (
            with_shape("kind = \"constant_rate\"\nrates_per_second = [1000, 0]"),
            "profiles/bad.toml:4:27: shape.rates_per_second[1]: must be greater than 0 and at most 10000000, got 0",
        ),
        (
            with_shape("kind = \"constant_rate\"\nrates_per_second = [1000, 2000, 1000]"),
            "profiles/bad.toml:4:33: shape.rates_per_second[2]: 1000 is listed twice",
        ),
        (
            with_shape("kind = \"constant_rate\"\nrates_per_second = []"),
            "profiles/bad.toml:4:20: shape.rates_per_second: must list 1 to 64 rates, got 0",
        ),
        (
            with_shape("kind = \"constant_rate\"\nrate_per_second = 5\nrates_per_second = [1]"),
            "profiles/bad.toml:5:20: shape.rates_per_second: give either rate_per_second or rates_per_second, not both",
        ),
        (
            with_shape("kind = \"constant_rate\""),
            "profiles/bad.toml:2:1: shape.rate_per_second: missing (required by shape kind \"constant_rate\"; or give rates_per_second)",
        ),
        (
            with_shape("kind = \"ping_pong\"\nrates_per_second = [1]"),
            "profiles/bad.toml:4:20: shape.rates_per_second: not used by shape kind \"ping_pong\"",
        ),
        (
            with_shape("kind = \"idle_active\"\nidle_connections = [10, 0]"),
            "profiles/bad.toml:4:25: shape.idle_connections[1]: must be between 1 and 1000000, got 0",
        ),
        (
            with_shape("kind = \"idle_active\"\nidle_connections = [10, 10]"),
            "profiles/bad.toml:4:25: shape.idle_connections[1]: 10 is listed twice",
        ),
        (
            with_shape("kind = \"idle_active\"\nidle_connections = 0"),
            "profiles/bad.toml:4:20: shape.idle_connections: must be between 1 and 1000000, got 0",
        ),
        // Cross-field rules.
        (
            "name = \"x\"\n[shape]\nkind = \"bulk\"\nwindow_bytes = 1000\n[sizes]\ndistribution = \"fixed\"\nbytes = 4096\n".into(),
            "profiles/bad.toml:4:16: shape.window_bytes: must be at least the largest request (4096 bytes), got 1000",
        ),
    ];
    for (text, expected) in cases {
        let message = error_of(&text);
        assert!(
            message.starts_with(expected),
            "for\n{text}\nexpected a message starting with\n  {expected}\ngot\n  {message}"
        );
    }
}

#[test]
fn unreadable_and_unknown_profiles_say_so() {
    let missing = load_profile(Path::new("/nonexistent/profile.toml")).unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("/nonexistent/profile.toml: cannot read profile:"),
        "{missing}"
    );
    let unknown = resolve_profile("no-such-builtin").unwrap_err().to_string();
    assert!(
        unknown.contains("no profile file or built-in profile named `no-such-builtin`"),
        "{unknown}"
    );
    assert!(
        unknown.contains("pingpong-64b-1conn"),
        "lists the built-ins: {unknown}"
    );
    assert_eq!(
        resolve_profile("bulk-1mib").unwrap(),
        load_builtin("bulk-1mib").unwrap()
    );
    assert_eq!(
        resolve_profile("profiles/bulk-1mib.toml").unwrap(),
        load_builtin("bulk-1mib").unwrap()
    );
}

#[test]
fn trace_profiles_take_connections_and_sizes_from_the_trace() {
    let directory = tempfile::tempdir().unwrap();
    let events = [
        TraceEvent {
            connection: 0,
            offset_us: 0,
            size_bytes: 100,
        },
        TraceEvent {
            connection: 2,
            offset_us: 10,
            size_bytes: 300,
        },
    ];
    write_trace_file(&directory.path().join("t.trace"), &events, "test").unwrap();
    let profile = directory.path().join("replay.toml");
    std::fs::write(
        &profile,
        "[shape]\nkind = \"trace\"\npath = \"t.trace\"\nspeed = 2.0\n",
    )
    .unwrap();
    let cases = load_profile(&profile).unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].connections, 3, "max connection id + 1");
    assert_eq!(
        cases[0].shape,
        Shape::Trace {
            path: directory.path().join("t.trace"),
            speed: 2.0
        }
    );
    assert_eq!(
        cases[0].sizes,
        SizeDistribution::FromTrace {
            mean_bytes: 200.0,
            max_bytes: 300
        }
    );

    // A bad trace is reported at the profile's path field, with the trace's
    // own file, line and field.
    std::fs::write(
        directory.path().join("t.trace"),
        format!("{TRACE_HEADER}\n0 0 64\n0 5 0\n"),
    )
    .unwrap();
    let message = load_profile(&profile).unwrap_err().to_string();
    let expected_prefix = format!("{}:3:8: shape.path: ", profile.display());
    assert!(message.starts_with(&expected_prefix), "{message}");
    assert!(
        message.contains("t.trace:3:5: size_bytes: must be between 1 and"),
        "{message}"
    );

    // Connections and sizes are the trace's business.
    std::fs::write(
        &profile,
        "connections = 4\n[shape]\nkind = \"trace\"\npath = \"t.trace\"\n",
    )
    .unwrap();
    let message = load_profile(&profile).unwrap_err().to_string();
    assert!(
        message.contains(":1:15: connections: not used with shape kind \"trace\""),
        "{message}"
    );
}
