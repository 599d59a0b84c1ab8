//! The machine a result was measured on, recorded with every result: a
//! number means little without the kernel, CPU, limits and pinning behind it.
//! Read from `/proc` (no syscalls of our own beyond file reads), so that a
//! missing entry becomes `null` instead of an error.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// `/proc/sys/kernel/osrelease`, e.g. `6.8.0-45-generic`.
    pub kernel_release: String,
    /// `/proc/sys/kernel/version`.
    pub kernel_version: String,
    pub architecture: String,
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Online logical CPUs (`processor` entries in `/proc/cpuinfo`).
    pub logical_cpus: usize,
    /// CPUs this process may run on (`Cpus_allowed_list`).
    pub usable_cpus: Vec<usize>,
    pub pinning: Pinning,
    pub sysctls: Sysctls,
    pub rlimits: Rlimits,
    /// `git rev-parse HEAD` of the working directory, else of the source
    /// checkout the binary was built from, else `unknown`.
    pub git_commit: String,
    /// Uncommitted changes in that checkout (`None`: unknown).
    pub git_dirty: Option<bool>,
    pub command_line: Vec<String>,
    pub epoll_bench_version: String,
    /// `release` or `debug`: debug builds measure the compiler, not epoll.
    pub build_profile: String,
    /// Whether this build counts syscalls (`count-syscalls` feature).
    pub syscall_counting: bool,
    /// What `epoll-bench doctor` found before the run (`None`: not run,
    /// e.g. results written by a bench).
    #[serde(default)]
    pub doctor: Option<crate::results::doctor_report::DoctorReport>,
}

/// Where server and driver ran.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinning {
    /// `auto`, `none` or the `--pin` list given.
    pub mode: String,
    pub server_cpus: Option<Vec<usize>>,
    pub driver_cpus: Option<Vec<usize>>,
    /// How the server was pinned (`taskset`), or why it was not.
    pub method: String,
}

/// Kernel settings that can cap what the benchmark measures. `None` when
/// unreadable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sysctls {
    /// `net.core.somaxconn`: listen backlog cap, connections.
    pub somaxconn_connections: Option<u64>,
    /// `net.ipv4.tcp_max_syn_backlog`, connections.
    pub tcp_max_syn_backlog_connections: Option<u64>,
    /// `net.ipv4.tcp_rmem`: min, default, max.
    pub tcp_rmem_bytes: Option<Vec<u64>>,
    /// `net.ipv4.tcp_wmem`: min, default, max.
    pub tcp_wmem_bytes: Option<Vec<u64>>,
    /// `net.ipv4.ip_local_port_range`: first, last.
    pub ip_local_port_range_ports: Option<Vec<u64>>,
    /// `fs.pipe-max-size`.
    pub pipe_max_size_bytes: Option<u64>,
}

/// Limits of this process (the server inherits them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlimits {
    /// `RLIMIT_NOFILE` soft limit, file descriptors (`None`: unlimited).
    pub open_files_soft: Option<u64>,
    pub open_files_hard: Option<u64>,
}

impl Environment {
    /// Reads the environment of this machine and process.
    pub fn collect(pinning: Pinning) -> Environment {
        Environment::collect_from(Path::new("/proc"), pinning)
    }

