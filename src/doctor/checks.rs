//! The individual doctor checks. Each reads what it needs under the root
//! folder and turns it into one [`Finding`].

use std::path::{Path, PathBuf};

use super::{DoctorArgs, Finding, ProcessFacts, Status};
use crate::metrics::cpu_steal::CpuTimes;
use crate::sys::counters::SyscallKind;

/// File descriptors besides connections: listener, epoll instance, control
/// socket, stdio, eventfds, kernel counters.
const FD_HEADROOM: u64 = 64;

/// A splice-variant connection can hold its socket and a pipe pair.
const SPLICE_FDS_PER_CONNECTION: u64 = 3;

/// Backlogs at or above this hold any burst the driver makes (and it is the
/// kernel's default `somaxconn` since 5.4).
const GOOD_BACKLOG: u64 = 4096;

/// Half-open connections worth holding. Smaller than [`GOOD_BACKLOG`]:
/// the handshake completes within microseconds on loopback and a LAN, so
/// only a large burst to a distant target fills this queue; 1024 is also
/// what the kernel picks by default on machines with a few GiB of memory.
const GOOD_SYN_BACKLOG: u64 = 1024;

/// The widest sensible `ip_local_port_range` ("1024 65535").
const MAX_LOCAL_PORTS: u64 = 65535 - 1024 + 1;

/// Hypervisor names as they appear in DMI `sys_vendor` / `product_name`.
const VM_VENDOR_MARKERS: [&str; 14] = [
    "qemu",
    "kvm",
    "vmware",
    "virtualbox",
    "innotek",
    "xen",
    "virtual machine",
    "bochs",
    "parallels",
    "amazon ec2",
    "google compute engine",
    "openstack",
    "firecracker",
    "cloud hypervisor",
];

pub(super) fn all(args: &DoctorArgs, facts: &ProcessFacts) -> Vec<Finding> {
    let root = &args.root;
    let mut findings = vec![
        rlimit_nofile(args.connections, facts),
        somaxconn(root, args.connections),
        tcp_max_syn_backlog(root, args.connections),
        ip_local_port_range(root, args.connections),
        tcp_tw_reuse(root),
        pipe_max_size(root, args.pipe_size_bytes, facts),
        perf_event_paranoid(root, facts),
        tracefs(root),
    ];
    if let Some(probe) = &facts.kernel_counters_probe {
        findings.push(kernel_counters_probe(probe));
    }
    findings.extend([
        cpus(root, facts),
        cpufreq_governor(root),
        virtualization(root),
        cpu_steal(root, facts),
        transparent_hugepages(root),
    ]);
    findings
}

fn finding(
    check: &str,
    status: Status,
    observed: impl Into<String>,
    message: impl Into<String>,
    why: &str,
    fix: Option<String>,
) -> Finding {
    Finding {
        check: check.to_string(),
        status,
        observed: observed.into(),
        message: message.into(),
        why: why.to_string(),
        fix: if status == Status::Ok { None } else { fix },
    }
}

