//! `compare A B`: two result sets side by side, for before/after a kernel
//! upgrade, another machine or a tuning change. For every case and variant
//! that passed in both, each figure the registry gives a compare label
//! ([`compared_figures`]) gets the ratio B/A with a confidence interval, and
//! a verdict only when the interval excludes 1.
//!
//! The method is the effects' ([`crate::results::effects`]): the ratio of
//! geometric means over repetitions and a t interval on the logs, here
//! unpaired ([`unpaired_interval`], Welch): the two runs' repetitions were
//! not measured together. Fewer than
//! [`MIN_REPETITIONS`] repetitions on a side give "not enough data".

use std::fmt::Write;

use crate::report::export::markdown::number;
use crate::results::effects::{
    CONFIDENCE_PERCENT, NotEnoughData, RatioInterval, RepetitionFigures, percent, unpaired_interval,
};
use crate::results::figures::compared_figures;
use crate::results::{ResultsFile, Spread};

pub use crate::results::effects::MIN_REPETITIONS;
pub use crate::results::figures::Better;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// B is better: the interval excludes 1 on the better side.
    Better,
    /// B is worse: the interval excludes 1 on the worse side.
    Worse,
    /// The interval contains 1.
    NoChange,
    /// Too few repetitions to tell.
    TooFewRepetitions,
}

impl Verdict {
    pub fn word(self, speed: bool) -> &'static str {
        match (self, speed) {
            (Verdict::Better, true) => "faster",
            (Verdict::Worse, true) => "slower",
            (Verdict::Better, false) => "cheaper",
            (Verdict::Worse, false) => "costlier",
            (Verdict::NoChange, _) => "no change",
            (Verdict::TooFewRepetitions, _) => "too few repetitions",
        }
    }
}

