//! `results.json`: the results file itself, compact (one line): a run's
//! per-window counters make a pretty-printed file several times larger,
//! and every reader (report, chart, compare, the notebook, `jq .`) parses it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::{ExportError, Exporter, write_atomically};
use crate::results::{COMPRESSED_RESULTS_FILE_NAME, RESULTS_FILE_NAME, ResultsFile};

pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn file_name(&self) -> &'static str {
        RESULTS_FILE_NAME
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

/// Replaces `dir`'s `results.json` by its gzip-compressed
/// `results.json.gz` (written atomically first, so one of the two always
/// holds the results): a directory read compressed is written back so.
pub fn compress_results_file(dir: &Path) -> Result<PathBuf, ExportError> {
    let plain = dir.join(RESULTS_FILE_NAME);
    let compressed = dir.join(COMPRESSED_RESULTS_FILE_NAME);
    let io_error = |path: &Path| {
        let path = path.display().to_string();
        move |error| ExportError::Io { path, error }
    };
    let bytes = std::fs::read(&plain).map_err(io_error(&plain))?;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&bytes).map_err(io_error(&compressed))?;
    let gzipped = encoder.finish().map_err(io_error(&compressed))?;
    write_atomically(&compressed, &gzipped)?;
    std::fs::remove_file(&plain).map_err(io_error(&plain))?;
    Ok(compressed)
}
