//! The reference peers as child processes: built on first use (cargo for
//! the tokio crate, `go build` for the Go one), started with the common
//! CLI (`--addr`, `--protocol`), watched from outside through /proc, since
//! they have none of `epoll-bench serve`'s counters or control channel.
//!
//! Every wait here is bounded: a peer bug must fail a test, never hang it.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use epoll_bench::protocol::Protocol;

/// How long a peer may take to print its `listening on` line.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a peer may take to close its side once clients are gone.
const FD_SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Like the built-in servers: exit 0 within 1 s of SIGTERM.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
pub(crate) enum Peer {
    TokioCurrentThread,
    TokioMultiThread,
    Go,
}

impl Peer {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Peer::TokioCurrentThread => "tokio current-thread",
            Peer::TokioMultiThread => "tokio multi-thread",
            Peer::Go => "go",
        }
    }

    /// The peer's binary and its own flags, or why it cannot run here.
    fn command(self) -> Result<Command, String> {
        static TOKIO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        static GO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        let (binary, flags): (_, &[&str]) = match self {
            Peer::TokioCurrentThread => (
                TOKIO.get_or_init(build_tokio),
                &["--runtime", "current-thread"],
            ),
            Peer::TokioMultiThread => (
                TOKIO.get_or_init(build_tokio),
                &["--runtime", "multi-thread", "--threads", "2"],
            ),
            Peer::Go => (GO.get_or_init(build_go), &[]),
        };
        let mut command = Command::new(binary.as_ref().map_err(Clone::clone)?);
        command.args(flags);
        Ok(command)
    }
}

/// target/<profile>/, where this test's own binaries are.
fn profile_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_epoll-bench"))
        .parent()
        .expect("binary in a directory")
}

/// Built here rather than assumed: `cargo test --test peers` alone does
/// not build other workspace members. A no-op when it is up to date.
fn build_tokio() -> Result<PathBuf, String> {
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args([
            "build",
            "--quiet",
            "-p",
            "tokio-server",
            "--bin",
            "tokio-server",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir().file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    let status = cargo
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    assert!(status.success(), "cargo build -p tokio-server: {status}");
    Ok(profile_dir().join("tokio-server"))
}

/// Go is optional on a developer's machine (its tests are skipped with the
/// reason), never in CI, whose `.ci/run` installs it.
fn build_go() -> Result<PathBuf, String> {
    let version = Command::new("go").arg("version").output();
    if let Err(e) = version
        .as_ref()
        .map_err(|e| e.to_string())
        .and_then(|o| o.status.success().then_some(()).ok_or(o.status.to_string()))
    {
        let reason = format!("no Go toolchain (`go version`: {e}); `apt-get install golang-go`");
        assert!(
            std::env::var_os("CI").is_none(),
            "{reason}: .ci/run should have installed it"
        );
        return Err(reason);
    }
    let binary = profile_dir().join("go-server");
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/go-server"))
        // Within the target directory: needs no $HOME, goes with `cargo clean`.
        .env("GOCACHE", profile_dir().join("../go-build-cache"))
        // Never download another toolchain (newer Go would for a newer go.mod).
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|e| format!("cannot run go build: {e}"))?;
    assert!(
        output.status.success(),
        "go build peers/go-server: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(binary)
}

/// Whether `peer` can run here; prints the reason when not, so a skipped
/// test says so instead of silently passing.
pub(crate) fn unavailable_here(peer: Peer) -> bool {
    match peer.command() {
        Ok(_) => false,
        Err(reason) => {
            eprintln!(
                "skipped: {} is unavailable on this machine: {reason}",
                peer.name()
            );
            true
        }
    }
}

/// A running peer.
pub(crate) struct PeerProcess {
    child: Child,
    stderr: Arc<Mutex<String>>,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
    /// `peer protocol`, for failure messages.
    pub(crate) label: String,
}

impl PeerProcess {
    /// Starts `peer --addr 127.0.0.1:0 --protocol P` plus `extra` flags and
    /// waits (bounded) for `listening on HOST:PORT` as its first line.
    pub(crate) fn start(peer: Peer, protocol: Protocol, extra: &[&str]) -> PeerProcess {
        let label = format!("{} {}", peer.name(), protocol.name());
        let mut child = peer
            .command()
            .unwrap_or_else(|reason| panic!("{label}: unavailable: {reason}"))
            .args(["--addr", "127.0.0.1:0", "--protocol", protocol.name()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot spawn: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        // Drained all along: a peer logging closed connections must never
        // block on a full pipe.
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut child_stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = child_stderr.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let pid = child.id();
        let mut peer = PeerProcess {
            child,
            stderr,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            label,
        };
        let first = lines.recv_timeout(LISTEN_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "{}: no `listening on` line ({e}); stderr: {}",
                peer.label,
                peer.stderr()
            )
        });
        peer.addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{}: unexpected first line `{first}`", peer.label));
        peer
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub(crate) fn fd_numbers(&self) -> BTreeSet<u32> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .unwrap_or_else(|e| panic!("{}: cannot list /proc/{}/fd: {e}", self.label, self.pid))
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    pub(crate) fn open_fds(&self) -> usize {
        self.fd_numbers().len()
    }

    /// Polls until the peer has exactly `expected` fds open: with no
    /// counters to read, this is how a case sees connections closed.
    pub(crate) fn wait_for_fds(&self, expected: usize, what: &str) {
        let deadline = Instant::now() + FD_SETTLE_TIMEOUT;
        loop {
            let open = self.open_fds();
            if open == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} ({what}): {open} fds open, expected {expected}; stderr: {}",
                self.label,
                clip(&self.stderr())
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn proc_status_field(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("readable /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid))
    }

    pub(crate) fn rss_bytes(&self) -> u64 {
        self.proc_status_field("VmRSS:") * 1024
    }

    /// User + system CPU of all the peer's threads, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .expect("readable /proc/<pid>/stat");
        // Fields after the parenthesised command name; utime and stime are
        // fields 14 and 15 of the whole line.
        let after_name = &stat[stat.rfind(')').expect("comm in stat") + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// SIGTERM, then exit status 0 within [`SHUTDOWN_DEADLINE`].
    pub(crate) fn terminate(mut self) {
        let sent = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM the peer");
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if sent.elapsed() >= SHUTDOWN_DEADLINE {
                break None;
            }
            thread::sleep(Duration::from_millis(2));
        };
        assert!(
            status.is_some_and(|s| s.success()),
            "{}: after SIGTERM: exit status {status:?} within {SHUTDOWN_DEADLINE:?}; stderr: {}",
            self.label,
            clip(&self.stderr())
        );
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The end of a long log, for failure messages.
fn clip(text: &str) -> &str {
    let mut start = text.len().saturating_sub(2000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
