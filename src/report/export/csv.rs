//! `results.csv`: one row per case × variant, for spreadsheets and pandas.
//! Every figure gets four columns, `<figure>_median`, `_min`, `_max` and
//! `_cv_percent`; per-kind syscall and EAGAIN figures, and io_uring
//! operations per opcode (SQEs, CQEs), get one column group per kind that
//! appears anywhere in the file (empty for epoll variants, which have no
//! operations). Cells of failed or
//! unavailable figures are empty. The figure columns are
//! [`figures::csv_figures`], in the registry's order.

use std::collections::BTreeSet;

use super::{ExportError, Exporter};
use crate::results::uring_ops::UringOpsSummary;
use crate::results::{CaseResult, ResultsFile, Spread, Status, Summary, VariantResult, figures};
use crate::sys::SyscallKind;
use crate::sys::uring_ops::UringOp;

pub struct CsvExporter;

const SPREAD_PARTS: [&str; 4] = ["median", "min", "max", "cv_percent"];

fn spread_cells(spread: Option<Spread>) -> [String; 4] {
    match spread {
        Some(s) => [s.median, s.min, s.max, s.cv_percent].map(|v| v.to_string()),
        None => Default::default(),
    }
}

/// Kinds named in any summary's map chosen by `pick`, in the order of
/// `order` (the kernel's order of [`SyscallKind::ALL`], or
/// [`UringOp::ALL`]'s).
fn kinds_present(
    results: &ResultsFile,
    order: impl Iterator<Item = &'static str>,
    pick: impl Fn(&Summary) -> Vec<&String>,
) -> Vec<&'static str> {
    let seen: BTreeSet<String> = results
        .variant_results()
        .filter_map(|(_, v)| v.summary.as_ref())
        .flat_map(|s| pick(s).into_iter().cloned())
        .collect();
    order.filter(|name| seen.contains(*name)).collect()
}

fn syscall_names() -> impl Iterator<Item = &'static str> {
    SyscallKind::ALL.iter().map(|k| k.name())
}

fn operation_names() -> impl Iterator<Item = &'static str> {
    UringOp::ALL.iter().map(|op| op.name())
}

/// The io_uring operations of a summary, if it has any.
fn uring_ops(s: &Summary) -> Option<&UringOpsSummary> {
    s.server.as_ref()?.uring_ops.as_ref()
}

/// Columns before the figures: what was measured and whether it passed.
const CASE_COLUMNS: [&str; 10] = [
    "profile",
    "label",
    "protocol",
    "connections",
    "sweep_size_bytes",
    "variant",
    "status",
    "failure_reasons",
    "repetitions_used",
    "driver_bottleneck_warning",
];

/// The per-kind column groups of one file: kinds called, kinds that
/// returned EAGAIN, io_uring opcodes submitted and reaped, anywhere in it.
struct KindColumns {
    calls: Vec<&'static str>,
    eagain: Vec<&'static str>,
    sqes: Vec<&'static str>,
    cqes: Vec<&'static str>,
}

impl KindColumns {
    fn of(results: &ResultsFile) -> KindColumns {
        KindColumns {
            calls: kinds_present(results, syscall_names(), |s| {
                s.server
                    .iter()
                    .flat_map(|s| s.syscalls_per_request.keys())
                    .collect()
            }),
            eagain: kinds_present(results, syscall_names(), |s| {
                s.server
                    .iter()
                    .flat_map(|s| s.eagain_per_request.keys())
                    .collect()
            }),
            sqes: kinds_present(results, operation_names(), |s| {
                uring_ops(s)
                    .iter()
                    .flat_map(|u| u.sqes_per_request.keys())
                    .collect()
            }),
            cqes: kinds_present(results, operation_names(), |s| {
                uring_ops(s)
                    .iter()
                    .flat_map(|u| u.cqes_per_request.keys())
                    .collect()
            }),
        }
    }

    fn header(&self) -> Vec<String> {
        let groups = figures::csv_figures()
            .map(|f| f.name.to_string())
            .chain(
                self.calls
                    .iter()
                    .map(|k| format!("syscalls_per_request_{k}")),
            )
            .chain(
                self.eagain
                    .iter()
                    .map(|k| format!("eagain_per_request_{k}")),
            )
            .chain(
                self.sqes
                    .iter()
                    .map(|op| format!("uring_sqes_per_request_{op}")),
            )
            .chain(
                self.cqes
                    .iter()
                    .map(|op| format!("uring_cqes_per_request_{op}")),
            );
        let mut header: Vec<String> = CASE_COLUMNS.map(String::from).to_vec();
        for group in groups {
            header.extend(SPREAD_PARTS.iter().map(|p| format!("{group}_{p}")));
        }
        header
    }

