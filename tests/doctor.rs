//! `epoll-bench doctor` against fake `/proc` and `/sys` trees: every check's
//! OK, WARN and FAIL paths with the message a user would read.

use epoll_bench::doctor::{
    self, DoctorArgs, DoctorReport, Finding, ProcessFacts, Status, diagnose, render_text,
};
use epoll_bench::sys::counters::SyscallKind;

/// A machine tuned as the README recommends; each test breaks one thing.
struct FakeMachine {
    dir: tempfile::TempDir,
    facts: ProcessFacts,
}

impl FakeMachine {
    fn well_tuned() -> FakeMachine {
        let machine = FakeMachine {
            dir: tempfile::tempdir().unwrap(),
            facts: ProcessFacts {
                nofile_soft: 65_536,
                nofile_hard: 65_536,
                usable_cpus: 4,
                effective_uid: Some(1000),
                kernel_counters_probe: None,
                steal_sample_percent: None,
            },
        };
        machine.write("proc/sys/net/core/somaxconn", "4096\n");
        machine.write("proc/sys/net/ipv4/tcp_max_syn_backlog", "4096\n");
        machine.write("proc/sys/net/ipv4/ip_local_port_range", "1024\t65535\n");
        machine.write("proc/sys/net/ipv4/tcp_tw_reuse", "1\n");
        machine.write("proc/sys/fs/pipe-max-size", "1048576\n");
        machine.write("proc/sys/fs/nr_open", "1048576\n");
        machine.write("proc/sys/fs/file-max", "2000000\n");
        machine.write("proc/sys/net/ipv4/tcp_mem", "190000\t253000\t380000\n");
        machine.write(
            "proc/meminfo",
            "MemTotal:       33554432 kB\nMemAvailable:   16777216 kB\n",
        );
        machine.write("proc/sys/kernel/perf_event_paranoid", "-1\n");
        machine.write("proc/sys/kernel/pid_max", "4194304\n");
        machine.write("proc/sys/kernel/threads-max", "192724\n");
        machine.write("proc/sys/vm/max_map_count", "262144\n");
        machine.write("proc/loadavg", "0.50 0.40 0.30 2/300 4242\n");
        machine.write("proc/self/uid_map", "         0          0 4294967295\n");
        machine.write(
            "proc/self/status",
            "Name:\tepoll-bench\nUid:\t1000\t1000\t1000\t1000\nThreads:\t1\nCapEff:\t0000000000000000\n",
        );
        machine.write(
            "proc/self/limits",
            "Limit                     Soft Limit           Hard Limit           Units\n\
             Max processes             63000                63000                processes\n",
        );
        machine.write(
            "proc/cpuinfo",
            "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr\n",
        );
        machine.write("sys/devices/system/cpu/online", "0-3\n");
        for cpu in 0..4 {
            machine.write(
                &format!("sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"),
                "performance\n",
            );
        }
        // 1,000 busy ticks, none stolen.
        machine.write(
            "proc/stat",
            "cpu  700 0 300 9000 0 0 0 0 0 0\ncpu0 700 0 300 9000 0 0 0 0 0 0\n",
        );
        machine.write("sys/class/dmi/id/sys_vendor", "Dell Inc.\n");
        machine.write("sys/class/dmi/id/product_name", "PowerEdge R650\n");
        machine.write(
            "sys/kernel/mm/transparent_hugepage/enabled",
            "always [madvise] never\n",
        );
        machine.write(
            "sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
            "21\n",
        );
        for (i, kind) in SyscallKind::ALL.iter().enumerate() {
            machine.write(
                &format!(
                    "sys/kernel/tracing/events/syscalls/sys_enter_{}/id",
                    kind.kernel_name()
                ),
                &format!("{}\n", 100 + i),
            );
        }
        machine
    }

