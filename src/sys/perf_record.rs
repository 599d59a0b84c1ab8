//! The one place `perf` runs as a subprocess: `perf record` sampling
//! another process (all its threads), switched on and off at the measured
//! window's edges through perf's control FIFOs, and `perf report` turning
//! what it wrote into text.
//!
//! Why control FIFOs: `perf record -p PID` takes tens to hundreds of
//! milliseconds to attach to every thread and set up its buffers. Started
//! at the window's start it would miss the beginning, and stopped by a
//! signal it would sample the drain. Started during the warm-up with its
//! events off (`--delay -1`) and told `enable` / `disable` through
//! `--control fifo:CTL,ACK`, it samples exactly the window: each command
//! returns once perf has acknowledged it.
//!
//! The calls here (mkfifo, open, read, write on the FIFOs) are the
//! driver's, made outside any serving thread, so they are not counted.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The program run; `perf` on `PATH`.
const PERF: &str = "perf";

/// How long perf may take to answer a control command (attaching to a
/// many-threaded process on a loaded 2-CPU machine can take a second).
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// What `perf record` samples.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordSettings {
    /// A perf event name, e.g. `cpu-clock`.
    pub event: String,
    /// Samples per second per thread while it runs.
    pub frequency_hz: u32,
}

/// A `perf record` attached to one process, its events off until
/// [`PerfRecording::enable`].
pub struct PerfRecording {
    child: Child,
    control: File,
    ack: File,
    data: PathBuf,
    command_line: String,
}

