//! Output locations, checked before any work: a directory is created and a
//! probe file written to it and removed, so a path that cannot be written
//! is a usage error (naming the flag, the path and the OS reason) found
//! before anything is measured or computed, not after.

use std::io::Write;
use std::path::Path;

use crate::cli::UsageError;

/// Checks that `dir` (given with `flag`) is a directory this process can
/// write files in, creating it if needed.
pub fn check_dir(flag: &str, dir: &Path) -> Result<(), UsageError> {
    let refuse = |what: &str| UsageError(format!("{flag} {}: {what}", dir.display()));
    if dir.exists() && !dir.is_dir() {
        return Err(refuse("exists and is not a directory"));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| refuse(&format!("cannot create the directory: {e}")))?;
    probe(dir).map_err(|e| refuse(&format!("cannot write in the directory: {e}")))
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
    std::fs::create_dir_all(dir).map_err(|e| {
        refuse(&format!(
            "cannot create the directory {}: {e}",
            dir.display()
        ))
    })?;
    probe(dir).map_err(|e| refuse(&format!("cannot write in {}: {e}", dir.display())))
}

/// Writes a hidden file in `dir` and removes it.
fn probe(dir: &Path) -> std::io::Result<()> {
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
    fn a_new_directory_is_created_and_left_empty() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        check_dir("--out", &dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(entries(&dir), 0, "the probe file must be removed");
        let file = root.path().join("c/d.md");
        check_file("--out", &file).unwrap();
        assert!(file.parent().unwrap().is_dir() && !file.exists());
        assert_eq!(entries(file.parent().unwrap()), 0);
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
