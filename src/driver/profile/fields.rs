//! The [`Expander`] and its typed field checks: ranges, required and unused
//! fields, sweep lists. Every error names the file, line, column and field.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::driver::input_error::InputError;
use crate::driver::profile::limits::MAX_SWEEP_POINTS;

/// Checks a deserialised profile against the rules `docs/profiles.md`
/// states; `text` and `file` let every error point at the offending value.
pub(super) struct Expander<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a Path,
    /// The hard RLIMIT_NOFILE every case's connections must fit in; `None`
    /// checks the profile alone, whatever machine it will run on.
    pub(super) nofile_hard_limit: Option<u64>,
}

impl Expander<'_> {
    pub(super) fn error(
        &self,
        span: Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> InputError {
        InputError::at_offset(self.file, self.text, span.start, field, message)
    }

    /// An integer field in `low..=high`.
    pub(super) fn int_in<T>(
        &self,
        value: &Spanned<i64>,
        field: &str,
        low: T,
        high: T,
    ) -> Result<T, InputError>
    where
        T: TryFrom<i64> + Into<u64> + Copy + std::fmt::Display,
    {
        let got = *value.get_ref();
        match T::try_from(got) {
            Ok(converted) if converted.into() >= low.into() && converted.into() <= high.into() => {
                Ok(converted)
            }
            _ => Err(self.error(
                value.span(),
                field,
                format!("must be between {low} and {high}, got {got}"),
            )),
        }
    }

    /// A float field in `(0, high]`.
    pub(super) fn positive_up_to(
        &self,
        value: &Spanned<f64>,
        field: &str,
        high: f64,
    ) -> Result<f64, InputError> {
        let got = *value.get_ref();
        if got.is_finite() && got > 0.0 && got <= high {
            Ok(got)
        } else {
            Err(self.error(
                value.span(),
                field,
                format!("must be greater than 0 and at most {high}, got {got}"),
            ))
        }
    }

    /// A field the chosen kind or distribution needs, in `low..=high`.
    pub(super) fn required_int_in<T>(
        &self,
        value: &Option<Spanned<i64>>,
        table_span: &Range<usize>,
        field: &str,
        why: &str,
        low: T,
        high: T,
    ) -> Result<T, InputError>
    where
        T: TryFrom<i64> + Into<u64> + Copy + std::fmt::Display,
    {
        self.int_in(
            self.required(value, table_span, field, why)?,
            field,
            low,
            high,
        )
    }

    pub(super) fn required<'v, T>(
        &self,
        value: &'v Option<Spanned<T>>,
        table_span: &Range<usize>,
        field: &str,
        why: &str,
    ) -> Result<&'v Spanned<T>, InputError> {
        value
            .as_ref()
            .ok_or_else(|| self.error(table_span.clone(), field, format!("missing ({why})")))
    }

    /// Rejects a field the chosen kind or distribution does not use.
    pub(super) fn unused<T>(
        &self,
        value: &Option<Spanned<T>>,
        field: &str,
        why: &str,
    ) -> Result<(), InputError> {
        match value {
            Some(value) => Err(self.error(value.span(), field, format!("not used {why}"))),
            None => Ok(()),
        }
    }

    /// Rejects every given parameter of table `table_name` not in `uses`.
    pub(super) fn reject_unused(
        &self,
        table_name: &str,
        given: &[(&'static str, Range<usize>)],
        uses: &[&str],
        why: &str,
    ) -> Result<(), InputError> {
        match given.iter().find(|(field, _)| !uses.contains(field)) {
            Some((field, span)) => Err(self.error(
                span.clone(),
                &format!("{table_name}.{field}"),
                format!("not used {why}"),
            )),
            None => Ok(()),
        }
    }

    /// A sweep of `length` points: 1 to [`MAX_SWEEP_POINTS`].
    pub(super) fn sweep_length(
        &self,
        length: usize,
        span: Range<usize>,
        field: &str,
        items: &str,
    ) -> Result<(), InputError> {
        if length == 0 || length > MAX_SWEEP_POINTS {
            return Err(self.error(
                span,
                field,
                format!("must list 1 to {MAX_SWEEP_POINTS} {items}, got {length}"),
            ));
        }
        Ok(())
    }

    /// A list of 1 to [`MAX_SWEEP_POINTS`] distinct integers in
    /// `1..=high` (a sweep), each error naming `field[index]`.
    pub(super) fn distinct_list(
        &self,
        list: &[Spanned<i64>],
        span: Range<usize>,
        field: &str,
        items: &str,
        high: u32,
    ) -> Result<Vec<u32>, InputError> {
        self.sweep_length(list.len(), span, field, items)?;
        let mut seen = HashSet::new();
        let mut values = Vec::new();
        for (index, item) in list.iter().enumerate() {
            let item_field = format!("{field}[{index}]");
            let value = self.int_in(item, &item_field, 1u32, high)?;
            if !seen.insert(value) {
                return Err(self.error(
                    item.span(),
                    &item_field,
                    format!("{value} is listed twice"),
                ));
            }
            values.push(value);
        }
        Ok(values)
    }
}
