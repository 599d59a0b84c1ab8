//! The other processes of a multi-process server (`serve --processes P`),
//! as seen by the first one: it starts P-1 workers, each a `serve` of its
//! own with its own loops and `SO_REUSEPORT` listeners on the same port
//! (the way nginx workers share one), and speaks the control line protocol
//! to each over its stdin and stdout, so that it can answer for all of
//! them with one report.
//!
//! A worker dies with its parent: it asks the kernel for SIGKILL when the
//! parent goes (`sys::parent`), and exits when its stdin, a pipe only the
//! parent writes, reaches end of file (which also covers a parent that died
//! before the worker could ask).
//!
//! Each worker's stdout is read by a helper thread that forwards lines over
//! a channel, so every wait here is bounded by a timeout.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::protocol::control::Command as ControlCommand;

use super::report::ServerReport;

/// Why a worker could not be started or asked.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot start worker process {index}: {source}")]
    Spawn { index: usize, source: io::Error },
    #[error("worker process {index} (pid {pid}) {what} within {seconds} s")]
    Timeout {
        index: usize,
        pid: u32,
        what: &'static str,
        seconds: f64,
    },
    #[error("worker process {index} (pid {pid}) exited{context}")]
    Gone {
        index: usize,
        pid: u32,
        context: String,
    },
    #[error("worker process {index} (pid {pid}) answered `{line}`: {reason}")]
    BadAnswer {
        index: usize,
        pid: u32,
        line: String,
        reason: String,
    },
}

struct Worker {
    index: usize,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Worker {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn next_line(&mut self, what: &'static str, timeout: Duration) -> Result<String, WorkerError> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => Err(WorkerError::Timeout {
                index: self.index,
                pid: self.pid(),
                what,
                seconds: timeout.as_secs_f64(),
            }),
            Err(RecvTimeoutError::Disconnected) => Err(self.gone(what)),
        }
    }

    fn gone(&mut self, doing: &str) -> WorkerError {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!(" ({status})"),
            _ => String::new(),
        };
        WorkerError::Gone {
            index: self.index,
            pid: self.pid(),
            context: format!("{status} while {doing}"),
        }
    }

    fn send(&mut self, command: ControlCommand) -> Result<(), WorkerError> {
        let line = command.line();
        let sent = self
            .stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush());
        sent.map_err(|_| self.gone("being sent a control command"))
    }

    fn report(
        &mut self,
        what: &'static str,
        timeout: Duration,
    ) -> Result<ServerReport, WorkerError> {
        let line = self.next_line(what, timeout)?;
        serde_json::from_str(&line).map_err(|e| WorkerError::BadAnswer {
            index: self.index,
            pid: self.pid(),
            reason: format!("not a server report ({e})"),
            line: line.chars().take(200).collect(),
        })
    }
}

/// The running workers of one multi-process server.
pub struct Workers {
    workers: Vec<Worker>,
}

/// How long a worker may take to print its `listening on` line.
pub const WORKER_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a worker may take to answer a snapshot.
pub const WORKER_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a worker may take to flush, close and print its final report:
/// closing tens of thousands of connections in each of dozens of processes
/// sharing two CPUs takes seconds.
pub const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(30);

impl Workers {
    /// Starts one worker per command (each a `serve` with piped stdin and
    /// stdout) and waits until every one prints its `listening on` line.
    /// On any failure the workers started so far are killed.
    pub fn start(commands: Vec<Command>) -> Result<Workers, WorkerError> {
        let mut started = Workers {
            workers: Vec::with_capacity(commands.len()),
        };
        for (offset, mut command) in commands.into_iter().enumerate() {
            // Worker 0 is the process starting them.
            let index = offset + 1;
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|source| WorkerError::Spawn { index, source })?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WorkerError::Spawn {
                    index,
                    source: io::Error::other("no stdin/stdout pipe"),
                });
            };
            let (sender, lines) = mpsc::channel();
            std::thread::Builder::new()
                .name(format!("worker-{index}-stdout"))
                .spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { return };
                        if sender.send(line).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|source| WorkerError::Spawn { index, source })?;
            started.workers.push(Worker {
                index,
                child,
                stdin,
                lines,
            });
        }
        for worker in &mut started.workers {
            let line = worker.next_line("printing `listening on`", WORKER_READY_TIMEOUT)?;
            if !line.starts_with("listening on ") {
                return Err(WorkerError::BadAnswer {
                    index: worker.index,
                    pid: worker.pid(),
                    line,
                    reason: "expected `listening on IP:PORT`".into(),
                });
            }
        }
        Ok(started)
    }

    pub fn pids(&self) -> Vec<u32> {
        self.workers.iter().map(Worker::pid).collect()
    }

    /// Every worker's snapshot, in worker order. All are asked first, then
    /// all answers read, so the cuts are as close together as one round
    /// trip allows.
    pub fn snapshot(&mut self) -> Result<Vec<ServerReport>, WorkerError> {
        for worker in &mut self.workers {
            worker.send(ControlCommand::Snapshot)?;
        }
        let deadline = Instant::now() + WORKER_SNAPSHOT_TIMEOUT;
        self.workers
            .iter_mut()
            .map(|w| w.report("answering `snapshot`", remaining(deadline)))
            .collect()
    }

    /// Stops every worker (as on SIGTERM: flush, close, final report) and
    /// returns their final reports. A worker that does not stop in time is
    /// killed and reported as an error.
    pub fn stop(mut self) -> Result<Vec<ServerReport>, WorkerError> {
        for worker in &mut self.workers {
            // A worker already gone shows up when its report is read.
            let _ = worker.send(ControlCommand::Stop);
        }
        let deadline = Instant::now() + WORKER_STOP_TIMEOUT;
        let mut reports = Vec::with_capacity(self.workers.len());
        let mut first_error = None;
        for worker in &mut self.workers {
            match worker.report("printing its final report", remaining(deadline)) {
                Ok(report) => reports.push(report),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // Drop reaps every worker (killing any that is still there).
        match first_error {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // After `stop` the workers are exiting; a short grace lets them.
        let stopped_by_now = Instant::now() + Duration::from_secs(2);
        for worker in &mut self.workers {
            while Instant::now() < stopped_by_now {
                if matches!(worker.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = worker.child.kill();
            let _ = worker.child.wait();
        }
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
