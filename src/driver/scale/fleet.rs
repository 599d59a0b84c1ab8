//! The main process's side of scale-out: starts one `hold-idle` worker per
//! share of the plan, waits until each holds its connections (or says why
//! it stopped), and at the end closes their stdin so they close theirs.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Instant;

use super::netstat::ListenDrops;
use super::plan::ScalePlan;
use crate::results::measurement::ScaleOutcome;

/// The name of the hidden subcommand workers run.
pub const HOLD_SUBCOMMAND: &str = "hold-idle";

/// Running workers, each holding its idle connections.
pub struct Fleet {
    workers: Vec<(Child, BufReader<ChildStdout>)>,
}

/// Starts every worker of `plan` against `target` and waits for them:
/// the fleet (to close later) and what the ramp gave. A worker that could
/// not start or died is an error; one that stopped short is not (its
/// reason goes into the outcome).
pub fn ramp(plan: &ScalePlan, target: SocketAddr) -> std::io::Result<(Fleet, ScaleOutcome)> {
    let program = std::env::current_exe()?;
    let drops_before = ListenDrops::now();
    let started = Instant::now();
    let mut fleet = Fleet {
        workers: Vec::with_capacity(plan.workers.len()),
    };
    for share in &plan.workers {
        let mut command = Command::new(&program);
        command
            .arg(HOLD_SUBCOMMAND)
            .arg("--target")
            .arg(target.to_string());
        for (ip, count) in &share.sources {
            command.arg("--source").arg(format!("{ip}={count}"));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        fleet.workers.push((child, stdout));
    }
    let mut held = 0;
    let mut stopped_by = None;
    for (index, (_, stdout)) in fleet.workers.iter_mut().enumerate() {
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other(format!(
                    "driver worker {index} exited before saying how many connections it holds"
                )));
            }
            if let Some(reason) = line.trim_end().strip_prefix("stopped ") {
                stopped_by.get_or_insert_with(|| format!("worker {index}: {reason}"));
            } else if let Some(count) = line.trim_end().strip_prefix("held ") {
                held += count.parse::<u64>().map_err(|_| {
                    std::io::Error::other(format!("driver worker {index} said `{}`", line.trim()))
                })?;
                break;
            }
        }
    }
    let ramp_seconds = started.elapsed().as_secs_f64();
    let drops = drops_before
        .zip(ListenDrops::now())
        .map(|(before, after)| before.until(&after));
    let outcome = ScaleOutcome {
        worker_processes: plan.workers.len() as u64,
        source_addresses: plan.source_addresses,
        idle_connections_requested: plan.idle_in_workers(),
        idle_connections_held: held,
        ramp_seconds,
        connection_setup_rate_per_second: held as f64 / ramp_seconds.max(f64::MIN_POSITIVE),
        listen_overflows_count: drops.map(|d| d.listen_overflows),
        listen_drops_count: drops.map(|d| d.listen_drops),
        tcp_req_q_full_drops_count: drops.map(|d| d.req_queue_full_drops),
        stopped_by,
    };
    Ok((fleet, outcome))
}

impl Fleet {
    /// Closes every worker's stdin and waits for it to close its
    /// connections and exit: the count each reports closed, summed.
    pub fn close(mut self) -> std::io::Result<u64> {
        for (child, _) in &mut self.workers {
            drop(child.stdin.take());
        }
        let mut closed = 0;
        for (index, (mut child, mut stdout)) in self.workers.drain(..).enumerate() {
            let mut line = String::new();
            while stdout.read_line(&mut line)? > 0 {
                if let Some(count) = line.trim_end().strip_prefix("closed ") {
                    closed += count.parse::<u64>().unwrap_or(0);
                }
                line.clear();
            }
            let status = child.wait()?;
            if !status.success() {
                return Err(std::io::Error::other(format!(
                    "driver worker {index} exited with {status}"
                )));
            }
        }
        Ok(closed)
    }
}

impl Drop for Fleet {
    /// A fleet dropped on an error path still must not outlive the case:
    /// closing stdin makes each worker close its connections and exit.
    fn drop(&mut self) {
        for (child, _) in &mut self.workers {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}