    fn write(&self, relative: &str, contents: &str) {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    fn remove(&self, relative: &str) {
        let path = self.dir.path().join(relative);
        if path.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }

    fn args(&self) -> DoctorArgs {
        DoctorArgs {
            root: self.dir.path().to_path_buf(),
            ..DoctorArgs::default()
        }
    }

    fn report(&self) -> DoctorReport {
        diagnose(&self.args(), &self.facts)
    }

    fn check(&self, name: &str) -> Finding {
        self.report()
            .finding(name)
            .unwrap_or_else(|| panic!("no finding `{name}`"))
            .clone()
    }
}

fn assert_finding(finding: &Finding, status: Status, message_part: &str, fix_part: Option<&str>) {
    assert_eq!(finding.status, status, "{finding:#?}");
    assert!(
        finding.message.contains(message_part),
        "message of {} is `{}`, expected `{message_part}`",
        finding.check,
        finding.message
    );
    assert!(!finding.why.is_empty());
    match fix_part {
        Some(part) => assert!(
            finding.fix.as_deref().is_some_and(|f| f.contains(part)),
            "fix of {} is {:?}, expected `{part}`",
            finding.check,
            finding.fix
        ),
        None => assert_eq!(finding.fix, None, "{finding:#?}"),
    }
}

#[test]
fn a_well_tuned_machine_is_all_ok() {
    let machine = FakeMachine::well_tuned();
    let report = machine.report();
    let problems: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.status != Status::Ok)
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(report.worst(), Status::Ok);
    assert_eq!(report.ok_count, report.findings.len());
    assert_eq!((report.warn_count, report.fail_count), (0, 0));
    for check in [
        "RLIMIT_NOFILE",
        "fs.nr_open",
        "fs.file-max",
        "net.ipv4.tcp_mem",
        "memory",
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_tw_reuse",
        "fs.pipe-max-size",
        "kernel.perf_event_paranoid",
        "tracefs",
        "CPUs",
        "cpufreq governor",
        "virtualization",
        "CPU steal",
        "transparent hugepages",
        "threads (thread-per-connection)",
    ] {
        assert!(report.finding(check).is_some(), "missing {check}");
    }
    // No live probe against a fake tree.
    assert!(report.finding("kernel syscall counters").is_none());
}

#[test]
fn rlimit_nofile_against_connections() {
    let mut machine = FakeMachine::well_tuned();
    assert_finding(
        &machine.check("RLIMIT_NOFILE"),
        Status::Ok,
        "room for 10000 connections in every variant (30064 fds)",
        None,
    );

    machine.facts.nofile_soft = 1024;
    assert_finding(
        &machine.check("RLIMIT_NOFILE"),
        Status::Ok,
        "epoll-bench raises it to the hard limit 65536 itself",
        None,
    );

    machine.facts.nofile_hard = 20_000;
    let finding = machine.check("RLIMIT_NOFILE");
    assert_eq!(finding.observed, "soft 1024, hard 20000");
    assert_finding(
        &finding,
        Status::Warn,
        "holds 10000 connections at one fd each, but not if each also holds a splice pipe",
        Some("ulimit -n 30064"),
    );

    // Beyond one process: the driver starts workers for the idle ones, and
    // the finding says how many server processes it would take.
    machine.facts.nofile_hard = 4096;
    assert_finding(
        &machine.check("RLIMIT_NOFILE"),
        Status::Warn,
        "the hard limit 4096 holds 4032 connections per process: of 10000 (1000 active, kept in \
         the driver's main process) the driver holds the idle ones in 3 worker process(es); 1 \
         server process(es) at 1 file descriptors per connection hold at most 4032 connections",
        Some("ulimit -n 30064"),
    );
    assert!(machine.check("RLIMIT_NOFILE").message.ends_with(
        "10000 connections do not fit: 3 server processes (`run --server-processes 3`, \
             SO_REUSEPORT) would hold them"
    ));

    // Not even the active set fits one process: refused, naming the limit.
    machine.facts.nofile_hard = 500;
    assert_finding(
        &machine.check("RLIMIT_NOFILE"),
        Status::Fail,
        "1000 active connections stay in the driver's main process",
        Some("ulimit -n 30064"),
    );

    machine.facts.nofile_soft = u64::MAX;
    machine.facts.nofile_hard = u64::MAX;
    let finding = machine.check("RLIMIT_NOFILE");
    assert_eq!(finding.observed, "soft unlimited, hard unlimited");
    assert_eq!(finding.status, Status::Ok);
}