fn read(root: &Path, relative: &str) -> Result<String, String> {
    let path = root.join(relative);
    std::fs::read_to_string(&path)
        .map(|text| text.trim().to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A check whose file could not be read or parsed: a warning, since the
/// doctor cannot vouch for the setting.
fn unreadable(check: &str, reason: String, why: &str) -> Finding {
    finding(check, Status::Warn, "unknown", reason, why, None)
}

fn read_number(root: &Path, relative: &str) -> Result<i64, String> {
    let text = read(root, relative)?;
    text.parse::<i64>().map_err(|_| {
        format!(
            "{} holds `{text}`, not a number",
            root.join(relative).display()
        )
    })
}

pub(super) fn limit_text(limit: u64) -> String {
    if limit == u64::MAX || limit == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        limit.to_string()
    }
}

pub(super) fn effective_uid_from_status(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn rlimit_nofile(connections: u64, facts: &ProcessFacts) -> Finding {
    const CHECK: &str = "RLIMIT_NOFILE";
    const WHY: &str = "every connection is a file descriptor in the server and another in the driver (splice variants may add a pipe pair per connection); past the limit accept fails with EMFILE and the run measures the limit, not the variant";
    let (soft, hard) = (facts.nofile_soft, facts.nofile_hard);
    let observed = format!("soft {}, hard {}", limit_text(soft), limit_text(hard));
    let needed_plain = connections + FD_HEADROOM;
    let needed_splice = SPLICE_FDS_PER_CONNECTION * connections + FD_HEADROOM;
    let fix = Some(format!(
        "as root, in the shell that runs epoll-bench: `ulimit -n {needed_splice}` (to keep it: `echo '* - nofile {needed_splice}' >> /etc/security/limits.conf`; above fs.nr_open also `sysctl -w fs.nr_open={needed_splice}`)"
    ));
    if hard < needed_plain {
        finding(
            CHECK,
            Status::Fail,
            observed,
            format!(
                "the hard limit {} cannot hold {connections} connections ({needed_plain} fds needed); no process can raise it without root",
                limit_text(hard)
            ),
            WHY,
            fix,
        )
    } else if hard < needed_splice {
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!(
                "the hard limit {} holds {connections} connections at one fd each, but not if each also holds a splice pipe ({needed_splice} fds)",
                limit_text(hard)
            ),
            WHY,
            fix,
        )
    } else if soft < needed_splice {
        finding(
            CHECK,
            Status::Ok,
            observed,
            format!(
                "the soft limit {} is below the {needed_splice} fds {connections} connections may need, but epoll-bench raises it to the hard limit {} itself",
                limit_text(soft),
                limit_text(hard)
            ),
            WHY,
            None,
        )
    } else {
        finding(
            CHECK,
            Status::Ok,
            observed,
            format!("room for {connections} connections in every variant ({needed_splice} fds)"),
            WHY,
            None,
        )
    }
}

fn somaxconn(root: &Path, connections: u64) -> Finding {
    const CHECK: &str = "net.core.somaxconn";
    const WHY: &str = "it caps the listen backlog: when the driver opens connections faster than the server accepts them, connections beyond it are dropped and retried after 1 s, which shows up as connect stalls and 1000 ms latency outliers";
    let value = match read_number(root, "proc/sys/net/core/somaxconn") {
        Ok(v) => v.max(0) as u64,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let target = connections.clamp(1, GOOD_BACKLOG);
    let fix = Some(format!("sysctl -w net.core.somaxconn={GOOD_BACKLOG}"));
    if value >= target {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("a backlog of {value} holds a burst of {target} connects"),
            WHY,
            None,
        )
    } else if value < 128 {
        finding(
            CHECK,
            Status::Fail,
            value.to_string(),
            format!(
                "a backlog of {value} drops connects as soon as {connections} connections open together"
            ),
            WHY,
            fix,
        )
    } else {
        finding(
            CHECK,
            Status::Warn,
            value.to_string(),
            format!("a backlog of {value} may drop connects in a burst of {target}"),
            WHY,
            fix,
        )
    }
}

fn tcp_max_syn_backlog(root: &Path, connections: u64) -> Finding {
    const CHECK: &str = "net.ipv4.tcp_max_syn_backlog";
    const WHY: &str = "half-open connections beyond it are answered with SYN cookies or dropped, so a connection burst (churn profile, 10,000 idle connections) measures SYN handling instead of the variant";
    let value = match read_number(root, "proc/sys/net/ipv4/tcp_max_syn_backlog") {
        Ok(v) => v.max(0) as u64,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let target = connections.clamp(1, GOOD_SYN_BACKLOG);
    if value >= target {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("{value} half-open connections fit a burst of {target}"),
            WHY,
            None,
        )
    } else {
        finding(
            CHECK,
            Status::Warn,
            value.to_string(),
            format!("{value} half-open connections may not fit a burst of {target}"),
            WHY,
            Some(format!(
                "sysctl -w net.ipv4.tcp_max_syn_backlog={GOOD_SYN_BACKLOG}"
            )),
        )
    }
}

fn ip_local_port_range(root: &Path, connections: u64) -> Finding {
    const CHECK: &str = "net.ipv4.ip_local_port_range";
    const WHY: &str = "each driver connection to one target address takes one local port; connections closed by churn keep theirs for 60 s in TIME_WAIT, so too few ports fail connects with EADDRNOTAVAIL";
    let text = match read(root, "proc/sys/net/ipv4/ip_local_port_range") {
        Ok(t) => t,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let bounds: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [low, high] = bounds[..] else {
        return unreadable(
            CHECK,
            format!("ip_local_port_range holds `{text}`, not two port numbers"),
            WHY,
        );
    };
    let ports = high.saturating_sub(low) + 1;
    let observed = format!("{low}-{high} ({ports} ports)");
    let mut fix = "sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"".to_string();
    if connections > MAX_LOCAL_PORTS {
        fix.push_str(
            ", and spread connections over several target addresses (127.0.0.1, 127.0.0.2, ...)",
        );
    }
    if ports < connections {
        finding(
            CHECK,
            Status::Fail,
            observed,
            format!("{ports} local ports cannot hold {connections} connections to one target"),
            WHY,
            Some(fix),
        )
    } else if ports < 2 * connections {
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!(
                "{ports} local ports hold {connections} connections, with little room for churn's TIME_WAIT"
            ),
            WHY,
            Some(fix),
        )
    } else {
        finding(
            CHECK,
            Status::Ok,
            observed,
            format!("{ports} local ports: room for {connections} connections and churn"),
            WHY,
            None,
        )
    }
}

fn tcp_tw_reuse(root: &Path) -> Finding {
    const CHECK: &str = "net.ipv4.tcp_tw_reuse";
    const WHY: &str = "the connection-churn profile opens and closes connections continuously; without TIME_WAIT reuse the local ports run out and connects fail or stall";
    let fix = Some("sysctl -w net.ipv4.tcp_tw_reuse=1".to_string());
    match read_number(root, "proc/sys/net/ipv4/tcp_tw_reuse") {
        Err(reason) => unreadable(CHECK, reason, WHY),
        Ok(1) => finding(
            CHECK,
            Status::Ok,
            "1",
            "TIME_WAIT ports are reused for new connections",
            WHY,
            None,
        ),
        Ok(2) => finding(
            CHECK,
            Status::Ok,
            "2",
            "TIME_WAIT ports are reused on loopback only: enough for local runs (set 1 to drive a remote target)",
            WHY,
            None,
        ),
        Ok(0) => finding(
            CHECK,
            Status::Warn,
            "0",
            "TIME_WAIT ports are never reused: churn runs can exhaust local ports",
            WHY,
            fix,
        ),
        Ok(other) => finding(
            CHECK,
            Status::Warn,
            other.to_string(),
            format!("unknown value {other}"),
            WHY,
            fix,
        ),
    }
}

fn pipe_max_size(root: &Path, pipe_size_bytes: u64, facts: &ProcessFacts) -> Finding {
    const CHECK: &str = "fs.pipe-max-size";
    const WHY: &str = "splice variants size their pipes with F_SETPIPE_SZ; above this limit an unprivileged server gets EPERM, and a smaller pipe means more splice calls per frame, which changes exactly what the splice variants measure";
    let value = match read_number(root, "proc/sys/fs/pipe-max-size") {
        Ok(v) => v.max(0) as u64,
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let fix = Some(format!("sysctl -w fs.pipe-max-size={pipe_size_bytes}"));
    if value >= pipe_size_bytes {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("{pipe_size_bytes}-byte pipes are allowed"),
            WHY,
            None,
        )
    } else if facts.effective_uid == Some(0) {
        finding(
            CHECK,
            Status::Warn,
            value.to_string(),
            format!(
                "{pipe_size_bytes}-byte pipes exceed the limit {value}: root may exceed it (CAP_SYS_RESOURCE), a server run by another user may not"
            ),
            WHY,
            fix,
        )
    } else {
        finding(
            CHECK,
            Status::Fail,
            value.to_string(),
            format!(
                "{pipe_size_bytes}-byte pipes exceed the limit {value}: F_SETPIPE_SZ fails with EPERM"
            ),
            WHY,
            fix,
        )
    }
}

fn perf_event_paranoid(root: &Path, facts: &ProcessFacts) -> Finding {
    const CHECK: &str = "kernel.perf_event_paranoid";
    const WHY: &str = "the kernel-side syscall cross-check opens perf counters on syscall tracepoints; the kernel allows that to root (or CAP_PERFMON) or to anyone when this is -1, and without it the in-process counts go unchecked";
    let value = match read_number(root, "proc/sys/kernel/perf_event_paranoid") {
        Ok(v) => v,
        Err(reason) => {
            return finding(
                CHECK,
                Status::Warn,
                "absent",
                format!("{reason}: this kernel has no perf events, so no kernel cross-check"),
                WHY,
                Some("use a kernel built with CONFIG_PERF_EVENTS=y".to_string()),
            );
        }
    };
    if facts.effective_uid == Some(0) {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("{value}, but running as root: tracepoint counters are allowed"),
            WHY,
            None,
        )
    } else if value <= -1 {
        finding(
            CHECK,
            Status::Ok,
            value.to_string(),
            format!("{value}: any user may open tracepoint counters"),
            WHY,
            None,
        )
    } else {
        finding(
            CHECK,
            Status::Warn,
            value.to_string(),
            format!(
                "{value} and not root: tracepoint counters are refused, the kernel cross-check will be unavailable"
            ),
            WHY,
            Some(
                "run epoll-bench as root, or `sysctl -w kernel.perf_event_paranoid=-1`".to_string(),
            ),
        )
    }
}

