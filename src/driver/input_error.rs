//! One error type for bad input files (profiles, traces): it names the file,
//! the line and column, and the field, so a user can fix the file without
//! reading the code. Rendered as `FILE:LINE:COLUMN: FIELD: MESSAGE`.

use std::path::{Path, PathBuf};

/// A problem at a known place in an input file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {field}: {message}", file.display())]
pub struct InputError {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Dotted path of the field, e.g. `shape.depth` or `size_bytes`.
    pub field: String,
    pub message: String,
}

impl InputError {
    /// An error at byte `offset` of `text` (the whole file).
    pub fn at_offset(
        file: &Path,
        text: &str,
        offset: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_column(text, offset);
        InputError {
            file: file.to_path_buf(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
/// Offsets past the end or inside a character are moved back to a valid
/// position, so a slightly-off span from a parser still maps somewhere sane.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_column(text, 9), (2, 3));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn display_names_file_line_and_field() {
        let error = InputError::at_offset(
            Path::new("profiles/x.toml"),
            "a = 1\nb = 2\n",
            10,
            "b",
            "too big",
        );
        assert_eq!(error.to_string(), "profiles/x.toml:2:5: b: too big");
    }
}