#[test]
fn somaxconn_against_connection_bursts() {
    let machine = FakeMachine::well_tuned();
    assert_finding(
        &machine.check("net.core.somaxconn"),
        Status::Ok,
        "a backlog of 4096 holds a burst of 4096 connects",
        None,
    );
    machine.write("proc/sys/net/core/somaxconn", "1024\n");
    assert_finding(
        &machine.check("net.core.somaxconn"),
        Status::Warn,
        "a backlog of 1024 may drop connects in a burst of 4096",
        Some("sysctl -w net.core.somaxconn=4096"),
    );
    machine.write("proc/sys/net/core/somaxconn", "64\n");
    assert_finding(
        &machine.check("net.core.somaxconn"),
        Status::Fail,
        "a backlog of 64 drops connects as soon as 10000 connections open together",
        Some("sysctl -w net.core.somaxconn=4096"),
    );
    machine.write("proc/sys/net/core/somaxconn", "lots\n");
    assert_finding(
        &machine.check("net.core.somaxconn"),
        Status::Warn,
        "holds `lots`, not a number",
        None,
    );
    machine.remove("proc/sys/net/core/somaxconn");
    assert_finding(
        &machine.check("net.core.somaxconn"),
        Status::Warn,
        "cannot read",
        None,
    );

    // A small run needs only a small backlog.
    let mut args = machine.args();
    args.connections = 100;
    machine.write("proc/sys/net/core/somaxconn", "128\n");
    let report = diagnose(&args, &machine.facts);
    assert_eq!(
        report.finding("net.core.somaxconn").unwrap().status,
        Status::Ok
    );
}

#[test]
fn syn_backlog_against_connection_bursts() {
    let machine = FakeMachine::well_tuned();
    assert_finding(
        &machine.check("net.ipv4.tcp_max_syn_backlog"),
        Status::Ok,
        "4096 half-open connections fit a burst of 1024",
        None,
    );
    machine.write("proc/sys/net/ipv4/tcp_max_syn_backlog", "512\n");
    assert_finding(
        &machine.check("net.ipv4.tcp_max_syn_backlog"),
        Status::Warn,
        "512 half-open connections may not fit a burst of 1024",
        Some("sysctl -w net.ipv4.tcp_max_syn_backlog=1024"),
    );
}

#[test]
fn local_ports_against_connections() {
    let machine = FakeMachine::well_tuned();
    let finding = machine.check("net.ipv4.ip_local_port_range");
    assert_eq!(finding.observed, "1024-65535 (64512 ports)");
    assert_finding(
        &finding,
        Status::Ok,
        "64512 local ports: room for 10000 connections and churn",
        None,
    );
    machine.write("proc/sys/net/ipv4/ip_local_port_range", "50000 64999\n");
    assert_finding(
        &machine.check("net.ipv4.ip_local_port_range"),
        Status::Warn,
        "15000 local ports cannot hold 10000 connections from one source address: the driver \
         spreads idle connections over 2 source addresses (127.0.0.1-127.0.0.2) at 6000 each",
        Some("sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\""),
    );
    machine.write("proc/sys/net/ipv4/ip_local_port_range", "60000 60999\n");
    assert_finding(
        &machine.check("net.ipv4.ip_local_port_range"),
        Status::Warn,
        "1000 local ports cannot hold 10000 connections from one source address: the driver \
         spreads idle connections over 25 source addresses (127.0.0.1-127.0.0.25) at 400 each",
        Some("sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\""),
    );
    machine.write("proc/sys/net/ipv4/ip_local_port_range", "60000\n");
    assert_finding(
        &machine.check("net.ipv4.ip_local_port_range"),
        Status::Warn,
        "not two port numbers",
        None,
    );

    // More connections than 254 sources hold: refused, with the fix.
    let mut args = machine.args();
    args.connections = 1_000_000;
    machine.write("proc/sys/net/ipv4/ip_local_port_range", "60000 60999\n");
    let report = diagnose(&args, &machine.facts);
    assert_finding(
        report.finding("net.ipv4.ip_local_port_range").unwrap(),
        Status::Fail,
        "1000 local ports cannot hold 1000000 connections: at 400 per source address they need \
         2500 addresses, above the 254",
        Some("1024 65535"),
    );
}