    fn row(&self, case: &CaseResult, variant: &VariantResult) -> Vec<String> {
        let summary = variant.summary.as_ref();
        let mut row: Vec<String> = vec![
            case.profile.clone(),
            case.label.clone(),
            case.case.protocol.name().to_string(),
            case.case.connections.to_string(),
            case.case
                .sweep_size_bytes
                .map(|b| b.to_string())
                .unwrap_or_default(),
            variant.variant.to_string(),
            match variant.status {
                Status::Passed => "passed",
                Status::Failed => "failed",
            }
            .to_string(),
            variant.failure_reasons.join("; "),
            summary
                .map(|s| s.repetitions_used.to_string())
                .unwrap_or_default(),
            summary
                .map(|s| s.driver_bottleneck_warning.to_string())
                .unwrap_or_default(),
        ];
        for figure in figures::csv_figures() {
            row.extend(spread_cells(summary.and_then(figure.pick)));
        }
        let server = summary.and_then(|s| s.server.as_ref());
        for kind in &self.calls {
            let spread = server.map(|s| {
                s.syscalls_per_request
                    .get(*kind)
                    .copied()
                    .unwrap_or_default()
            });
            row.extend(spread_cells(spread));
        }
        for kind in &self.eagain {
            let spread =
                server.map(|s| s.eagain_per_request.get(*kind).copied().unwrap_or_default());
            row.extend(spread_cells(spread));
        }
        // Empty cells for a variant without operations (epoll): absent,
        // not zero.
        let ops = summary.and_then(uring_ops);
        for op in &self.sqes {
            let spread = ops.map(|u| u.sqes_per_request.get(*op).copied().unwrap_or_default());
            row.extend(spread_cells(spread));
        }
        for op in &self.cqes {
            let spread = ops.map(|u| u.cqes_per_request.get(*op).copied().unwrap_or_default());
            row.extend(spread_cells(spread));
        }
        row
    }
}

impl Exporter for CsvExporter {
    fn file_name(&self) -> &'static str {
        "results.csv"
    }

    fn render(&self, results: &ResultsFile) -> Result<Vec<u8>, ExportError> {
        let err = |message: String| ExportError::Render {
            exporter: "csv",
            message,
        };
        let kinds = KindColumns::of(results);
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer
            .write_record(kinds.header())
            .map_err(|e| err(e.to_string()))?;
        for (case, variant) in results.variant_results() {
            writer
                .write_record(kinds.row(case, variant))
                .map_err(|e| err(e.to_string()))?;
        }
        writer.into_inner().map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    fn table() -> (Vec<String>, Vec<Vec<String>>) {
        table_of(&fixture::results())
    }

    fn table_of(results: &ResultsFile) -> (Vec<String>, Vec<Vec<String>>) {
        let bytes = CsvExporter.render(results).unwrap();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    }

    fn cell<'a>(header: &[String], row: &'a [String], column: &str) -> &'a str {
        let i = header
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("no column {column}"));
        &row[i]
    }

    #[test]
    fn rows_carry_medians_spreads_and_kinds() {
        let (header, rows) = table();
        assert_eq!(rows.len(), 3);
        let lt_rw = &rows[0];
        assert_eq!(cell(&header, lt_rw, "variant"), "lt-rw");
        assert_eq!(cell(&header, lt_rw, "status"), "passed");
        assert_eq!(cell(&header, lt_rw, "requests_per_second_median"), "1100");
        assert_eq!(cell(&header, lt_rw, "requests_per_second_min"), "1000");
        assert_eq!(cell(&header, lt_rw, "requests_per_second_max"), "1200");
        let cv: f64 = cell(&header, lt_rw, "requests_per_second_cv_percent")
            .parse()
            .unwrap();
        assert!((cv - 9.0909).abs() < 1e-3);
        assert_eq!(
            cell(&header, lt_rw, "syscalls_per_request_read_median"),
            "1"
        );
        assert_eq!(
            cell(&header, lt_rw, "eagain_per_request_read_median"),
            "0.1"
        );
        assert_eq!(
            cell(&header, lt_rw, "payload_copy_bytes_per_request_median"),
            "128"
        );
        // Kinds never called are not columns.
        assert!(
            !header
                .iter()
                .any(|h| h.starts_with("syscalls_per_request_splice"))
        );
    }

    #[test]
    fn failed_rows_have_reasons_and_no_figures() {
        let (header, rows) = table();
        let et_rw = &rows[1];
        assert_eq!(cell(&header, et_rw, "status"), "failed");
        assert_eq!(
            cell(&header, et_rw, "failure_reasons"),
            "1 payload mismatch"
        );
        assert_eq!(cell(&header, et_rw, "requests_per_second_median"), "");
        assert_eq!(cell(&header, et_rw, "p99_latency_us_median"), "");
        assert_eq!(cell(&header, et_rw, "syscalls_per_request_read_median"), "");
    }

    #[test]
    fn io_uring_operations_sit_beside_syscalls_and_are_empty_for_epoll() {
        // Without an io_uring variant, no per-opcode columns.
        let (header, _) = table();
        assert!(
            !header
                .iter()
                .any(|h| h.starts_with("uring_sqes_per_request_recv"))
        );
        let (header, rows) = table_of(&fixture::results_with_uring());
        let uring = rows
            .iter()
            .find(|r| cell(&header, r, "variant") == "uring-rw")
            .expect("a uring-rw row");
        assert_eq!(
            cell(&header, uring, "syscalls_per_request_total_median"),
            "0.2"
        );
        assert_eq!(
            cell(&header, uring, "uring_sqes_per_request_total_median"),
            "2.1"
        );
        assert_eq!(
            cell(&header, uring, "uring_cqes_per_request_total_median"),
            "2.1"
        );
        assert_eq!(
            cell(&header, uring, "uring_sqes_per_request_recv_median"),
            "1"
        );
        assert_eq!(
            cell(&header, uring, "uring_cqes_per_request_send_median"),
            "1.1"
        );
        assert_eq!(
            cell(&header, uring, "uring_multishot_rearms_per_request_median"),
            "0"
        );
        let lt_rw = &rows[0];
        assert_eq!(
            cell(&header, lt_rw, "uring_sqes_per_request_total_median"),
            ""
        );
        assert_eq!(
            cell(&header, lt_rw, "uring_sqes_per_request_recv_median"),
            ""
        );
        // Opcodes never submitted are not columns.
        assert!(
            !header
                .iter()
                .any(|h| h.starts_with("uring_sqes_per_request_splice"))
        );
    }
}
