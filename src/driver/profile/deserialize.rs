//! TOML text into a [`RawProfile`], with syntax and type errors mapped back to
//! the file, line, column and dotted field name they are about.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use crate::driver::input_error::InputError;
use crate::driver::profile::raw::RawProfile;

pub(super) fn deserialize(text: &str, file: &Path) -> Result<RawProfile, InputError> {
    // Parse the document first: a syntax error gets its own message, and the
    // spanned tree maps later type errors back to the field they are in.
    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(error) => {
            let offset = error.span().map_or(0, |span| span.start);
            return Err(InputError::at_offset(
                file,
                text,
                offset,
                "syntax",
                error.message().trim_end(),
            ));
        }
    };
    toml::from_str::<RawProfile>(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        // serde names Rust types; a profile author thinks in TOML ones.
        let message = error
            .message()
            .trim_end()
            .replace("expected i64", "expected an integer")
            .replace("expected f64", "expected a number");
        let field = match missing_field_name(&message) {
            // A missing field's span is the table it is missing from.
            Some(missing) => match table_path_with_span(document.get_ref(), &span, "") {
                Some(table) => format!("{table}.{missing}"),
                None => missing.to_string(),
            },
            None => {
                field_at(document.get_ref(), &span, "").unwrap_or_else(|| "profile".to_string())
            }
        };
        InputError::at_offset(file, text, span.start, field, message)
    })
}

/// `x` from serde's "missing field `x`".
fn missing_field_name(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

fn join_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Dotted path of the innermost key whose key or value covers `span`.
/// Tables are always searched: a `[table]` section's value span is only its
/// header, not the keys below it.
fn field_at(table: &DeTable<'_>, span: &Range<usize>, prefix: &str) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let path = join_path(prefix, key.get_ref());
        if covers(&key.span(), span) {
            return Some(path);
        }
        if let Some(inner) = value_field_at(value.get_ref(), span, &path) {
            return Some(inner);
        }
        covers(&value.span(), span).then_some(path)
    })
}

fn value_field_at(value: &DeValue<'_>, span: &Range<usize>, path: &str) -> Option<String> {
    match value {
        DeValue::Table(table) => field_at(table, span, path),
        DeValue::Array(array) => array.iter().enumerate().find_map(|(index, element)| {
            let element_path = format!("{path}[{index}]");
            value_field_at(element.get_ref(), span, &element_path)
                .or_else(|| covers(&element.span(), span).then_some(element_path))
        }),
        _ => None,
    }
}

/// Dotted path of the table whose span is exactly `span`.
fn table_path_with_span(table: &DeTable<'_>, span: &Range<usize>, prefix: &str) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let DeValue::Table(inner) = value.get_ref() else {
            return None;
        };
        let path = join_path(prefix, key.get_ref());
        if value.span() == *span {
            Some(path)
        } else {
            table_path_with_span(inner, span, &path)
        }
    })
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end.max(outer.start + 1)
}