#[test]
fn what_n_connections_need_beyond_one_process() {
    let machine = FakeMachine::well_tuned();
    let mut args = machine.args();
    let mut report_for = |connections: u64| {
        args.connections = connections;
        diagnose(&args, &machine.facts)
    };
    let small = report_for(100);
    assert_eq!(small.worst(), Status::Ok, "{small:#?}");
    let text = render_text(&small);
    assert!(
        text.contains("100 connections (100 active): this machine can hold them"),
        "{text}"
    );
    assert_finding(
        small.finding("fs.file-max").unwrap(),
        Status::Ok,
        "2000000 open files: room for 100 connections in every variant",
        None,
    );
    assert_finding(
        small.finding("net.ipv4.tcp_mem").unwrap(),
        Status::Ok,
        "even with data in flight on all 100 connections (200 pages, 0 MiB) the kernel stays \
         below pressure (988 MiB)",
        None,
    );
    assert_finding(
        small.finding("memory").unwrap(),
        Status::Ok,
        "100 connections at an estimated 20 KiB each (8 KiB kernel, 12 KiB user) need 0.0 GiB of \
         the 16.0 GiB available",
        None,
    );
    assert_finding(
        small.finding("fs.nr_open").unwrap(),
        Status::Ok,
        "root could let one process hold all 100 connections (164 fds)",
        None,
    );

    // Twenty million: more sources, open files and memory than this machine
    // has; 306 driver worker processes would still be allowed.
    let huge = report_for(20_000_000);
    let text = render_text(&huge);
    assert!(
        text.contains(
            "20000000 connections (1000 active): this machine cannot hold them: \
             net.ipv4.ip_local_port_range, fs.file-max, memory"
        ),
        "{text}"
    );
    assert_finding(
        huge.finding("RLIMIT_NOFILE").unwrap(),
        Status::Warn,
        "the driver holds the idle ones in 306 worker process(es)",
        Some("ulimit -n"),
    );
    assert_finding(
        huge.finding("fs.file-max").unwrap(),
        Status::Fail,
        "20000000 connections need 40004096 open files system-wide",
        Some("sysctl -w fs.file-max=80004096"),
    );
    assert_finding(
        huge.finding("net.ipv4.tcp_mem").unwrap(),
        Status::Warn,
        "would pass pressure (988 MiB) and max: the kernel would drop data",
        Some("sysctl -w net.ipv4.tcp_mem="),
    );
    assert_finding(
        huge.finding("memory").unwrap(),
        Status::Fail,
        "need 381.5 GiB, above the 16.0 GiB available: about 838860 fit",
        Some("fewer connections"),
    );
    assert_finding(
        huge.finding("fs.nr_open").unwrap(),
        Status::Ok,
        "exceed what any one process may hold",
        None,
    );
}

#[test]
fn time_wait_reuse() {
    let machine = FakeMachine::well_tuned();
    assert_finding(
        &machine.check("net.ipv4.tcp_tw_reuse"),
        Status::Ok,
        "TIME_WAIT ports are reused for new connections",
        None,
    );
    machine.write("proc/sys/net/ipv4/tcp_tw_reuse", "2\n");
    assert_finding(
        &machine.check("net.ipv4.tcp_tw_reuse"),
        Status::Ok,
        "reused on loopback only",
        None,
    );
    machine.write("proc/sys/net/ipv4/tcp_tw_reuse", "0\n");
    assert_finding(
        &machine.check("net.ipv4.tcp_tw_reuse"),
        Status::Warn,
        "never reused: churn runs can exhaust local ports",
        Some("sysctl -w net.ipv4.tcp_tw_reuse=1"),
    );
    machine.write("proc/sys/net/ipv4/tcp_tw_reuse", "7\n");
    assert_finding(
        &machine.check("net.ipv4.tcp_tw_reuse"),
        Status::Warn,
        "unknown value 7",
        Some("sysctl -w net.ipv4.tcp_tw_reuse=1"),
    );
}

