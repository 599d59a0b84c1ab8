//! When a case's idle connections do not fit this process: the scale plan,
//! said up front, and the case the in-process engine drives instead (the
//! same case with only the idle connections it keeps).

use std::net::SocketAddr;

use crate::driver::scale::fleet::{self, Fleet};
use crate::driver::scale::plan::{self, ScaleInputs, ScalePlan};
use crate::results::measurement::ScaleOutcome;
use crate::results::workload::{Case, Shape};

use super::error::EngineError;

/// A case split between worker processes and this one.
pub(super) struct Split {
    pub(super) plan: ScalePlan,
    pub(super) target: SocketAddr,
    /// What this process drives: the active set, idle ones it keeps.
    pub(super) engine_case: Case,
}

/// `None` when this process holds every connection of `case` (the usual
/// case, unchanged); otherwise the split, its plan line printed.
pub(super) fn split(case: &Case, target: SocketAddr) -> Result<Option<Split>, EngineError> {
    let Shape::IdleActive { idle_connections } = case.shape else {
        return Ok(None);
    };
    let io = |context| move |source| EngineError::Io { context, source };
    let (_, nofile_hard) = crate::sys::rlimit::nofile().map_err(io("reading RLIMIT_NOFILE"))?;
    let local_ports =
        local_ports().map_err(io("reading /proc/sys/net/ipv4/ip_local_port_range"))?;
    let plan = plan::plan(&ScaleInputs {
        active_connections: u64::from(case.connections),
        idle_connections: u64::from(idle_connections),
        nofile_hard,
        local_ports,
        server: None,
    })?;
    if plan.workers.is_empty() {
        return Ok(None);
    }
    eprintln!("{}: {}", case.label, plan.describe());
    let mut engine_case = case.clone();
    engine_case.shape = Shape::IdleActive {
        idle_connections: plan.idle_in_main as u32,
    };
    Ok(Some(Split {
        plan,
        target,
        engine_case,
    }))
}

impl Split {
    /// Starts the workers and waits until they hold their connections.
    pub(super) fn ramp(&self) -> Result<(Fleet, ScaleOutcome), EngineError> {
        let (fleet, outcome) =
            fleet::ramp(&self.plan, self.target).map_err(|source| EngineError::Io {
                context: "starting the driver worker processes",
                source,
            })?;
        eprintln!(
            "{}: workers hold {} of {} idle connections ({:.0} connections/s){}",
            self.engine_case.label,
            outcome.idle_connections_held,
            outcome.idle_connections_requested,
            outcome.connection_setup_rate_per_second,
            outcome
                .stopped_by
                .as_deref()
                .map(|reason| format!("; stopped: {reason}"))
                .unwrap_or_default()
        );
        Ok((fleet, outcome))
    }
}

/// `high - low + 1` of this machine's ephemeral port range.
fn local_ports() -> std::io::Result<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")?;
    plan::parse_port_range(&text)
        .map(|(low, high)| high - low + 1)
        .ok_or_else(|| {
            std::io::Error::other(format!("holds `{}`, not two port numbers", text.trim()))
        })
}
