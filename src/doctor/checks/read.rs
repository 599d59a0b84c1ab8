//! Reading settings under the root folder, and the process facts the
//! checks need.

use std::path::Path;

pub(super) fn read(root: &Path, relative: &str) -> Result<String, String> {
    let path = root.join(relative);
    std::fs::read_to_string(&path)
        .map(|text| text.trim().to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub(super) fn read_number(root: &Path, relative: &str) -> Result<i64, String> {
    let text = read(root, relative)?;
    text.parse::<i64>().map_err(|_| {
        format!(
            "{} holds `{text}`, not a number",
            root.join(relative).display()
        )
    })
}

pub(in crate::doctor) fn effective_uid_from_status(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_uid_field() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid_from_status(status), Some(0));
        assert_eq!(effective_uid_from_status("Name:\tx\n"), None);
    }
}