#[test]
fn pipe_max_size_against_requested_pipe_size() {
    let mut machine = FakeMachine::well_tuned();
    assert_finding(
        &machine.check("fs.pipe-max-size"),
        Status::Ok,
        "1048576-byte pipes are allowed",
        None,
    );
    machine.write("proc/sys/fs/pipe-max-size", "65536\n");
    assert_finding(
        &machine.check("fs.pipe-max-size"),
        Status::Fail,
        "1048576-byte pipes exceed the limit 65536: F_SETPIPE_SZ fails with EPERM",
        Some("sysctl -w fs.pipe-max-size=1048576"),
    );
    machine.facts.effective_uid = Some(0);
    assert_finding(
        &machine.check("fs.pipe-max-size"),
        Status::Warn,
        "root may exceed it (CAP_SYS_RESOURCE)",
        Some("sysctl -w fs.pipe-max-size=1048576"),
    );
    let mut args = machine.args();
    args.pipe_size_bytes = 65536;
    let report = diagnose(&args, &machine.facts);
    assert_eq!(
        report.finding("fs.pipe-max-size").unwrap().status,
        Status::Ok
    );
}

#[test]
fn perf_event_paranoid_and_privilege() {
    let mut machine = FakeMachine::well_tuned();
    assert_finding(
        &machine.check("kernel.perf_event_paranoid"),
        Status::Ok,
        "-1: any user may open tracepoint counters",
        None,
    );
    machine.write("proc/sys/kernel/perf_event_paranoid", "2\n");
    assert_finding(
        &machine.check("kernel.perf_event_paranoid"),
        Status::Warn,
        "2 and not root: tracepoint counters are refused",
        Some("sysctl -w kernel.perf_event_paranoid=-1"),
    );
    machine.facts.effective_uid = Some(0);
    assert_finding(
        &machine.check("kernel.perf_event_paranoid"),
        Status::Ok,
        "2, but running as root",
        None,
    );
    machine.remove("proc/sys/kernel/perf_event_paranoid");
    assert_finding(
        &machine.check("kernel.perf_event_paranoid"),
        Status::Warn,
        "this kernel has no perf events",
        Some("CONFIG_PERF_EVENTS"),
    );
}

#[test]
fn tracefs_mount_and_tracepoints() {
    let machine = FakeMachine::well_tuned();
    let finding = machine.check("tracefs");
    assert_eq!(finding.observed, "/sys/kernel/tracing/events");
    assert_finding(
        &finding,
        Status::Ok,
        &format!(
            "raw_syscalls:sys_enter and all {} syscall tracepoints",
            SyscallKind::ALL.len()
        ),
        None,
    );

    machine.remove("sys/kernel/tracing/events/syscalls/sys_enter_splice");
    assert_finding(
        &machine.check("tracefs"),
        Status::Warn,
        "no tracepoint for splice: those kinds are not cross-checked",
        Some("CONFIG_FTRACE_SYSCALLS"),
    );

    machine.remove("sys/kernel/tracing/events/raw_syscalls");
    assert_finding(
        &machine.check("tracefs"),
        Status::Warn,
        "no raw_syscalls:sys_enter tracepoint",
        Some("CONFIG_FTRACE_SYSCALLS"),
    );

    machine.remove("sys/kernel/tracing");
    assert_finding(
        &machine.check("tracefs"),
        Status::Warn,
        "tracefs is not mounted",
        Some("mount -t tracefs nodev /sys/kernel/tracing"),
    );

    // Older systems expose it under debugfs.
    machine.write(
        "sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
        "21\n",
    );
    let finding = machine.check("tracefs");
    assert_eq!(finding.observed, "/sys/kernel/debug/tracing/events");
    assert_finding(
        &finding,
        Status::Warn,
        "no tracepoint for epoll_pwait",
        Some("CONFIG_FTRACE_SYSCALLS"),
    );
}

#[test]
fn live_probe_of_kernel_counters() {
    let mut machine = FakeMachine::well_tuned();
    machine.facts.kernel_counters_probe = Some(Ok(()));
    assert_finding(
        &machine.check("kernel syscall counters"),
        Status::Ok,
        "the kernel cross-check will run",
        None,
    );
    machine.facts.kernel_counters_probe = Some(Err(
        "tracefs is not mounted; mount it as root: `mount -t tracefs nodev /sys/kernel/tracing`"
            .to_string(),
    ));
    assert_finding(
        &machine.check("kernel syscall counters"),
        Status::Warn,
        "kernel cross-check unavailable: tracefs is not mounted; mount it as root: `mount -t tracefs nodev /sys/kernel/tracing`",
        None,
    );
}

