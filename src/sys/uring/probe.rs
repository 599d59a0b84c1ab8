//! Whether this kernel lets this process run the io_uring backend: the
//! `kernel.io_uring_disabled` sysctl, `io_uring_setup`, and the features
//! and opcodes the plain `uring` variants use.

use std::io;
use std::path::Path;

use io_uring::opcode;

use super::{SyscallKind, Uring, finish_io};

/// Where the kernel says whether io_uring may be used (Linux 6.6+; absent
/// before, which means allowed): 0 allowed, 1 only for root and the group
/// `kernel.io_uring_group`, 2 disabled for everyone.
pub const IO_URING_DISABLED_SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// Test hook: read this file instead of [`IO_URING_DISABLED_SYSCTL`], so a
/// test can see what a machine with io_uring disabled does (server
/// refuses to start, `run` records the failure) on one where it works.
pub const DISABLED_FILE_OVERRIDE_ENV: &str = "EPOLL_BENCH_IO_URING_DISABLED_FILE";

/// The opcodes the plain `uring` variants use, probed at start.
const REQUIRED_OPCODES: [(u8, &str); 7] = [
    (opcode::Accept::CODE, "IORING_OP_ACCEPT"),
    (opcode::Recv::CODE, "IORING_OP_RECV"),
    (opcode::Send::CODE, "IORING_OP_SEND"),
    (opcode::Readv::CODE, "IORING_OP_READV"),
    (opcode::Writev::CODE, "IORING_OP_WRITEV"),
    (opcode::PollAdd::CODE, "IORING_OP_POLL_ADD"),
    (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
];

/// Whether this kernel lets this process run the io_uring backend; the
/// error is the reason, ready for a report. Makes one `io_uring_setup`
/// and one `io_uring_register` on the calling thread (counted there).
pub fn probe() -> Result<(), String> {
    match std::env::var_os(DISABLED_FILE_OVERRIDE_ENV) {
        Some(path) => probe_with(Path::new(&path), true),
        None => probe_with(Path::new(IO_URING_DISABLED_SYSCTL), false),
    }
}

/// [`probe`], reading whether io_uring is disabled from `path`; a missing
/// file means allowed unless it was named explicitly.
fn probe_with(path: &Path, overridden: bool) -> Result<(), String> {
    let disabled = match std::fs::read_to_string(path) {
        Ok(text) => text.trim().to_string(),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !overridden => "0".into(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if disabled == "2" {
        return Err(format!(
            "io_uring is disabled on this machine (kernel.io_uring_disabled = 2, read from {}); \
             allow it as root: `sysctl -w kernel.io_uring_disabled=0`",
            path.display()
        ));
    }
    let uring = Uring::new(8).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOSYS) => format!(
            "this kernel has no io_uring (io_uring_setup: {e}); it needs Linux 5.11+ built with \
             CONFIG_IO_URING"
        ),
        Some(libc::EPERM) if disabled == "1" => format!(
            "io_uring is limited to root and the group kernel.io_uring_group \
             (kernel.io_uring_disabled = 1) and this process is neither (io_uring_setup: {e})"
        ),
        Some(libc::EPERM) => format!(
            "the kernel refused io_uring (io_uring_setup: {e}): a seccomp profile (e.g. a \
             container's) or kernel.io_uring_disabled forbids it"
        ),
        _ => format!("io_uring_setup failed: {e}"),
    })?;
    let params = uring.ring.params();
    let features = [
        (
            params.is_feature_ext_arg(),
            "IORING_FEAT_EXT_ARG (timed waits, Linux 5.11)",
        ),
        (params.is_feature_nodrop(), "IORING_FEAT_NODROP (Linux 5.5)"),
        (
            params.is_feature_submit_stable(),
            "IORING_FEAT_SUBMIT_STABLE (Linux 5.5)",
        ),
        // Without it a socket operation that must wait blocks a kernel
        // worker thread instead of waiting for readiness.
        (
            params.is_feature_fast_poll(),
            "IORING_FEAT_FAST_POLL (Linux 5.7)",
        ),
    ];
    if let Some((_, missing)) = features.iter().find(|(present, _)| !present) {
        return Err(format!("this kernel's io_uring lacks {missing}"));
    }
    let mut probe = io_uring::Probe::new();
    finish_io(
        SyscallKind::IoUringRegister,
        uring.ring.submitter().register_probe(&mut probe),
    )
    .map_err(|e| format!("cannot probe io_uring opcodes (io_uring_register: {e})"))?;
    match REQUIRED_OPCODES
        .iter()
        .find(|(code, _)| !probe.is_supported(*code))
    {
        Some((_, name)) => Err(format!("this kernel's io_uring lacks {name}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_names_a_disabled_sysctl() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("io_uring_disabled");
        std::fs::write(&file, "2\n").unwrap();
        let reason = probe_with(&file, true).unwrap_err();
        assert!(reason.contains("kernel.io_uring_disabled = 2"), "{reason}");
        // Named explicitly, a missing file is an error, not "allowed".
        let missing = probe_with(&dir.path().join("nothing"), true).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