fn tracefs(root: &Path) -> Finding {
    const CHECK: &str = "tracefs";
    const WHY: &str = "the kernel cross-check finds the syscall tracepoints (syscalls:sys_enter_*, raw_syscalls:sys_enter) by their ids in tracefs";
    let mount_fix = Some("mount -t tracefs nodev /sys/kernel/tracing".to_string());
    let candidates = [
        "sys/kernel/tracing/events",
        "sys/kernel/debug/tracing/events",
    ];
    let Some(events) = candidates.iter().map(|c| root.join(c)).find(|p| p.is_dir()) else {
        return finding(
            CHECK,
            Status::Warn,
            "not mounted",
            "tracefs is not mounted: the kernel cross-check will be unavailable",
            WHY,
            mount_fix,
        );
    };
    let shown = |p: &Path| PathBuf::from("/").join(p.strip_prefix(root).unwrap_or(p));
    let observed = format!("{}", shown(&events).display());
    let total = events.join("raw_syscalls/sys_enter/id");
    match std::fs::read_to_string(&total) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return finding(
                CHECK,
                Status::Warn,
                observed,
                "tracefs has no raw_syscalls:sys_enter tracepoint: the kernel lacks syscall tracepoints",
                WHY,
                Some("use a kernel built with CONFIG_FTRACE_SYSCALLS=y".to_string()),
            );
        }
        Err(e) => {
            return finding(
                CHECK,
                Status::Warn,
                observed,
                format!(
                    "cannot read {}: {e}: tracepoint ids are readable by root only",
                    shown(&total).display()
                ),
                WHY,
                Some("run epoll-bench as root".to_string()),
            );
        }
    }
    let missing: Vec<&str> = SyscallKind::ALL
        .iter()
        .map(|k| k.kernel_name())
        .filter(|name| {
            !events
                .join(format!("syscalls/sys_enter_{name}/id"))
                .exists()
        })
        .collect();
    if missing.is_empty() {
        finding(
            CHECK,
            Status::Ok,
            observed,
            format!(
                "raw_syscalls:sys_enter and all {} syscall tracepoints the suite counts are present",
                SyscallKind::ALL.len()
            ),
            WHY,
            None,
        )
    } else {
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!(
                "no tracepoint for {}: those kinds are not cross-checked",
                missing.join(", ")
            ),
            WHY,
            Some(
                "use a kernel built with CONFIG_FTRACE_SYSCALLS=y for this architecture"
                    .to_string(),
            ),
        )
    }
}