#[test]
fn cpus_for_pinning_server_and_driver_apart() {
    let mut machine = FakeMachine::well_tuned();
    let finding = machine.check("CPUs");
    assert_eq!(finding.observed, "4 usable of 4 online");
    assert_finding(
        &finding,
        Status::Ok,
        "4 usable CPUs: server and driver can be pinned to disjoint CPUs",
        None,
    );

    machine.facts.usable_cpus = 2;
    assert_finding(
        &machine.check("CPUs"),
        Status::Ok,
        "restricted to fewer than are online",
        None,
    );

    machine.facts.usable_cpus = 1;
    assert_finding(
        &machine.check("CPUs"),
        Status::Warn,
        "one usable CPU: server and driver share it",
        Some("taskset -p -c 0-3 $$"),
    );

    machine.write("sys/devices/system/cpu/online", "0\n");
    assert_finding(
        &machine.check("CPUs"),
        Status::Warn,
        "one usable CPU",
        Some("run on a machine with at least 2 CPUs"),
    );
}

#[test]
fn cpufreq_governor() {
    let machine = FakeMachine::well_tuned();
    assert_finding(
        &machine.check("cpufreq governor"),
        Status::Ok,
        "performance on every CPU",
        None,
    );
    machine.write(
        "sys/devices/system/cpu/cpu2/cpufreq/scaling_governor",
        "schedutil\n",
    );
    let finding = machine.check("cpufreq governor");
    assert_eq!(finding.observed, "performance, schedutil");
    assert_finding(
        &finding,
        Status::Warn,
        "the clock follows load",
        Some("echo performance | tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"),
    );
    for cpu in 0..4 {
        machine.remove(&format!("sys/devices/system/cpu/cpu{cpu}/cpufreq"));
    }
    assert_finding(
        &machine.check("cpufreq governor"),
        Status::Warn,
        "no cpufreq interface",
        Some("none from inside this machine"),
    );
}

#[test]
fn virtual_machine_detection() {
    let machine = FakeMachine::well_tuned();
    let finding = machine.check("virtualization");
    assert_eq!(
        finding.observed,
        "DMI `Dell Inc.` `PowerEdge R650`; hypervisor CPU flag absent"
    );
    assert_finding(&finding, Status::Ok, "no hypervisor detected", None);

    machine.write("sys/class/dmi/id/sys_vendor", "QEMU\n");
    machine.write(
        "sys/class/dmi/id/product_name",
        "Standard PC (Q35 + ICH9, 2009)\n",
    );
    assert_finding(
        &machine.check("virtualization"),
        Status::Warn,
        "running in a virtual machine (DMI `QEMU` `Standard PC (Q35 + ICH9, 2009)`)",
        Some("bare metal"),
    );

    // No DMI at all (e.g. Firecracker), but the CPU says so.
    machine.remove("sys/class/dmi");
    machine.write(
        "proc/cpuinfo",
        "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n",
    );
    let finding = machine.check("virtualization");
    assert_eq!(finding.observed, "no DMI vendor; hypervisor CPU flag set");
    assert_finding(
        &finding,
        Status::Warn,
        "running in a virtual machine (the hypervisor CPU flag)",
        Some("bare metal"),
    );
}

#[test]
fn cpu_steal_since_boot_and_right_now() {
    let mut machine = FakeMachine::well_tuned();
    let finding = machine.check("CPU steal");
    assert_eq!(finding.observed, "0.0% of busy CPU time since boot");
    assert_finding(&finding, Status::Ok, "little or no CPU time taken", None);

    // 30 stolen of 1,000 busy ticks (idle does not dilute it).
    machine.write("proc/stat", "cpu  670 0 300 9000 0 0 0 30 0 0\n");
    assert_finding(
        &machine.check("CPU steal"),
        Status::Warn,
        "the hypervisor has taken 3.0% of busy CPU time since boot: a contended host",
        Some("dedicated vCPUs or bare metal"),
    );

    machine.write("proc/stat", "cpu  700 0 300 9000 0 0 0 0 0 0\n");
    machine.facts.steal_sample_percent = Some(42.0);
    let finding = machine.check("CPU steal");
    assert_eq!(
        finding.observed,
        "0.0% of busy CPU time since boot; 42.0% of all CPU time over the last 500 ms"
    );
    assert_finding(
        &finding,
        Status::Warn,
        "the hypervisor is taking 42% of this machine's CPU time right now",
        Some("dedicated vCPUs or bare metal"),
    );
    machine.facts.steal_sample_percent = Some(0.4);
    assert_eq!(machine.check("CPU steal").status, Status::Ok);

    machine.write("proc/stat", "intr 1\n");
    assert_finding(
        &machine.check("CPU steal"),
        Status::Warn,
        "no parsable `cpu` line",
        None,
    );
}

