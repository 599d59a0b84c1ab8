//! What `epoll-bench doctor` found, as recorded in a results' environment
//! block. The doctor produces it; results store it, so a reviewer sees what
//! the machine looked like when the figures were taken.

use serde::{Deserialize, Serialize};

/// How a check came out, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Not what limits the results.
    Ok,
    /// Results are valid but noisier, or a cross-check is lost.
    Warn,
    /// Runs at the requested size will fail or measure the machine's limit.
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The setting checked, by its usual name (`net.core.somaxconn`).
    pub check: String,
    pub status: Status,
    /// The value found, as read.
    pub observed: String,
    /// What that value means for the requested run.
    pub message: String,
    /// Why this setting matters for this benchmark.
    pub why: String,
    /// The command that fixes it; `None` when the status is OK or nothing
    /// run on this machine can fix it.
    pub fix: Option<String>,
}

/// Everything the doctor found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    pub connections: u64,
    pub pipe_size_bytes: u64,
    /// The folder settings were read under (`/` on a real run).
    pub root: String,
    pub ok_count: usize,
    pub warn_count: usize,
    pub fail_count: usize,
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    /// The worst status of any finding.
    pub fn worst(&self) -> Status {
        self.findings
            .iter()
            .map(|f| f.status)
            .max()
            .unwrap_or(Status::Ok)
    }

    pub fn finding(&self, check: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }
}
