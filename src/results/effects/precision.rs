//! How precisely a case's headline effects are known: what `run
//! --precision` compares with its target.

use super::Effect;

/// How precisely a case's headline effects are known.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadlinePrecision {
    /// The widest interval half-width among headline effects with an
    /// interval, percent, with the effect's comparison and figure.
    pub widest_half_width_percent: Option<f64>,
    pub widest: Option<(String, &'static str)>,
    /// Headline effects without an interval: `(comparison, figure)`.
    pub without_interval: Vec<(String, &'static str)>,
}

/// The widest CI half-width over `effects`' headline effects (one case's,
/// as [`case_effects`] returns them), for a precision target.
pub fn headline_precision(effects: &[Effect]) -> HeadlinePrecision {
    let mut out = HeadlinePrecision::default();
    for effect in effects.iter().filter(|e| e.headline) {
        let id = (effect.comparison.name(), effect.figure);
        match &effect.interval {
            Some(i) if out.widest_half_width_percent < Some(i.ci_half_width_percent) => {
                out.widest_half_width_percent = Some(i.ci_half_width_percent);
                out.widest = Some(id);
            }
            Some(_) => {}
            None => out.without_interval.push(id),
        }
    }
    out
}
