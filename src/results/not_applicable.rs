//! (case, variant) pairs a run leaves out because the variant does not
//! speak the case's protocol (e.g. a frame-only copy strategy and a
//! file-protocol case): recorded so a reader sees they were not forgotten,
//! and never counted as failures.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::server::VariantName;

/// One (case, variant) pair left out of a run's plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotApplicable {
    /// The case's label.
    pub case: String,
    pub variant: VariantName,
    /// Why, e.g. `lt-rw does not serve the file protocol`.
    pub reason: String,
}

/// The pairs grouped by reason, in first-seen order, each with the labels
/// of its cases: one line per variant in a summary, however many cases a
/// sweep has.
pub fn by_reason(entries: &[NotApplicable]) -> Vec<(&str, Vec<&str>)> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for entry in entries {
        match groups
            .iter_mut()
            .find(|(reason, _)| *reason == entry.reason)
        {
            Some((_, cases)) => cases.push(&entry.case),
            None => groups.push((&entry.reason, vec![&entry.case])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_group_by_reason_in_order() {
        let entry = |case: &str, variant: &str| NotApplicable {
            case: case.into(),
            variant: variant.into(),
            reason: format!("{variant} does not serve the file protocol"),
        };
        let entries = [
            entry("file-size-sweep/4096B", "lt-rw"),
            entry("file-size-sweep/4096B", "et-rw"),
            entry("file-size-sweep/16384B", "lt-rw"),
        ];
        assert_eq!(
            by_reason(&entries),
            vec![
                (
                    "lt-rw does not serve the file protocol",
                    vec!["file-size-sweep/4096B", "file-size-sweep/16384B"]
                ),
                (
                    "et-rw does not serve the file protocol",
                    vec!["file-size-sweep/4096B"]
                ),
            ]
        );
    }
}