fn kernel_counters_probe(probe: &Result<(), String>) -> Finding {
    const CHECK: &str = "kernel syscall counters";
    const WHY: &str =
        "a live attempt to attach the cross-check's counters to this thread: what `run` will get";
    match probe {
        Ok(()) => finding(
            CHECK,
            Status::Ok,
            "attached",
            "perf tracepoint counters attach: the kernel cross-check will run",
            WHY,
            None,
        ),
        // The reason already ends with the command that fixes it.
        Err(reason) => finding(
            CHECK,
            Status::Warn,
            "refused",
            format!("kernel cross-check unavailable: {reason}"),
            WHY,
            None,
        ),
    }
}

/// Number of CPUs in a list such as `0-3,5,7-8`.
fn count_cpu_list(list: &str) -> Option<usize> {
    let mut count = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                count += b.checked_sub(a)? + 1;
            }
            None => {
                part.parse::<usize>().ok()?;
                count += 1;
            }
        }
    }
    Some(count)
}

fn cpus(root: &Path, facts: &ProcessFacts) -> Finding {
    const CHECK: &str = "CPUs";
    const WHY: &str = "server and driver must not compete for a CPU: `run --pin auto` puts them on disjoint CPUs, which needs at least two usable ones";
    let online = read(root, "sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| count_cpu_list(&list));
    let usable = facts.usable_cpus;
    let observed = match online {
        Some(online) => format!("{usable} usable of {online} online"),
        None => format!("{usable} usable"),
    };
    let restricted = online.is_some_and(|online| usable < online);
    if usable >= 2 {
        let mut message =
            format!("{usable} usable CPUs: server and driver can be pinned to disjoint CPUs");
        if restricted {
            message.push_str(" (this process is restricted to fewer than are online)");
        }
        finding(CHECK, Status::Ok, observed, message, WHY, None)
    } else {
        let fix = match online {
            Some(online) if online >= 2 => format!(
                "widen this shell's CPU affinity: `taskset -p -c 0-{} $$` (or lift the cgroup's cpu quota)",
                online - 1
            ),
            _ => "run on a machine with at least 2 CPUs (4 leave room for the driver's threads)"
                .to_string(),
        };
        finding(
            CHECK,
            Status::Warn,
            observed,
            "one usable CPU: server and driver share it, so throughput and latency measure their competition (syscalls per request stay valid)",
            WHY,
            Some(fix),
        )
    }
}

fn cpufreq_governor(root: &Path) -> Finding {
    const CHECK: &str = "cpufreq governor";
    const WHY: &str = "with a dynamic governor the clock follows load, so a variant that uses less CPU can run at a lower clock and look slower per request; `performance` holds the clock steady across variants";
    let cpu_dir = root.join("sys/devices/system/cpu");
    let mut governors: Vec<String> = std::fs::read_dir(&cpu_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|entry| {
            std::fs::read_to_string(entry.path().join("cpufreq/scaling_governor")).ok()
        })
        .map(|g| g.trim().to_string())
        .collect();
    governors.sort();
    governors.dedup();
    if governors.is_empty() {
        return finding(
            CHECK,
            Status::Warn,
            "absent",
            "no cpufreq interface (usual in VMs, where the host sets the clock): frequency scaling cannot be checked from here",
            WHY,
            Some("none from inside this machine; on bare metal load the cpufreq driver (e.g. `modprobe acpi-cpufreq`)".to_string()),
        );
    }
    let observed = governors.join(", ");
    if governors == ["performance"] {
        finding(
            CHECK,
            Status::Ok,
            observed,
            "performance on every CPU: the clock does not follow load",
            WHY,
            None,
        )
    } else {
        finding(
            CHECK,
            Status::Warn,
            observed.clone(),
            format!("governor {observed}: the clock follows load"),
            WHY,
            Some(
                "echo performance | tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"
                    .to_string(),
            ),
        )
    }
}

fn virtualization(root: &Path) -> Finding {
    const CHECK: &str = "virtualization";
    const WHY: &str = "under a hypervisor the host can deschedule vCPUs (steal time) and virtualises timers, adding noise unrelated to the variants; compare variants within one machine, never against bare-metal figures";
    let vendor = read(root, "sys/class/dmi/id/sys_vendor").unwrap_or_default();
    let product = read(root, "sys/class/dmi/id/product_name").unwrap_or_default();
    let dmi = format!("{vendor} {product}").to_lowercase();
    let dmi_marker = VM_VENDOR_MARKERS.iter().find(|m| dmi.contains(*m));
    let cpuinfo = read(root, "proc/cpuinfo").unwrap_or_default();
    let hypervisor_flag = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|w| w == "hypervisor"));
    let dmi_text = if vendor.is_empty() && product.is_empty() {
        "no DMI vendor".to_string()
    } else {
        format!("DMI `{vendor}` `{product}`")
    };
    let observed = format!(
        "{dmi_text}; hypervisor CPU flag {}",
        if hypervisor_flag { "set" } else { "absent" }
    );
    if dmi_marker.is_some() || hypervisor_flag {
        let evidence = match (dmi_marker, hypervisor_flag) {
            (Some(_), true) => format!("{dmi_text} and the hypervisor CPU flag"),
            (Some(_), false) => dmi_text,
            _ => "the hypervisor CPU flag".to_string(),
        };
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!("running in a virtual machine ({evidence})"),
            WHY,
            Some("none from inside the VM: for absolute figures use bare metal or dedicated (pinned) vCPUs".to_string()),
        )
    } else {
        finding(
            CHECK,
            Status::Ok,
            observed,
            "no hypervisor detected",
            WHY,
            None,
        )
    }
}

