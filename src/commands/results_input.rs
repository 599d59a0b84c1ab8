//! Reading the results a report command was pointed at: a results
//! directory, a `results.json` or a `results.json.gz`. Unreadable or invalid input is a usage
//! error naming the file.

use std::path::{Path, PathBuf};

use crate::error::UsageError;
use crate::results::{ResultsFile, results_file_in};

/// The results file and the directory it belongs to.
pub struct LoadedResults {
    pub results: ResultsFile,
    /// The results file that was read (`.gz` when compressed).
    pub file: PathBuf,
    /// Its directory: where derived files (charts, summary.md) go.
    pub dir: PathBuf,
}

pub fn load(path: &Path) -> anyhow::Result<LoadedResults> {
    let file = if path.is_dir() {
        results_file_in(path)
    } else {
        path.to_path_buf()
    };
    if !file.exists() {
        return Err(UsageError(if path.is_dir() {
            format!(
                "{}: no results.json or results.json.gz in this directory (give a results \
                 directory or a results file)",
                path.display()
            )
        } else {
            format!("{}: no such results file or directory", path.display())
        })
        .into());
    }
    let results = ResultsFile::load(&file).map_err(|e| UsageError(e.to_string()))?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(LoadedResults { results, file, dir })
}