#[test]
fn transparent_hugepages() {
    let machine = FakeMachine::well_tuned();
    assert_finding(
        &machine.check("transparent hugepages"),
        Status::Ok,
        "madvise: huge pages only where asked for",
        None,
    );
    machine.write(
        "sys/kernel/mm/transparent_hugepage/enabled",
        "[always] madvise never\n",
    );
    assert_finding(
        &machine.check("transparent hugepages"),
        Status::Warn,
        "always: huge pages may back connection buffers",
        Some("echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"),
    );
    machine.write(
        "sys/kernel/mm/transparent_hugepage/enabled",
        "always madvise [never]\n",
    );
    assert_eq!(machine.check("transparent hugepages").status, Status::Ok);
    machine.remove("sys/kernel/mm/transparent_hugepage");
    assert_finding(
        &machine.check("transparent hugepages"),
        Status::Ok,
        "kernel without transparent hugepages",
        None,
    );
}

#[test]
fn text_and_json_reports() {
    let mut machine = FakeMachine::well_tuned();
    machine.facts.nofile_hard = 100;
    machine.facts.nofile_soft = 100;
    machine.write("proc/sys/net/ipv4/tcp_tw_reuse", "0\n");
    let report = machine.report();
    assert_eq!(report.worst(), Status::Fail);
    assert_eq!((report.warn_count, report.fail_count), (1, 1));

    let text = render_text(&report);
    assert!(text.starts_with("epoll-bench doctor: "), "{text}");
    assert!(text.contains("1 WARN, 1 FAIL"), "{text}");
    let fail_line = text
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .expect("a FAIL line");
    assert!(fail_line.contains("RLIMIT_NOFILE"), "{fail_line}");
    assert!(
        text.contains("fix: sysctl -w net.ipv4.tcp_tw_reuse=1"),
        "{text}"
    );
    // OK findings say why they matter but carry no fix.
    assert_eq!(text.matches("fix: ").count(), 2, "{text}");
    assert_eq!(text.matches("why: ").count(), report.findings.len());

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["fail_count"], 1);
    assert_eq!(json["findings"][0]["check"], "RLIMIT_NOFILE");
    assert_eq!(json["findings"][0]["status"], "FAIL");
    let back: DoctorReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}

#[test]
fn this_machine_gets_a_report() {
    let report = doctor::run(&DoctorArgs::default()).unwrap();
    assert!(report.findings.len() >= 12);
    assert_eq!(report.root, "/");
    let probe = report
        .finding("kernel syscall counters")
        .expect("a real run probes the kernel counters");
    if std::env::var_os("CI").is_some() {
        // CI runs as root with tracefs mounted: the cross-check must work.
        assert_eq!(probe.status, Status::Ok, "{probe:#?}");
    }
    let text = render_text(&report);
    // Shown with --nocapture: what the doctor says about the test machine.
    println!("{text}");
    assert!(text.contains("tracefs"));
}

#[test]
fn raising_the_soft_nofile_limit_says_what_it_did() {
    let raise = doctor::raise_nofile_soft_limit().unwrap();
    assert_eq!(raise.soft_after, raise.hard);
    let (soft, hard) = epoll_bench::sys::rlimit::nofile().unwrap();
    assert_eq!((soft, hard), (raise.hard, raise.hard));
    let said = raise.to_string();
    if raise.changed() {
        assert!(
            said.starts_with("raised the RLIMIT_NOFILE soft limit from"),
            "{said}"
        );
    } else {
        assert!(said.contains("already at the hard limit"), "{said}");
    }
}

