//! The [`Finding`] a check returns, built the same way by every check.

use crate::doctor::{Finding, Status};

pub(super) fn finding(
    check: &str,
    status: Status,
    observed: impl Into<String>,
    message: impl Into<String>,
    why: &str,
    fix: Option<String>,
) -> Finding {
    Finding {
        check: check.to_string(),
        status,
        observed: observed.into(),
        message: message.into(),
        why: why.to_string(),
        fix: if status == Status::Ok { None } else { fix },
    }
}

/// A check whose file could not be read or parsed: a warning, since the
/// doctor cannot vouch for the setting.
pub(super) fn unreadable(check: &str, reason: String, why: &str) -> Finding {
    finding(check, Status::Warn, "unknown", reason, why, None)
}
