use super::machine::{nproc_exempt, parse_loadavg_threads, parse_max_processes};
use super::*;

/// This VM's limits as measured: pid_max 32,768, threads-max 192,724,
/// max_map_count 65,530, 128 threads running, root (no RLIMIT_NPROC).
fn this_vm() -> ThreadLimits {
    ThreadLimits {
        pid_max: 32_768,
        threads_max: 192_724,
        threads_running: 128,
        max_map_count: 65_530,
        nproc: None,
    }
}

fn demand(connections: u64, processes: u64) -> ThreadDemand {
    ThreadDemand {
        connections,
        processes,
        serving_threads: 1,
    }
}

#[test]
fn ten_thousand_connections_fit_one_process() {
    assert_eq!(thread_shortfalls(&demand(10_000, 1), &this_vm()), vec![]);
    assert_eq!(describe(&[]), None);
}

#[test]
fn each_process_starts_a_quarter_of_its_map_count_in_threads() {
    // (65,530 - 1,024) / 4 = 16,126, less 11 threads of its own.
    assert_eq!(per_process_threads(65_530, &demand(1, 1)), 16_115);
    let shortfalls = thread_shortfalls(&demand(18_000, 1), &this_vm());
    let [ThreadShortfall::MapCount { capacity, .. }] = shortfalls[..] else {
        panic!("{shortfalls:?}");
    };
    assert_eq!(capacity, 16_115);
    let reason = describe(&shortfalls).unwrap();
    assert!(
        reason
            .starts_with("vm.max_map_count is 65530 mappings per process and each thread holds 4")
            && reason.contains("one server process starts at most 16115 connection threads")
            && reason.contains("1 process(es) hold at most 16115, not 18000")
            && reason
                .contains("`run --server-processes 2`, or `sysctl -w vm.max_map_count=131072`"),
        "{reason}"
    );
}

#[test]
fn a_hundred_thousand_connections_need_pid_max_and_seven_processes() {
    // Six processes (enough for the descriptors) start 6 x 16,110 threads,
    // 86,994 at 90%: the map count asks for seven, and pid_max for more
    // pids than 32,768.
    let shortfalls = thread_shortfalls(&demand(100_000, 6), &this_vm());
    assert_eq!(shortfalls.len(), 2, "{shortfalls:?}");
    let reason = describe(&shortfalls).unwrap();
    assert!(
        reason.starts_with("kernel.pid_max is 32768: every thread takes a pid, and 31828 are free")
            && reason
                .contains("the server needs 100096 threads: `sysctl -w kernel.pid_max=4194304`"),
        "{reason}"
    );
    assert!(
        reason.contains("6 process(es) hold at most 86994 (filled to 90%")
            && reason
                .contains("`run --server-processes 7`, or `sysctl -w vm.max_map_count=131072`"),
        "{reason}"
    );
    // With both fixed, nothing is left.
    let raised = ThreadLimits {
        pid_max: PID_MAX_LIMIT,
        ..this_vm()
    };
    assert_eq!(thread_shortfalls(&demand(100_000, 7), &raised), vec![]);
}

#[test]
fn threads_max_and_nproc_count_the_threads_already_running() {
    let limits = ThreadLimits {
        pid_max: PID_MAX_LIMIT,
        threads_max: 15_000,
        threads_running: 5_000,
        max_map_count: 1 << 20,
        nproc: Some(NprocLimit {
            soft: 12_000,
            hard: 96_362,
            user_threads_running: 1_000,
        }),
    };
    let shortfalls = thread_shortfalls(&demand(11_000, 1), &limits);
    let reason = describe(&shortfalls).unwrap();
    assert_eq!(shortfalls.len(), 2, "{reason}");
    assert!(
        reason.starts_with(
            "kernel.threads-max is 15000: 9488 threads are free (less the threads running and \
             512 spare), but the server needs 11011: `sysctl -w kernel.threads-max=16523`"
        ),
        "{reason}"
    );
    assert!(
        reason.contains(
            "RLIMIT_NPROC is 12000 (hard 96362) threads for this user, all its processes \
             together: 10488 are free"
        ) && reason.contains("`ulimit -u 12523`")
            && reason.contains("or run as root"),
        "{reason}"
    );
    // Root (no RLIMIT_NPROC) has only threads-max left.
    let root = ThreadLimits {
        nproc: None,
        ..limits
    };
    assert!(matches!(
        thread_shortfalls(&demand(11_000, 1), &root)[..],
        [ThreadShortfall::ThreadsMax { .. }]
    ));
}

#[test]
fn no_process_count_holds_what_the_map_count_cannot() {
    let tiny = ThreadLimits {
        max_map_count: 1_100,
        pid_max: PID_MAX_LIMIT,
        ..this_vm()
    };
    let reason = describe(&thread_shortfalls(&demand(100_000, 1), &tiny)).unwrap();
    assert!(!reason.contains("--server-processes"), "{reason}");
    assert!(
        reason.ends_with("`sysctl -w vm.max_map_count=458752`"),
        "{reason}"
    );
}

#[test]
fn proc_texts_parse() {
    assert_eq!(
        parse_loadavg_threads("6.19 3.28 2.08 7/128 13838\n"),
        Some(128)
    );
    assert_eq!(parse_loadavg_threads("6.19 3.28"), None);
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max processes             4096                 96362                processes \n";
    assert_eq!(parse_max_processes(limits), Some((4096, 96_362)));
    let unlimited =
        "Max processes             unlimited            unlimited            processes\n";
    assert_eq!(parse_max_processes(unlimited), Some((u64::MAX, u64::MAX)));
    assert_eq!(parse_max_processes("Max open files 1 2 files\n"), None);
}

#[test]
fn root_and_capabilities_of_the_initial_namespace_are_exempt_from_nproc() {
    let initial = "         0          0 4294967295\n";
    let status =
        |uid: u32, caps: &str| format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}\nCapEff:\t{caps}\n");
    assert!(nproc_exempt(&status(0, "000001fffeffffff"), initial));
    assert!(!nproc_exempt(&status(1000, "0000000000000000"), initial));
    // CAP_SYS_ADMIN alone, or CAP_SYS_RESOURCE alone.
    assert!(nproc_exempt(&status(1000, "0000000000200000"), initial));
    assert!(nproc_exempt(&status(1000, "0000000001000000"), initial));
    // Root of a user namespace is an ordinary user to the kernel's check.
    let nested = "         0     100000      65536\n";
    assert!(!nproc_exempt(&status(0, "000001ffffffffff"), nested));
}