#[test]
fn doctor_flags_parse_with_their_defaults() {
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        doctor: DoctorArgs,
    }

    let defaults = Cli::try_parse_from(["doctor"]).unwrap().doctor;
    assert_eq!(defaults, DoctorArgs::default());
    assert_eq!(defaults.connections, 10_000);
    assert_eq!(defaults.pipe_size_bytes, 1 << 20);
    assert_eq!(defaults.root, std::path::PathBuf::from("/"));

    let args = Cli::try_parse_from([
        "doctor",
        "--json",
        "--connections",
        "64",
        "--pipe-size",
        "65536",
        "--root",
        "/tmp/fake",
    ])
    .unwrap()
    .doctor;
    assert!(args.json);
    assert_eq!((args.connections, args.pipe_size_bytes), (64, 65536));
    assert_eq!(args.root, std::path::PathBuf::from("/tmp/fake"));

    let help = Cli::command().render_help().to_string();
    assert!(help.contains("--pipe-size <BYTES>"), "{help}");
    assert!(!help.contains("--root"), "{help}");
}

#[test]
fn thread_per_connection_servers_against_this_vms_thread_limits() {
    let mut machine = FakeMachine::well_tuned();
    machine.facts.nofile_hard = 20_000;
    machine.write("proc/sys/kernel/pid_max", "32768\n");
    machine.write("proc/sys/vm/max_map_count", "65530\n");
    // Root, as on this VM: RLIMIT_NPROC does not apply.
    machine.write(
        "proc/self/status",
        "Uid:\t0\t0\t0\t0\nCapEff:\t000001fffeffffff\n",
    );
    let mut args = machine.args();
    args.connections = 100_000;
    let report = diagnose(&args, &machine.facts);
    let finding = report.finding("threads (thread-per-connection)").unwrap();
    assert_finding(
        finding,
        Status::Warn,
        "100000 connections in 6 tpc-rw server process(es) (the descriptor limit's count) need \
         100096 threads, and a tpc case is not run: kernel.pid_max is 32768",
        Some(
            "`sysctl -w kernel.pid_max=4194304`; `run --server-processes 7`, or `sysctl -w vm.max_map_count=131072`",
        ),
    );
    assert!(
        finding.observed.starts_with(
            "pid_max 32768, threads-max 192724, 300 threads running, max_map_count 65530"
        ),
        "{finding:#?}"
    );
    // A WARN: only tpc needs it, so it is no capacity check.
    assert!(!doctor::capacity_verdict(&report).contains("threads"));
    // 10,000 connections fit one process.
    args.connections = 10_000;
    let report = diagnose(&args, &machine.facts);
    assert_finding(
        report.finding("threads (thread-per-connection)").unwrap(),
        Status::Ok,
        "need 10011 threads: they fit every thread limit",
        None,
    );
}

#[test]
fn rlimit_nproc_counts_every_thread_of_the_user() {
    let machine = FakeMachine::well_tuned();
    machine.write(
        "proc/self/limits",
        "Max processes             12000                96362                processes\n",
    );
    // Two processes of this user (3,000 threads) and one of another.
    let status =
        |uid: u32, threads: u32| format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}\nThreads:\t{threads}\n");
    machine.write("proc/101/status", &status(1000, 1_000));
    machine.write("proc/102/status", &status(1000, 2_000));
    machine.write("proc/103/status", &status(0, 50_000));
    assert_finding(
        &machine.check("threads (thread-per-connection)"),
        Status::Warn,
        "RLIMIT_NPROC is 12000 (hard 96362) threads for this user, all its processes together: \
         8488 are free (less 512 spare), but the server needs 10011",
        Some("`ulimit -u 13523`"),
    );
    // Root of the initial namespace is exempt.
    machine.write("proc/self/status", &status(0, 1));
    assert_finding(
        &machine.check("threads (thread-per-connection)"),
        Status::Ok,
        "they fit every thread limit",
        None,
    );
    machine.remove("proc/loadavg");
    assert_finding(
        &machine.check("threads (thread-per-connection)"),
        Status::Warn,
        "proc/loadavg",
        None,
    );
}
