//! Two variant results of one case set side by side in one figure: both
//! medians and the interval of B/A over the rounds both passed
//! (`effects::paired_by_round`), for findings that compare variants no
//! effects axis pairs (thread per connection against the best epoll
//! variant, a file strategy against read+write, zerocopy against writev).

use crate::results::effects::{RatioInterval, RepetitionFigures, paired_by_round};
use crate::results::figures::{FIGURES, Figure};
use crate::results::{CaseResult, Status, Summary, VariantResult};
use crate::server::variant::{Backend, Variant};

use super::{SERVER_CPU, ratio_text};

pub(super) fn figure(name: &str) -> &'static Figure {
    FIGURES
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("figure `{name}` is not in the registry"))
}

/// The result of built-in variant `v` in `case`, if the case ran it.
pub(super) fn result_of(case: &CaseResult, v: Variant) -> Option<&VariantResult> {
    case.variants
        .iter()
        .find(|r| r.variant.builtin() == Some(v))
}

pub(super) fn passed_summary(result: &VariantResult) -> Option<&Summary> {
    result
        .summary
        .as_ref()
        .filter(|_| result.status == Status::Passed)
}

/// Why a result gives no figures, when it failed.
pub(super) fn failed(result: &VariantResult) -> Option<String> {
    passed_summary(result).is_none().then(|| {
        format!(
            "{} failed ({})",
            result.variant,
            result.failure_reasons.join("; ")
        )
    })
}

/// The passed epoll variant of `case` with the least median server CPU per
/// request: what "the best epoll variant" means in the findings.
pub(super) fn best_epoll(case: &CaseResult) -> Option<(Variant, &VariantResult)> {
    let cpu = figure(SERVER_CPU);
    case.variants
        .iter()
        .filter_map(|r| {
            let v = r.variant.builtin()?;
            let median = (cpu.pick)(passed_summary(r)?)?.median;
            matches!(v.backend, Backend::Epoll(_)).then_some((v, r, median))
        })
        .min_by(|a, b| a.2.total_cmp(&b.2))
        .map(|(v, r, _)| (v, r))
}

/// One figure of A and B: their medians over passed repetitions and the
/// interval of B/A paired by round, or why there is none.
pub(super) struct Paired {
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub interval: Result<RatioInterval, String>,
}

impl Paired {
    pub fn of(a: &VariantResult, b: &VariantResult, name: &str) -> Paired {
        let figure = figure(name);
        let median = |r: &VariantResult| passed_summary(r).and_then(figure.pick).map(|s| s.median);
        let values = |r: &VariantResult| RepetitionFigures::of(r).values(figure);
        Paired {
            a: median(a),
            b: median(b),
            interval: paired_by_round(&values(a), &values(b)),
        }
    }

    pub fn interval(&self) -> Option<&RatioInterval> {
        self.interval.as_ref().ok()
    }

    /// `what B against A, ratio (95% CI …)`, with `digits` decimals.
    pub fn text(&self, what: &str, digits: usize) -> String {
        let median =
            |m: Option<f64>| m.map_or("not measured".to_string(), |m| format!("{m:.digits$}"));
        let interval = match &self.interval {
            Ok(i) => ratio_text(Some(i)),
            Err(why) => format!("no interval ({why})"),
        };
        format!(
            "{what} {} against {}, {interval}",
            median(self.b),
            median(self.a)
        )
    }
}
