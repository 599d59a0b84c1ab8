//! Output locations, checked before any work: the directory is created and
//! a probe file written to it and removed, so a path that cannot be written
//! is a usage error (naming the flag, the path and the OS reason) found
//! before anything is measured or computed, not after. The check leaves
//! nothing behind: directories it created are removed again (the writer
//! creates them when it has something to write), so a command that fails
//! later still writes nothing.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::UsageError;

/// Checks that `dir` (given with `flag`) is a directory this process can
/// write files in, creating it if needed.
pub fn check_dir(flag: &str, dir: &Path) -> Result<(), UsageError> {
    let refuse = |what: &str| UsageError(format!("{flag} {}: {what}", dir.display()));
    if dir.exists() && !dir.is_dir() {
        return Err(refuse("exists and is not a directory"));
    }
    try_writing_in(dir).map_err(|failure| match failure {
        Failure::Create(e) => refuse(&format!("cannot create the directory: {e}")),
        Failure::Write(e) => refuse(&format!("cannot write in the directory: {e}")),
    })
}

/// Checks that `file` (given with `flag`) can be written: it is not a
/// directory, and its directory exists (created if needed) and takes files.
pub fn check_file(flag: &str, file: &Path) -> Result<(), UsageError> {
    let refuse = |what: &str| UsageError(format!("{flag} {}: {what}", file.display()));
    if file.is_dir() {
        return Err(refuse("is a directory"));
    }
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if dir.exists() && !dir.is_dir() {
        return Err(refuse(&format!("{} is not a directory", dir.display())));
    }
    try_writing_in(dir).map_err(|failure| match failure {
        Failure::Create(e) => refuse(&format!(
            "cannot create the directory {}: {e}",
            dir.display()
        )),
        Failure::Write(e) => refuse(&format!("cannot write in {}: {e}", dir.display())),
    })
}

enum Failure {
    Create(io::Error),
    Write(io::Error),
}

/// Creates `dir` if needed, writes and removes a probe file in it, then
/// removes the directories this created.
fn try_writing_in(dir: &Path) -> Result<(), Failure> {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    let result = std::fs::create_dir_all(dir)
        .map_err(Failure::Create)
        .and_then(|()| probe(dir).map_err(Failure::Write));
    // Deepest first; one that is not empty any more (someone else wrote
    // there meanwhile) stays.
    for created in &missing {
        let _ = std::fs::remove_dir(created);
    }
    result
}

/// Writes a hidden file in `dir` and removes it.
fn probe(dir: &Path) -> io::Result<()> {
    let mut file = tempfile::Builder::new()
        .prefix(".write-probe-")
        .tempfile_in(dir)?;
    file.write_all(b"probe")?;
    file.as_file().sync_all()?;
    file.close()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn the_check_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        check_dir("--out", &root.path().join("a/b")).unwrap();
        check_file("--out", &root.path().join("c/d.md")).unwrap();
        assert_eq!(entries(root.path()), 0, "created directories stay");
        let existing = root.path().join("e");
        std::fs::create_dir(&existing).unwrap();
        check_dir("--out", &existing).unwrap();
        check_file("--out", &existing.join("f.md")).unwrap();
        assert!(existing.is_dir(), "an existing directory is kept");
        assert_eq!(entries(&existing), 0, "the probe file must be removed");
    }

    #[test]
    fn unwritable_locations_name_flag_path_and_reason() {
        let root = tempfile::tempdir().unwrap();
        let plain = root.path().join("plain");
        std::fs::write(&plain, "x").unwrap();

        let err = check_dir("--out", &plain).unwrap_err().0;
        assert!(
            err.starts_with("--out ") && err.contains("not a directory"),
            "{err}"
        );
        let under = plain.join("x");
        let err = check_dir("--out", &under).unwrap_err().0;
        assert!(
            err.starts_with(&format!("--out {}: cannot create", under.display())),
            "{err}"
        );
        assert_eq!(err.matches("os error").count(), 1, "{err}");

        let err = check_file("--out", &plain.join("y.md")).unwrap_err().0;
        assert!(err.starts_with("--out ") && err.contains("y.md"), "{err}");
        let err = check_file("--out", root.path()).unwrap_err().0;
        assert!(err.contains("is a directory"), "{err}");
    }
}
