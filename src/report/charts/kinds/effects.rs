//! `effects-*`: the chart to paste into a review. Per case, every
//! comparison's ratio B/A with its 95% interval ([`crate::results::effects`]),
//! one panel per figure, server CPU per request first; a line at 1 marks no
//! difference, and colour says whether B is better, worse, or neither
//! beyond the interval.

use plotters::style::RGBColor;

use super::{ChartKind, ProfileCases, case_caption, file_stem};
use crate::report::charts::draw::{
    EffectPanel, EffectRow, LegendKey, effect_panel_height, effect_text_widths,
};
use crate::report::charts::style::{OKABE_ITO, OTHER_GREY};
use crate::report::charts::{Chart, ChartPlan, Panel};
use crate::results::effects::{
    CONFIDENCE_PERCENT, Effect, case_effects, effect_figures, figure_phrase,
};
use crate::results::figures::Better;

pub struct Effects;

const B_BETTER: RGBColor = OKABE_ITO[0];
const B_WORSE: RGBColor = OKABE_ITO[3];
const NEITHER: RGBColor = OTHER_GREY;

/// `+4.1%`: a ratio as a signed change.
fn change(ratio: f64) -> String {
    let percent = (ratio - 1.0) * 100.0;
    let sign = if percent < 0.0 { "−" } else { "+" };
    let magnitude = percent.abs();
    if magnitude >= 100.0 {
        format!("{sign}{magnitude:.0}%")
    } else {
        format!("{sign}{magnitude:.1}%")
    }
}

fn row(effect: &Effect, better: Better) -> EffectRow {
    let label = effect.comparison.name();
    let Some(interval) = effect.interval else {
        return EffectRow {
            label,
            interval: None,
            color: NEITHER,
            note: "not enough data".into(),
        };
    };
    EffectRow {
        label,
        interval: Some((interval.ratio, interval.ci_low, interval.ci_high)),
        color: match interval.b_is_better(better) {
            Some(true) => B_BETTER,
            Some(false) => B_WORSE,
            None => NEITHER,
        },
        note: format!(
            "{} ({} … {})",
            change(interval.ratio),
            change(interval.ci_low),
            change(interval.ci_high)
        ),
    }
}

impl ChartKind for Effects {
    fn file_prefix(&self) -> &'static str {
        "effects"
    }

    fn plan_profile(&self, input: &ProfileCases, plan: &mut ChartPlan) {
        for case in input.cases {
            let effects = case_effects(case);
            if effects.is_empty() {
                plan.notes.push(format!(
                    "case `{}`: no effects chart, no two variants to compare",
                    case.label
                ));
                continue;
            }
            let panels: Vec<EffectPanel> = effect_figures(&case.case.shape)
                .into_iter()
                .map(|(figure, _)| {
                    let better = figure.better.expect("effect figures have a direction");
                    EffectPanel {
                        caption: format!(
                            "{} — {} is better",
                            figure_phrase(figure),
                            match better {
                                Better::Lower => "lower",
                                Better::Higher => "higher",
                            }
                        ),
                        x_desc: "B / A (log scale; 1× = no difference)".into(),
                        rows: effects
                            .iter()
                            .filter(|e| e.figure == figure.name)
                            .map(|e| row(e, better))
                            .collect(),
                    }
                })
                .collect();
            let rows = panels.iter().map(|p| p.rows.len()).max().unwrap_or(1);
            let (label_w, note_w) = panels
                .iter()
                .map(|p| effect_text_widths(&p.rows))
                .fold((0, 0), |(a, b), (c, d)| (a.max(c), b.max(d)));
            let repetitions = effects
                .iter()
                .filter_map(|e| e.interval)
                .map(|i| i.repetitions)
                .max()
                .unwrap_or(0);
            let mut footer: Vec<String> = input
                .footer
                .iter()
                .filter(|l| !l.starts_with("Lines and bars"))
                .cloned()
                .collect();
            footer.insert(
                2.min(footer.len()),
                format!(
                    "Points: B/A, ratio of geometric means over up to {repetitions} repetitions paired by index; whiskers: {CONFIDENCE_PERCENT:.0}% t interval."
                ),
            );
            plan.charts.push(Chart {
                file_stem: file_stem(self, &case.label),
                title: format!(
                    "Effects, B / A with {CONFIDENCE_PERCENT:.0}% intervals — {}",
                    case_caption(case)
                ),
                legend: vec![
                    ("B better than A".into(), LegendKey::Swatch(B_BETTER)),
                    ("B worse than A".into(), LegendKey::Swatch(B_WORSE)),
                    (
                        "no difference beyond the interval, or no data".into(),
                        LegendKey::Swatch(NEITHER),
                    ),
                ],
                footer,
                columns: 1,
                panel_width_px: (label_w + note_w) as u32 + 560,
                panel_height_px: effect_panel_height(rows),
                panels: panels.into_iter().map(Panel::Effects).collect(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_signed_percentages() {
        assert_eq!(change(1.041), "+4.1%");
        assert_eq!(change(0.6), "−40.0%");
        assert_eq!(change(2.5), "+150%");
    }
}
