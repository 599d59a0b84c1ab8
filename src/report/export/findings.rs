//! `findings.md`: the claims of [`crate::report::findings`], as one of a
//! results directory's files.

use super::{ExportError, Exporter};
use crate::report::findings::findings_markdown;
use crate::results::ResultsFile;

pub struct FindingsExporter;

impl Exporter for FindingsExporter {
    fn file_name(&self) -> &'static str {
        "findings.md"
    }

    fn render(&self, results: &ResultsFile) -> Result<Vec<u8>, ExportError> {
        Ok(findings_markdown(results).into_bytes())
    }
}