/// The verdict for an interval of B/A on a figure where `better` is
/// better.
pub fn verdict(interval: &Result<RatioInterval, NotEnoughData>, better: Better) -> Verdict {
    match interval {
        Err(_) => Verdict::TooFewRepetitions,
        Ok(i) => match i.b_is_better(better) {
            Some(true) => Verdict::Better,
            Some(false) => Verdict::Worse,
            None => Verdict::NoChange,
        },
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub case: String,
    pub variant: String,
    pub figure: &'static str,
    pub a: Spread,
    pub b: Spread,
    /// B/A with its interval, or why there is none.
    pub interval: Result<RatioInterval, NotEnoughData>,
    pub verdict: Verdict,
    pub speed: bool,
}

impl Row {
    /// B/A: the ratio of geometric means over repetitions.
    pub fn ratio(&self) -> Option<f64> {
        self.interval.as_ref().ok().map(|i| i.ratio)
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Case × variant pairs present in only one file or failed in one.
    pub not_compared: Vec<String>,
}

impl Comparison {
    pub fn row(&self, case: &str, variant: &str, figure: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.case == case && r.variant == variant && r.figure == figure)
    }
}

/// Rows in A's order of cases and variants; B's extra cases and variants
/// are listed as not compared.
pub fn compare(a: &ResultsFile, b: &ResultsFile) -> Comparison {
    let mut out = Comparison::default();
    for case_a in &a.cases {
        let case_b = b.cases.iter().find(|c| c.label == case_a.label);
        for va in &case_a.variants {
            let vb = case_b.and_then(|c| c.variants.iter().find(|v| v.variant == va.variant));
            let at = format!("`{}` / `{}`", case_a.label, va.variant);
            let Some(vb) = vb else {
                out.not_compared.push(format!("{at}: only in A"));
                continue;
            };
            let (Some(sa), Some(sb)) = (&va.summary, &vb.summary) else {
                let side = match (&va.summary, &vb.summary) {
                    (None, None) => "failed in A and in B",
                    (None, _) => "failed in A",
                    _ => "failed in B",
                };
                out.not_compared.push(format!("{at}: {side}"));
                continue;
            };
            let (ra, rb) = (RepetitionFigures::of(va), RepetitionFigures::of(vb));
            for compared in compared_figures() {
                let pick = compared.figure.pick;
                let (Some(fa), Some(fb)) = (pick(sa), pick(sb)) else {
                    continue;
                };
                let values = |r: &RepetitionFigures| -> Vec<f64> {
                    r.values(compared.figure).into_values().collect()
                };
                let interval = unpaired_interval(&values(&ra), &values(&rb));
                out.rows.push(Row {
                    case: case_a.label.clone(),
                    variant: va.variant.to_string(),
                    figure: compared.label,
                    a: fa,
                    b: fb,
                    verdict: verdict(&interval, compared.better),
                    interval,
                    speed: compared.speed,
                });
            }
        }
    }
    for case_b in &b.cases {
        let case_a = a.cases.iter().find(|c| c.label == case_b.label);
        for vb in &case_b.variants {
            if case_a.is_none_or(|c| !c.variants.iter().any(|v| v.variant == vb.variant)) {
                out.not_compared
                    .push(format!("`{}` / `{}`: only in B", case_b.label, vb.variant));
            }
        }
    }
    out
}

fn range_cell(s: &Spread) -> String {
    format!("{} [{}–{}]", number(s.median), number(s.min), number(s.max))
}

fn describe(results: &ResultsFile, name: &str) -> String {
    let env = &results.environment;
    format!(
        "`{name}`: run started {}, kernel {}, {} ({} logical CPUs), epoll-bench {} at {}",
        results.run.started_at_utc,
        env.kernel_release,
        env.cpu_model,
        env.logical_cpus,
        env.epoll_bench_version,
        env.git_commit.get(..7).unwrap_or(&env.git_commit)
    )
}

/// The comparison as Markdown: one table per case.
pub fn compare_markdown(a: &ResultsFile, a_name: &str, b: &ResultsFile, b_name: &str) -> String {
    let comparison = compare(a, b);
    let mut md = String::new();
    let _ = writeln!(md, "# epoll-bench comparison: B against A\n");
    let _ = writeln!(md, "- A: {}", describe(a, a_name));
    let _ = writeln!(md, "- B: {}\n", describe(b, b_name));
    let _ = writeln!(
        md,
        "How to read: cells are the median over repetitions with [min–max]; **B/A** is the ratio of B's \
         geometric mean over repetitions to A's, with its {CONFIDENCE_PERCENT:.0}% interval (Welch's t on the logs, \
         the runs unpaired; README: Methodology). A verdict is given only when the interval \
         excludes 1: faster/slower for req/s, MB/s and latency, cheaper/costlier for syscalls and CPU per \
         request. Otherwise the row says how large a difference the runs leave open (\"no difference larger \
         than ±x%\": the farther bound of the interval from 1). Fewer than {MIN_REPETITIONS} repetitions on a \
         side: not enough data.\n"
    );
    let mut current_case: Option<&str> = None;
    for row in &comparison.rows {
        if current_case != Some(row.case.as_str()) {
            current_case = Some(row.case.as_str());
            let _ = writeln!(md, "\n## {}\n", row.case);
            let _ = writeln!(
                md,
                "| variant | figure | A | B | B/A | {CONFIDENCE_PERCENT:.0}% CI | verdict |"
            );
            let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---|");
        }
        let (ratio, interval, verdict) = match (&row.interval, row.verdict) {
            (Err(reason), _) => (
                "n/a".to_string(),
                "n/a".to_string(),
                format!("not enough data: {reason}"),
            ),
            (Ok(i), v) => (
                format!("{:.3}×", i.ratio),
                format!("{:.3}–{:.3}", i.ci_low, i.ci_high),
                match v {
                    Verdict::Better | Verdict::Worse => format!("**{}**", v.word(row.speed)),
                    _ => format!(
                        "no difference larger than ±{}%",
                        percent(i.largest_deviation_percent())
                    ),
                },
            ),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {ratio} | {interval} | {verdict} |",
            row.variant,
            row.figure,
            range_cell(&row.a),
            range_cell(&row.b),
        );
    }
    if comparison.rows.is_empty() {
        let _ = writeln!(md, "\nNo case and variant passed in both result sets.");
    }
    if !comparison.not_compared.is_empty() {
        let _ = writeln!(md, "\n## Not compared\n");
        for line in &comparison.not_compared {
            let _ = writeln!(md, "- {line}");
        }
    }
    md
}
