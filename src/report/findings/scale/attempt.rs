//! The very large attempt (`c1m`: a million connections asked for): every
//! `idle_active` case whose ramp held fewer idle connections than it asked
//! for, or that asked for [`LARGE_ATTEMPT_IDLE`] or more. Each repetition
//! says how many were held of how many, the ramp's time and rate, what
//! stopped it (the driver's words), the memory per connection at the count
//! held, and whether the measurement passed; a failed repetition is stated
//! with its reasons, never left out.

use crate::results::measurement::ScaleOutcome;
use crate::results::{Repetition, Status};

use super::super::{Finding, Holds};
use super::{LARGE_ATTEMPT_IDLE, MemoryFigures, ScaleCase, thousands_u64};

fn short(o: &ScaleOutcome) -> bool {
    o.idle_connections_held < o.idle_connections_requested
}

pub(super) fn finding(cases: &[ScaleCase]) -> Finding {
    let attempts: Vec<&ScaleCase> = cases
        .iter()
        .filter(|c| {
            c.idle >= LARGE_ATTEMPT_IDLE
                || c.case
                    .variants
                    .iter()
                    .flat_map(|v| &v.repetitions)
                    .filter_map(Repetition::scale_out)
                    .any(short)
        })
        .collect();
    let claim = match attempts.as_slice() {
        [one] => format!(
            "the {}-connection attempt (`{}`) held every connection it asked for",
            thousands_u64(one.connections()),
            one.case.label
        ),
        _ => "every large or short connection ramp held every connection it asked for".to_string(),
    };
    if attempts.is_empty() {
        return Finding {
            claim,
            holds: Holds::NotMeasured,
            evidence: vec![format!(
                "no idle-active case asked for {} idle connections or more, and every ramp \
                 held what it asked for",
                thousands_u64(u64::from(LARGE_ATTEMPT_IDLE))
            )],
        };
    }
    let mut evidence = Vec::new();
    let (mut held_all, mut fell_short) = (false, false);
    for c in &attempts {
        for result in &c.case.variants {
            for r in &result.repetitions {
                let head = format!(
                    "{}, {}, repetition {} ({})",
                    c.heading(),
                    result.variant,
                    r.index,
                    r.purpose.name()
                );
                let outcome = match &r.failure {
                    _ if r.status != Status::Failed => "measurement passed".to_string(),
                    Some(f) => format!("measurement failed ({})", f.reasons.join("; ")),
                    None => "measurement failed (no reason recorded)".to_string(),
                };
                let Some(o) = r.scale_out() else {
                    evidence.push(if r.status == Status::Failed {
                        format!("{head}: {outcome}; no ramp figures recorded")
                    } else {
                        format!(
                            "{head}: {outcome}; the main process held every connection (no \
                             worker ramp recorded)"
                        )
                    });
                    continue;
                };
                if short(o) {
                    fell_short = true;
                } else {
                    held_all = true;
                }
                evidence.push(format!("{head}: {}; {outcome}", ramp_text(c, r, o)));
            }
            if result.repetitions.is_empty() {
                evidence.push(format!(
                    "{}, {}: no repetition finished ({})",
                    c.heading(),
                    result.variant,
                    result.failure_reasons.join("; ")
                ));
            }
        }
    }
    let holds = if fell_short {
        Holds::No
    } else if held_all {
        Holds::Yes
    } else {
        Holds::NotMeasured
    };
    Finding {
        claim,
        holds,
        evidence,
    }
}

fn ramp_text(c: &ScaleCase, r: &Repetition, o: &ScaleOutcome) -> String {
    let drops = match (o.listen_overflows_count, o.listen_drops_count) {
        (Some(overflows), Some(drops)) => {
            format!("listen queue overflows {overflows}, listen drops {drops}")
        }
        _ => "listen drops not read".to_string(),
    };
    let memory = r
        .server_memory
        .as_ref()
        .and_then(|m| m.whole.as_ref())
        .and_then(|w| MemoryFigures::over(&[w]))
        .map_or("memory per connection not measured".to_string(), |m| {
            format!(
                "at {} connections held: {}",
                thousands_u64(m.connections),
                m.text()
            )
        });
    format!(
        "held {} of {} idle connections (+{} active) from {} worker processes over {} source \
         addresses; ramp {:.1} s at {:.0} connections/s; {drops}; stopped by: {}; {memory}",
        thousands_u64(o.idle_connections_held),
        thousands_u64(o.idle_connections_requested),
        thousands_u64(u64::from(c.active)),
        o.worker_processes,
        o.source_addresses,
        o.ramp_seconds,
        o.connection_setup_rate_per_second,
        o.stopped_by
            .as_deref()
            .unwrap_or("nothing (every idle connection held)"),
    )
}
