//! `compare A B`: two result sets side by side, for before/after a kernel
//! upgrade, another machine or a tuning change. For every case and variant
//! that passed in both, each figure the registry gives a compare label
//! ([`compared_figures`]) gets the ratio of medians B/A
//! and a verdict that says whether the difference is beyond the
//! run-to-run spread.
//!
//! The rule: a figure changed only when the min–max ranges of its
//! repetitions in A and in B do not overlap, and each side has at least
//! [`MIN_REPETITIONS`] repetitions. With 3 repetitions a side, ranges that
//! do not overlap happen by chance for two equal setups with probability
//! 2/20 = 10 % (all of B's repetitions above all of A's, or all below), so
//! a verdict other than "no change" is a signal, not proof; more
//! repetitions make it stricter.

use std::fmt::Write;

use crate::report::export::markdown::number;
use crate::results::figures::compared_figures;
use crate::results::{ResultsFile, Spread};

pub use crate::results::figures::Better;

/// Repetitions each side needs for a verdict.
pub const MIN_REPETITIONS: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// B is better beyond the spread.
    Better,
    /// B is worse beyond the spread.
    Worse,
    /// The ranges overlap.
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

/// The verdict for `b` against `a` under the rule in the module docs.
pub fn verdict(a: &Spread, b: &Spread, better: Better) -> Verdict {
    if a.samples < MIN_REPETITIONS || b.samples < MIN_REPETITIONS {
        return Verdict::TooFewRepetitions;
    }
    let b_higher = b.min > a.max;
    let b_lower = b.max < a.min;
    match (b_higher, b_lower, better) {
        (true, _, Better::Higher) | (_, true, Better::Lower) => Verdict::Better,
        (true, _, Better::Lower) | (_, true, Better::Higher) => Verdict::Worse,
        _ => Verdict::NoChange,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub case: String,
    pub variant: String,
    pub figure: &'static str,
    pub a: Spread,
    pub b: Spread,
    /// Median of B over median of A (`None` when A's median is 0).
    pub ratio: Option<f64>,
    pub verdict: Verdict,
    pub speed: bool,
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
            for compared in compared_figures() {
                let pick = compared.figure.pick;
                let (Some(fa), Some(fb)) = (pick(sa), pick(sb)) else {
                    continue;
                };
                out.rows.push(Row {
                    case: case_a.label.clone(),
                    variant: va.variant.to_string(),
                    figure: compared.label,
                    a: fa,
                    b: fb,
                    ratio: (fa.median != 0.0).then(|| fb.median / fa.median),
                    verdict: verdict(&fa, &fb, compared.better),
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
        "How to read: cells are the median over repetitions with [min–max]; **B/A** is B's median over A's. \
         The verdict says whether B differs beyond the run-to-run spread: a figure changed only when the \
         min–max ranges of A's and B's repetitions do not overlap (and each side has at least \
         {MIN_REPETITIONS} repetitions); otherwise \"no change\". For req/s, MB/s and latency the verdict is \
         faster/slower, for syscalls and CPU per request cheaper/costlier. With 3 repetitions a side, two \
         equal setups give non-overlapping ranges by chance 10 % of the time: treat a verdict as a signal \
         and rerun with more repetitions to confirm.\n"
    );
    let mut current_case: Option<&str> = None;
    for row in &comparison.rows {
        if current_case != Some(row.case.as_str()) {
            current_case = Some(row.case.as_str());
            let _ = writeln!(md, "\n## {}\n", row.case);
            let _ = writeln!(md, "| variant | figure | A | B | B/A | verdict |");
            let _ = writeln!(md, "|---|---|---:|---:|---:|---|");
        }
        let ratio = row
            .ratio
            .map_or_else(|| "n/a".to_string(), |r| format!("{r:.3}×"));
        let verdict = row.verdict.word(row.speed);
        let verdict = if matches!(row.verdict, Verdict::Better | Verdict::Worse) {
            format!("**{verdict}**")
        } else {
            verdict.to_string()
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            row.variant,
            row.figure,
            range_cell(&row.a),
            range_cell(&row.b),
            ratio,
            verdict
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
