//! Where the kernel refuses io_uring, the `uring-` variants say so and why:
//! `serve` exits with one line naming the reason, and `run` records the
//! variant as failed with it, never measuring another server in its place.
//!
//! This machine may well allow io_uring, so the refusal is simulated with
//! the probe's test hooks: `kernel.io_uring_disabled` read from a file that
//! says 2 (disabled for everyone), and a kernel said to lack
//! `IORING_OP_SPLICE`, which only `uring-splice` needs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use epoll_bench::results::{ResultsFile, Status};
use epoll_bench::sys::uring::{DISABLED_FILE_OVERRIDE_ENV, LACKS_OVERRIDE_ENV};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_epoll-bench"))
}

/// The binary with `args`, on a machine that (it is told) disables io_uring.
fn with_io_uring_disabled(dir: &Path, args: &[&str]) -> Output {
    let sysctl = dir.join("io_uring_disabled");
    std::fs::write(&sysctl, "2\n").unwrap();
    Command::new(binary())
        .args(args)
        .env(DISABLED_FILE_OVERRIDE_ENV, &sysctl)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn serve_refuses_a_uring_variant_naming_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for variant in [
        "uring-rw",
        "uring-writev",
        "uring-splice",
        "uring-multishot",
    ] {
        let output = with_io_uring_disabled(dir.path(), &["serve", "--variant", variant]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{variant}: {stderr}");
        assert!(
            text(&output.stdout).is_empty(),
            "{variant}: never listening"
        );
        assert_eq!(stderr.lines().count(), 1, "{variant}: {stderr}");
        assert!(
            stderr.contains(&format!("variant {variant} is unavailable on this machine"))
                && stderr.contains("kernel.io_uring_disabled = 2"),
            "{variant}: {stderr}"
        );
    }
    // The epoll variants do not depend on it.
    let mut epoll = Command::new(binary())
        .args(["serve", "--variant", "lt-rw", "--exit-on-stdin-eof"])
        .env(
            DISABLED_FILE_OVERRIDE_ENV,
            dir.path().join("io_uring_disabled"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = epoll.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(epoll.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(status.success(), "lt-rw: {status:?}");
    assert!(stdout.starts_with("listening on "), "lt-rw: {stdout}");
}

/// `serve --variant <variant> --exit-on-stdin-eof` on a kernel said to
/// lack `IORING_OP_SPLICE`.
fn serve_without_splice(variant: &str) -> (Option<i32>, String, String) {
    let output = Command::new(binary())
        .args(["serve", "--variant", variant, "--exit-on-stdin-eof"])
        .env(LACKS_OVERRIDE_ENV, "IORING_OP_SPLICE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

#[test]
fn serve_refuses_uring_splice_on_a_kernel_without_io_uring_splice() {
    if let Some(reason) = "uring-rw"
        .parse::<epoll_bench::server::Variant>()
        .unwrap()
        .unavailable_reason()
    {
        eprintln!("skipped: io_uring is unavailable on this machine: {reason}");
        return;
    }
    let (code, stdout, stderr) = serve_without_splice("uring-splice");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty(), "never listening: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("variant uring-splice is unavailable on this machine")
            && stderr.contains("lacks IORING_OP_SPLICE"),
        "{stderr}"
    );
    // The other io_uring variants do not need it.
    let (code, stdout, stderr) = serve_without_splice("uring-rw");
    assert_eq!(code, Some(0), "uring-rw: {stderr}");
    assert!(stdout.starts_with("listening on "), "uring-rw: {stdout}");
}

#[test]
fn run_records_the_uring_variant_as_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let output = with_io_uring_disabled(
        dir.path(),
        &[
            "run",
            "--variants",
            "lt-rw,uring-rw,uring-splice",
            "--profile",
            "pingpong-64b-1conn",
            "--quick",
            "--no-limits",
            "--pin",
            "none",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    // A run in which a result failed exits 1, with its results saved.
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let results = ResultsFile::load(&out).unwrap();
    let case = &results.cases[0];
    let names: Vec<String> = case
        .variants
        .iter()
        .map(|v| v.variant.to_string())
        .collect();
    assert_eq!(
        names,
        ["lt-rw", "uring-rw", "uring-splice"],
        "nothing measured in its place"
    );
    let lt = &case.variants[0];
    assert_eq!(lt.status, Status::Passed, "{:?}", lt.failure_reasons);
    for (uring, name) in case.variants[1..].iter().zip(["uring-rw", "uring-splice"]) {
        assert_eq!(uring.status, Status::Failed, "{name}");
        assert!(
            uring
                .failure_reasons
                .iter()
                .any(|r| r.contains(&format!("{name} is unavailable"))
                    && r.contains("kernel.io_uring_disabled = 2")),
            "{name}: {:?}",
            uring.failure_reasons
        );
    }
}

/// `uring-multishot` uses registered files: on a kernel said to lack
/// sparse registration or closing a registered file it is refused with
/// the reason, never served without them; `uring-writev` does not need
/// them.
#[test]
fn serve_refuses_uring_multishot_without_registered_files() {
    if let Some(reason) = "uring-multishot"
        .parse::<epoll_bench::server::Variant>()
        .unwrap()
        .unavailable_reason()
    {
        eprintln!("skipped: uring-multishot is unavailable on this machine: {reason}");
        return;
    }
    let serve = |variant: &str, lacks: &str| {
        Command::new(binary())
            .args(["serve", "--variant", variant, "--exit-on-stdin-eof"])
            .env(LACKS_OVERRIDE_ENV, lacks)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for lacks in ["IORING_RSRC_REGISTER_SPARSE", "IORING_OP_CLOSE"] {
        let output = serve("uring-multishot", lacks);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{lacks}: {stderr}");
        assert!(text(&output.stdout).is_empty(), "{lacks}: never listening");
        assert_eq!(stderr.lines().count(), 1, "{lacks}: {stderr}");
        assert!(
            stderr.contains("variant uring-multishot is unavailable on this machine")
                && stderr.contains(&format!("lacks {lacks}")),
            "{lacks}: {stderr}"
        );
        let output = serve("uring-writev", lacks);
        assert_eq!(
            output.status.code(),
            Some(0),
            "uring-writev without {lacks}: {}",
            text(&output.stderr)
        );
    }
}