impl PerfRecording {
    /// Starts `perf record` on every thread of `pid` (and the threads it
    /// creates later), writing to `dir/perf.data`, and waits until it
    /// answers on its control FIFO: attached, events off. The error says
    /// why perf could not (not installed, refused by
    /// `perf_event_paranoid`, the process gone), with perf's own words.
    pub fn attach(
        pid: u32,
        dir: &Path,
        settings: &RecordSettings,
    ) -> Result<PerfRecording, String> {
        let control_path = dir.join("perf-control.fifo");
        let ack_path = dir.join("perf-ack.fifo");
        for path in [&control_path, &ack_path] {
            nix::unistd::mkfifo(
                path,
                nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
            )
            .map_err(|e| format!("cannot create the FIFO {}: {e}", path.display()))?;
        }
        // Read and write: opening a FIFO this way never waits for the
        // other end, so a perf that never starts cannot hang the driver;
        // reads are non-blocking and polled against a deadline instead.
        let open = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
                .map_err(|e| format!("cannot open the FIFO {}: {e}", path.display()))
        };
        let control = open(&control_path)?;
        let ack = open(&ack_path)?;
        let data = dir.join("perf.data");
        let args = vec![
            "record".to_string(),
            "--event".into(),
            settings.event.clone(),
            "--freq".into(),
            settings.frequency_hz.to_string(),
            "--pid".into(),
            pid.to_string(),
            // Events off until `enable`.
            "--delay=-1".into(),
            format!(
                "--control=fifo:{},{}",
                control_path.display(),
                ack_path.display()
            ),
            "--output".into(),
            data.display().to_string(),
            "--quiet".into(),
        ];
        let command_line = format!("{PERF} {}", args.join(" "));
        let child = Command::new(PERF)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run `{PERF}`: {e}"))?;
        let mut recording = PerfRecording {
            child,
            control,
            ack,
            data,
            command_line,
        };
        recording.command("ping")?;
        Ok(recording)
    }

    /// The command as run.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// Switches sampling on; returns once perf has.
    pub fn enable(&mut self) -> Result<(), String> {
        self.command("enable")
    }

    /// Switches sampling off; returns once perf has.
    pub fn disable(&mut self) -> Result<(), String> {
        self.command("disable")
    }

    /// Stops perf and waits for it to write its data file; the file's path.
    pub fn finish(mut self) -> Result<PathBuf, String> {
        self.command("stop")?;
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(self.data.clone()),
                Ok(Some(status)) => return Err(self.failed(&format!("exited with {status}"))),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => return Err(self.failed("did not exit after `stop`")),
                Err(e) => return Err(format!("cannot wait for `{PERF} record`: {e}")),
            }
        }
    }

    /// Sends one control command and waits for perf's `ack`.
    fn command(&mut self, command: &str) -> Result<(), String> {
        self.control
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("cannot send `{command}` to `{PERF} record`: {e}"))?;
        let deadline = Instant::now() + ACK_TIMEOUT;
        let mut answer = Vec::new();
        let mut buffer = [0u8; 16];
        loop {
            match self.ack.read(&mut buffer) {
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    if answer.contains(&b'\n') {
                        // perf writes `ack\n` and its string's NUL.
                        let said = String::from_utf8_lossy(&answer);
                        return match said.trim_matches(|c: char| c.is_whitespace() || c == '\0') {
                            "ack" => Ok(()),
                            other => {
                                Err(format!("`{PERF} record` answered `{other}` to `{command}`"))
                            }
                        };
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("cannot read `{PERF} record`'s answer: {e}")),
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failed(&format!(
                    "exited with {status} before answering `{command}`"
                )));
            }
            if Instant::now() >= deadline {
                return Err(self.failed(&format!(
                    "did not answer `{command}` within {} s",
                    ACK_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// What went wrong, with what perf said on stderr (once it has exited:
    /// killed first otherwise, so that reading its stderr ends).
    fn failed(&mut self, what: &str) -> String {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let mut said = String::new();
        if let Some(stderr) = self.child.stderr.as_mut() {
            let _ = stderr.read_to_string(&mut said);
        }
        let said = said.trim();
        if said.is_empty() {
            format!("`{PERF} record` {what}")
        } else {
            format!("`{PERF} record` {what}: {}", last_lines(said, 6))
        }
    }
}

impl Drop for PerfRecording {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `perf report` on `data`: self time per shared object and symbol, flat
/// (no call chains), with sample counts, every line kept (no percent
/// limit), as text.
pub fn report(data: &Path) -> Result<String, String> {
    let args = [
        "report",
        "--input",
        &data.display().to_string(),
        "--stdio",
        "--no-children",
        "--sort",
        "dso,sym",
        "--show-nr-samples",
        "--percent-limit",
        "0",
    ]
    .map(str::to_string);
    let output = run(&args)?;
    if !output.status.success() {
        return Err(format!(
            "`{PERF} report` exited with {}: {}",
            output.status,
            last_lines(String::from_utf8_lossy(&output.stderr).trim(), 6)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("`{PERF} report` wrote non-UTF-8: {e}"))
}

/// `perf --version`'s line, or why perf cannot run.
pub fn version() -> Result<String, String> {
    let output = run(&["--version".to_string()])?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if output.status.success() && !text.is_empty() {
        Ok(text)
    } else {
        Err(format!("`{PERF} --version` exited with {}", output.status))
    }
}

fn run(args: &[String]) -> Result<Output, String> {
    Command::new(PERF)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{PERF}`: {e}"))
}

/// The last `n` lines of `text`, joined with ` / `: perf's reason comes
/// last, after its advice.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b / c");
        assert_eq!(last_lines("only", 6), "only");
    }

    #[test]
    fn a_process_that_does_not_exist_is_an_error_with_perfs_reason() {
        if let Err(reason) = version() {
            eprintln!("skipped: {reason}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let settings = RecordSettings {
            event: "cpu-clock".into(),
            frequency_hz: 999,
        };
        // Pid numbers above the kernel's maximum are never in use.
        let err = PerfRecording::attach(i32::MAX as u32, dir.path(), &settings)
            .err()
            .expect("attached to no process");
        assert!(err.starts_with("`perf record` exited"), "{err}");
    }
}
