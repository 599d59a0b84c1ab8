//! [`ThreadLimits`] as read from `proc` under a root folder (`/` on a real
//! machine, a fake tree in tests), and the parsers behind it.

use std::path::Path;

use super::{NprocLimit, ThreadLimits};

/// CAP_SYS_ADMIN and CAP_SYS_RESOURCE, which exempt a process from
/// RLIMIT_NPROC.
const CAP_SYS_ADMIN_BIT: u32 = 21;
const CAP_SYS_RESOURCE_BIT: u32 = 24;

fn read(root: &Path, relative: &str) -> Result<String, String> {
    let path = root.join(relative);
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_number(root: &Path, relative: &str) -> Result<u64, String> {
    let text = read(root, relative)?;
    text.trim().parse().map_err(|_| {
        format!(
            "{} holds `{}`, not a number",
            root.join(relative).display(),
            text.trim()
        )
    })
}

/// The limits of this machine and of the user running this process, read
/// under `root`; the servers a run starts inherit this process's
/// RLIMIT_NPROC.
pub fn read_thread_limits(root: &Path) -> Result<ThreadLimits, String> {
    let loadavg = read(root, "proc/loadavg")?;
    let threads_running = parse_loadavg_threads(&loadavg).ok_or_else(|| {
        format!(
            "proc/loadavg holds `{}`, not its five fields",
            loadavg.trim()
        )
    })?;
    let status = read(root, "proc/self/status")?;
    let uid_map = read(root, "proc/self/uid_map")?;
    let nproc = if nproc_exempt(&status, &uid_map) {
        None
    } else {
        let limits = read(root, "proc/self/limits")?;
        let (soft, hard) =
            parse_max_processes(&limits).ok_or("proc/self/limits has no `Max processes` line")?;
        let uid = real_uid(&status).ok_or("proc/self/status has no Uid line")?;
        Some(NprocLimit {
            soft,
            hard,
            user_threads_running: user_threads(root, uid),
        })
    };
    Ok(ThreadLimits {
        pid_max: read_number(root, "proc/sys/kernel/pid_max")?,
        threads_max: read_number(root, "proc/sys/kernel/threads-max")?,
        threads_running,
        max_map_count: read_number(root, "proc/sys/vm/max_map_count")?,
        nproc,
    })
}

/// The number of threads in the system: the total of `running/total`, the
/// fourth field of /proc/loadavg.
pub fn parse_loadavg_threads(loadavg: &str) -> Option<u64> {
    let field = loadavg.split_whitespace().nth(3)?;
    field.split_once('/')?.1.parse().ok()
}

/// `(soft, hard)` of the `Max processes` line of /proc/PID/limits
/// (`unlimited` as `u64::MAX`).
pub fn parse_max_processes(limits: &str) -> Option<(u64, u64)> {
    let rest = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max processes"))?;
    let value = |word: &str| match word {
        "unlimited" => Some(u64::MAX),
        number => number.parse().ok(),
    };
    let mut words = rest.split_whitespace();
    Some((value(words.next()?)?, value(words.next()?)?))
}

/// The real uid of a /proc/PID/status text (the first `Uid:` field, the
/// one RLIMIT_NPROC counts threads under).
pub fn real_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `Threads:` of a /proc/PID/status text.
fn threads_of(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether the kernel lets this process's threads past RLIMIT_NPROC: root
/// of the initial user namespace (whose uid_map maps every uid to itself),
/// or a process holding CAP_SYS_ADMIN or CAP_SYS_RESOURCE there.
pub fn nproc_exempt(status: &str, uid_map: &str) -> bool {
    let initial_namespace = uid_map
        .lines()
        .next()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .is_some_and(|fields| fields == ["0", "0", "4294967295"]);
    if !initial_namespace {
        return false;
    }
    let capabilities = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let has = |bit: u32| capabilities & (1 << bit) != 0;
    real_uid(status) == Some(0) || has(CAP_SYS_ADMIN_BIT) || has(CAP_SYS_RESOURCE_BIT)
}

/// Threads of every process whose real uid is `uid`, under `root/proc`.
/// A process that ends while being read is skipped.
fn user_threads(root: &Path, uid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir(root.join("proc")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_pid))
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| real_uid(status) == Some(uid))
        .filter_map(|status| threads_of(&status))
        .sum()
}

fn is_pid(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
}
