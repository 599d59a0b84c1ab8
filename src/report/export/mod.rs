//! Exporters: each turns a [`ResultsFile`] into one file of a results
//! directory. They only read results (they never measure), all implement
//! [`Exporter`], and [`export_all`] writes their output atomically: every
//! file is rendered in memory first, and nothing is written when the
//! results are invalid or any exporter fails.

pub(crate) mod cells;
mod cpu_profile;
pub mod csv;
pub mod findings;
pub mod json;
pub mod markdown;
mod run_notes;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::results::ResultsFile;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("refusing to export invalid results: {0}")]
    Invalid(String),
    #[error("{exporter} exporter: {message}")]
    Render {
        exporter: &'static str,
        message: String,
    },
    /// Shows the I/O error itself rather than returning it as its source:
    /// error chains would print it twice.
    #[error("cannot write {path}: {error}")]
    Io { path: String, error: std::io::Error },
}

/// One output format.
pub trait Exporter {
    /// File name inside the results directory, e.g. `results.csv`.
    fn file_name(&self) -> &'static str;
    fn render(&self, results: &ResultsFile) -> Result<Vec<u8>, ExportError>;
}

/// results.json, results.csv, summary.md and findings.md.
pub fn default_exporters() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::JsonExporter),
        Box::new(csv::CsvExporter),
        Box::new(markdown::MarkdownExporter),
        Box::new(findings::FindingsExporter),
    ]
}

/// Validates `results`, renders every exporter, then writes each file
/// atomically into `dir` (created if needed). Returns the written paths.
pub fn export_all(
    dir: &Path,
    results: &ResultsFile,
    exporters: &[Box<dyn Exporter>],
) -> Result<Vec<PathBuf>, ExportError> {
    results.validate().map_err(ExportError::Invalid)?;
    let rendered = exporters
        .iter()
        .map(|e| Ok((dir.join(e.file_name()), e.render(results)?)))
        .collect::<Result<Vec<_>, ExportError>>()?;
    std::fs::create_dir_all(dir).map_err(|error| ExportError::Io {
        path: dir.display().to_string(),
        error,
    })?;
    for (path, bytes) in &rendered {
        write_atomically(path, bytes)?;
    }
    Ok(rendered.into_iter().map(|(path, _)| path).collect())
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and
/// renames it over `path`: readers see the old file or the whole new one,
/// never a partial one. On error the temporary file is removed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    write_file_atomically(path, bytes).map_err(|error| ExportError::Io {
        path: path.display().to_string(),
        error,
    })
}

/// [`write_atomically`] for callers with their own error type, which name
/// `path` themselves.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    struct Failing;
    impl Exporter for Failing {
        fn file_name(&self) -> &'static str {
            "never.txt"
        }
        fn render(&self, _: &ResultsFile) -> Result<Vec<u8>, ExportError> {
            Err(ExportError::Render {
                exporter: "failing",
                message: "on purpose".into(),
            })
        }
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_every_file_and_they_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let written = export_all(&out, &fixture::results(), &default_exporters()).unwrap();
        assert_eq!(written.len(), 4);
        assert_eq!(
            listing(&out),
            ["findings.md", "results.csv", "results.json", "summary.md"]
        );
        let back = ResultsFile::load(&out).unwrap();
        assert_eq!(back.cases.len(), 2);
    }

    #[test]
    fn a_failing_exporter_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let exporters: Vec<Box<dyn Exporter>> =
            vec![Box::new(json::JsonExporter), Box::new(Failing)];
        let err = export_all(&out, &fixture::results(), &exporters).unwrap_err();
        assert!(err.to_string().contains("on purpose"));
        assert!(!out.exists(), "the directory must not even be created");
    }

    #[test]
    fn invalid_results_write_nothing_and_keep_old_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("results.json"), "old").unwrap();
        let mut results = fixture::results();
        results.run.passed_count += 1;
        let err = export_all(dir.path(), &results, &default_exporters()).unwrap_err();
        assert!(matches!(err, ExportError::Invalid(_)), "{err}");
        assert_eq!(listing(dir.path()), ["results.json"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("results.json")).unwrap(),
            "old"
        );
    }

    #[test]
    fn failed_atomic_write_leaves_no_partial_or_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails after the data was
        // written to the temporary file.
        let target = dir.path().join("results.json");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        let err = write_atomically(&target, b"{}").unwrap_err();
        assert!(matches!(err, ExportError::Io { .. }), "{err}");
        // Path and reason once each, also as a command prints the chain.
        let expected = format!(
            "cannot write {}: {}",
            target.display(),
            std::io::Error::from_raw_os_error(21)
        );
        assert_eq!(err.to_string(), expected);
        assert_eq!(format!("{:#}", anyhow::Error::new(err)), expected);
        assert_eq!(listing(dir.path()), ["results.json"]);
        assert!(target.is_dir());

        let file = dir.path().join("summary.md");
        write_atomically(&file, b"first").unwrap();
        write_atomically(&file, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "second");
        assert_eq!(listing(dir.path()), ["results.json", "summary.md"]);
    }
}
