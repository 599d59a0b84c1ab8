//! `results.json`: the results file itself, compact (one line): a run's
//! per-window counters make a pretty-printed file several times larger,
//! and every reader (report, chart, compare, the notebook, `jq .`) parses it.

use super::{ExportError, Exporter};
use crate::results::ResultsFile;

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn file_name(&self) -> &'static str {
        "results.json"
    }

    fn render(&self, results: &ResultsFile) -> Result<Vec<u8>, ExportError> {
        let mut bytes = serde_json::to_vec(results).map_err(|e| ExportError::Render {
            exporter: "json",
            message: e.to_string(),
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