/// Since boot, this share of busy CPU time stolen already means a
/// contended host.
const STEAL_SINCE_BOOT_WARN_PERCENT: f64 = 1.0;

fn cpu_steal(root: &Path, facts: &ProcessFacts) -> Finding {
    const CHECK: &str = "CPU steal";
    const WHY: &str = "steal is CPU time the hypervisor gives to other guests while this machine's vCPUs want to run: it stalls server and driver alike, for milliseconds to seconds, and a window that suffers it shows collapsed throughput, latency outliers and requests left unanswered. Every window records its steal; results from windows with 5% or more are marked";
    let since_boot = match CpuTimes::read(root) {
        Ok(times) => times.steal_percent_of_busy().unwrap_or(0.0),
        Err(reason) => return unreadable(CHECK, reason, WHY),
    };
    let sample = facts.steal_sample_percent;
    let observed = match sample {
        Some(p) => format!(
            "{since_boot:.1}% of busy CPU time since boot; {p:.1}% of all CPU time over the last {} ms",
            super::STEAL_SAMPLE.as_millis()
        ),
        None => format!("{since_boot:.1}% of busy CPU time since boot"),
    };
    let fix = Some(
        "none from inside the VM: measure on dedicated vCPUs or bare metal, or when the host is quieter; rerun results marked for steal"
            .to_string(),
    );
    if let Some(p) = sample.filter(|p| *p >= crate::metrics::cpu_steal::STEAL_WARN_PERCENT) {
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!("the hypervisor is taking {p:.0}% of this machine's CPU time right now"),
            WHY,
            fix,
        )
    } else if since_boot >= STEAL_SINCE_BOOT_WARN_PERCENT {
        finding(
            CHECK,
            Status::Warn,
            observed,
            format!(
                "the hypervisor has taken {since_boot:.1}% of busy CPU time since boot: a contended host"
            ),
            WHY,
            fix,
        )
    } else {
        finding(
            CHECK,
            Status::Ok,
            observed,
            "little or no CPU time taken by the hypervisor",
            WHY,
            None,
        )
    }
}

