//! Parsing of numbers with units from flags and files: byte counts
//! (`64KiB`), CPU lists (`0-1,4`), and the range-checked value parser every
//! numeric flag uses.
//!
//! A leaf module: it imports nothing from the crate, so any layer can parse
//! with it (the `cli` pipeline only renders its [`OutOfRange`] errors).

#![forbid(unsafe_code)]

use std::fmt::Display;
use std::ops::{Bound, RangeBounds};
use std::str::FromStr;

/// A type a numeric flag parses into with [`number`].
pub trait Number: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static {
    /// Whole numbers only (and then the type's limits are part of the rule).
    const WHOLE: bool;
    const LOWEST: Self;
    const HIGHEST: Self;
}

macro_rules! whole_number {
    ($($t:ty),*) => {$(
        impl Number for $t {
            const WHOLE: bool = true;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
        }
    )*};
}
whole_number!(u32, u64, usize);

impl Number for f64 {
    const WHOLE: bool = false;
    const LOWEST: Self = f64::MIN;
    const HIGHEST: Self = f64::MAX;
}

/// A numeric flag's value outside what it accepts (or not a number); the
/// text is the rule, e.g. `must be a number > 0`. The parse error shows it
/// after the flag and the value.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("must be {0}")]
pub struct OutOfRange(String);

/// The value parser of every numeric flag: accepts `T` within `range`
/// (`unit` names what is counted, e.g. `seconds`, or is empty), and
/// refuses anything else, negative numbers included, with the rule.
pub fn number<T: Number>(
    range: impl RangeBounds<T>,
    unit: &'static str,
) -> impl Fn(&str) -> Result<T, OutOfRange> + Clone + Send + Sync + 'static {
    let (low, high) = (range.start_bound().cloned(), range.end_bound().cloned());
    move |text: &str| {
        let refuse = || OutOfRange(describe_range(low, high, unit));
        let value: T = text.trim().parse().map_err(|_| refuse())?;
        // Written so that NaN fails every comparison; infinities fail the
        // type's limits.
        let above_low = match low {
            Bound::Included(min) => value >= min,
            Bound::Excluded(min) => value > min,
            Bound::Unbounded => value >= T::LOWEST,
        };
        let below_high = match high {
            Bound::Included(max) => value <= max,
            Bound::Excluded(max) => value < max,
            Bound::Unbounded => value <= T::HIGHEST,
        };
        if above_low && below_high {
            Ok(value)
        } else {
            Err(refuse())
        }
    }
}

fn describe_range<T: Number>(low: Bound<T>, high: Bound<T>, unit: &str) -> String {
    let what = match (T::WHOLE, unit) {
        (true, "") => "a whole number".to_string(),
        (true, unit) => format!("a whole number of {unit}"),
        (false, "") => "a number".to_string(),
        (false, unit) => format!("a number of {unit}"),
    };
    // A whole number's type limit is stated only below: the lowest is the
    // rule a negative value breaks, while `≤ 18446744073709551615` says
    // nothing a user needs.
    let low = match low {
        Bound::Unbounded if T::WHOLE => Bound::Included(T::LOWEST),
        bound => bound,
    };
    match (low, high) {
        (Bound::Included(min), Bound::Included(max)) if T::WHOLE => {
            format!("{what} from {min} to {max}")
        }
        (low, high) => describe_limits(what, low, high),
    }
}

fn describe_limits<T: Number>(what: String, low: Bound<T>, high: Bound<T>) -> String {
    let low = match low {
        Bound::Included(min) => Some(format!("≥ {min}")),
        Bound::Excluded(min) => Some(format!("> {min}")),
        Bound::Unbounded => None,
    };
    let high = match high {
        Bound::Included(max) => Some(format!("≤ {max}")),
        Bound::Excluded(max) => Some(format!("< {max}")),
        Bound::Unbounded => None,
    };
    match (low, high) {
        (Some(low), Some(high)) => format!("{what} {low} and {high}"),
        (Some(limit), None) | (None, Some(limit)) => format!("{what} {limit}"),
        (None, None) => what,
    }
}

/// Parses a byte count: `65536`, `64k`, `64KiB`, `16M`, `1MiB`, `1G`
/// (binary multiples).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!(
            "`{text}`: a byte count cannot be negative (e.g. 65536, 64KiB, 16MiB)"
        ));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a byte count (e.g. 65536, 64KiB, 16MiB)"))?;
    let multiplier: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{suffix}` (use KiB, MiB or GiB)"
            ));
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses a CPU list: `0`, `0,2`, `0-3`, `0-1,4`.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim) {
        let bad = || format!("`{text}` is not a CPU list (e.g. 0, 0-1, 0,2)");
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (usize, usize) =
                (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a > b {
                return Err(bad());
            }
            cpus.extend(a..=b);
        } else {
            cpus.push(part.parse().map_err(|_| bad())?);
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("64k"), Ok(65536));
        assert_eq!(parse_bytes("16MiB"), Ok(16 << 20));
        assert!(
            parse_bytes("12parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            parse_bytes("lots")
                .unwrap_err()
                .contains("not a byte count")
        );
        assert!(
            parse_bytes("99999999999999G")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn negative_byte_counts_say_so() {
        assert!(
            parse_bytes("-1")
                .unwrap_err()
                .contains("cannot be negative")
        );
    }

    #[test]
    fn numbers_outside_their_range_get_the_rule() {
        let repetitions = number(1u32.., "");
        assert_eq!(repetitions("3"), Ok(3));
        for bad in ["0", "-1", "1.5", "x", "4294967296"] {
            assert_eq!(
                repetitions(bad).unwrap_err().to_string(),
                "must be a whole number ≥ 1",
                "{bad}"
            );
        }
        let rate = number((Bound::Excluded(0.0), Bound::Unbounded), "");
        assert_eq!(rate("2.5"), Ok(2.5));
        for bad in ["0", "-10", "NaN", "inf", "-inf"] {
            assert_eq!(
                rate(bad).unwrap_err().to_string(),
                "must be a number > 0",
                "{bad}"
            );
        }
        let seconds = number((Bound::Excluded(0.0), Bound::Included(1e6)), "seconds");
        assert_eq!(seconds("1000000"), Ok(1e6));
        assert_eq!(
            seconds("1000001").unwrap_err().to_string(),
            "must be a number of seconds > 0 and ≤ 1000000"
        );
        assert_eq!(number(0.01.., "seconds")("0.01"), Ok(0.01));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Ok(vec![0]));
        assert_eq!(parse_cpu_list("2,0-1"), Ok(vec![0, 1, 2]));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }
}