    /// Reads from a `/proc`-like tree (tests point it at a fixture).
    pub fn collect_from(proc_root: &Path, pinning: Pinning) -> Environment {
        let read = |rel: &str| {
            std::fs::read_to_string(proc_root.join(rel))
                .ok()
                .map(|s| s.trim().to_string())
        };
        let numbers = |rel: &str| -> Option<Vec<u64>> {
            read(rel)?
                .split_whitespace()
                .map(|w| w.parse().ok())
                .collect()
        };
        let number = |rel: &str| numbers(rel).and_then(|v| v.first().copied());
        let cpuinfo = read("cpuinfo").unwrap_or_default();
        let (soft, hard) = crate::sys::rlimit::nofile().unwrap_or((u64::MAX, u64::MAX));
        let limit = |v: u64| (v != libc::RLIM_INFINITY).then_some(v);
        let (git_commit, git_dirty) = git_state();
        Environment {
            kernel_release: read("sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            kernel_version: read("sys/kernel/version").unwrap_or_else(|| "unknown".into()),
            architecture: std::env::consts::ARCH.to_string(),
            cpu_model: cpu_model(&cpuinfo),
            logical_cpus: cpuinfo
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count(),
            usable_cpus: read("self/status")
                .and_then(|s| allowed_cpus(&s))
                .unwrap_or_default(),
            pinning,
            sysctls: Sysctls {
                somaxconn_connections: number("sys/net/core/somaxconn"),
                tcp_max_syn_backlog_connections: number("sys/net/ipv4/tcp_max_syn_backlog"),
                tcp_rmem_bytes: numbers("sys/net/ipv4/tcp_rmem"),
                tcp_wmem_bytes: numbers("sys/net/ipv4/tcp_wmem"),
                ip_local_port_range_ports: numbers("sys/net/ipv4/ip_local_port_range"),
                pipe_max_size_bytes: number("sys/fs/pipe-max-size"),
            },
            rlimits: Rlimits {
                open_files_soft: limit(soft),
                open_files_hard: limit(hard),
            },
            git_commit,
            git_dirty,
            command_line: std::env::args().collect(),
            epoll_bench_version: env!("CARGO_PKG_VERSION").to_string(),
            build_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_string(),
            syscall_counting: crate::sys::counters::COUNTING_ENABLED,
            doctor: None,
        }
    }
}

fn cpu_model(cpuinfo: &str) -> String {
    // x86 says `model name`; many arm64 kernels only give `CPU part`.
    for key in ["model name", "Model", "Hardware", "CPU part"] {
        if let Some(value) = cpuinfo
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim())
        {
            return value.to_string();
        }
    }
    "unknown".to_string()
}

pub use crate::sys::cpus::allowed_cpus;

/// CPUs this process may run on.
pub fn usable_cpus() -> Vec<usize> {
    crate::sys::cpus::own_allowed_cpus().unwrap_or_else(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..n).collect()
    })
}

fn git_state() -> (String, Option<bool>) {
    let candidates = [
        std::env::current_dir().ok(),
        Some(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    for dir in candidates.into_iter().flatten() {
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(&dir)
                .args(args)
                .stderr(std::process::Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        if let Some(commit) = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty()) {
            let dirty =
                git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
            return (commit, dirty);
        }
    }
    ("unknown".to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_from_a_fake_proc_tree() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("sys/kernel/osrelease", "6.1.0-test\n");
        write(
            "cpuinfo",
            "processor\t: 0\nmodel name\t: Test CPU @ 1GHz\n\nprocessor\t: 1\nmodel name\t: Test CPU @ 1GHz\n",
        );
        write("self/status", "Cpus_allowed_list:\t0-1\n");
        write("sys/net/core/somaxconn", "4096\n");
        write("sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n");
        write("sys/net/ipv4/ip_local_port_range", "32768\t60999\n");
        write("sys/fs/pipe-max-size", "1048576\n");
        let env = Environment::collect_from(dir.path(), Pinning::default());
        assert_eq!(env.kernel_release, "6.1.0-test");
        assert_eq!(env.kernel_version, "unknown");
        assert_eq!(env.cpu_model, "Test CPU @ 1GHz");
        assert_eq!(env.logical_cpus, 2);
        assert_eq!(env.usable_cpus, [0, 1]);
        assert_eq!(env.sysctls.somaxconn_connections, Some(4096));
        assert_eq!(
            env.sysctls.tcp_rmem_bytes,
            Some(vec![4096, 131072, 6291456])
        );
        assert_eq!(env.sysctls.tcp_wmem_bytes, None);
        assert_eq!(
            env.sysctls.ip_local_port_range_ports,
            Some(vec![32768, 60999])
        );
        assert_eq!(env.sysctls.pipe_max_size_bytes, Some(1048576));
    }
}