fn transparent_hugepages(root: &Path) -> Finding {
    const CHECK: &str = "transparent hugepages";
    const WHY: &str = "with THP `always`, khugepaged collapses connection buffers into huge pages in the background: latency spikes unrelated to the variant, and memory per connection that measures THP, not the server";
    let text = match read(root, "sys/kernel/mm/transparent_hugepage/enabled") {
        Ok(t) => t,
        Err(_) => {
            return finding(
                CHECK,
                Status::Ok,
                "absent",
                "kernel without transparent hugepages",
                WHY,
                None,
            );
        }
    };
    let selected = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
        .unwrap_or(text.as_str())
        .to_string();
    match selected.as_str() {
        "always" => finding(
            CHECK,
            Status::Warn,
            selected.clone(),
            "always: huge pages may back connection buffers behind the server's back",
            WHY,
            Some("echo madvise > /sys/kernel/mm/transparent_hugepage/enabled".to_string()),
        ),
        "madvise" | "never" => finding(
            CHECK,
            Status::Ok,
            selected.clone(),
            format!("{selected}: huge pages only where asked for"),
            WHY,
            None,
        ),
        other => finding(
            CHECK,
            Status::Warn,
            other.to_string(),
            format!("unknown setting `{other}`"),
            WHY,
            Some("echo madvise > /sys/kernel/mm/transparent_hugepage/enabled".to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0-3,5,7-8\n"), Some(7));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
    }

    #[test]
    fn effective_uid_is_the_second_uid_field() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid_from_status(status), Some(0));
        assert_eq!(effective_uid_from_status("Name:\tx\n"), None);
    }

    #[test]
    fn unlimited_limits_read_as_unlimited() {
        assert_eq!(limit_text(u64::MAX), "unlimited");
        assert_eq!(limit_text(1024), "1024");
    }
}
