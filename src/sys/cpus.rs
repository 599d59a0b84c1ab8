//! The CPUs a process may run on (its affinity), as `/proc/<pid>/status`
//! lists them: what `taskset` or `sched_setaffinity` left it.

/// `Cpus_allowed_list:\t0-3,6` from `/proc/<pid>/status` → `[0,1,2,3,6]`.
pub fn allowed_cpus(status: &str) -> Option<Vec<usize>> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    crate::units::parse_cpu_list(line.trim()).ok()
}

/// The CPUs this process may run on; `None` when `/proc` cannot say.
pub fn own_allowed_cpus() -> Option<Vec<usize>> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| allowed_cpus(&status))
        .filter(|cpus| !cpus.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_cpus_come_from_the_status_file() {
        assert_eq!(
            allowed_cpus("Name:\tx\nCpus_allowed_list:\t0-1\n").unwrap(),
            [0, 1]
        );
        assert_eq!(allowed_cpus("Name:\tx\n"), None);
        assert!(!own_allowed_cpus().unwrap().is_empty());
    }
}
