//! The machine under the benchmark: usable CPUs, frequency governor,
//! virtualization, CPU steal and transparent hugepages, which add noise or
//! set the limit instead of the variants.

use std::path::Path;

use super::finding::{finding, unreadable};
use super::read::read;
use crate::doctor::{Finding, ProcessFacts, Status};
use crate::metrics::cpu_steal::CpuTimes;

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

pub(super) fn cpus(root: &Path, facts: &ProcessFacts) -> Finding {
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

pub(super) fn cpufreq_governor(root: &Path) -> Finding {
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

pub(super) fn virtualization(root: &Path) -> Finding {
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

pub(super) fn cpu_steal(root: &Path, facts: &ProcessFacts) -> Finding {
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
            crate::doctor::STEAL_SAMPLE.as_millis()
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

pub(super) fn transparent_hugepages(root: &Path) -> Finding {
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
}
