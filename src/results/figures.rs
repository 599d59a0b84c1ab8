//! The figure registry: every single-valued figure of a [`Summary`], defined
//! once with its name, unit, direction, how it is picked, and the places
//! that show it (CSV columns, summary.md columns, `compare` rows, charts).
//! Exporters, `compare` and the charts iterate [`FIGURES`] or filter it by
//! these properties, so adding a headline figure is one entry here. The
//! few figures that code names on its own are constants listed in place.
//!
//! [`FIGURES`] is in CSV column order; the summary table and `compare` keep
//! that order for the figures they show. Per-kind maps (syscalls and EAGAIN
//! by kind) are not figures here: their keys are only known from the data.

use super::{Spread, Summary};

/// Whether larger values of a figure are better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// What a figure says about a variant: how fast it serves, what serving
/// costs, or the conditions it ran under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aspect {
    /// Verdicts read faster / slower.
    Speed,
    /// Verdicts read cheaper / costlier.
    Cost,
    /// Load, saturation and machine state: no verdict.
    Context,
}

/// Figures measuring the same thing, which reports keep together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Throughput,
    Latency,
    /// Syscall counts; summary.md puts its per-kind columns after the last
    /// figure of this group it shows.
    Syscalls,
    /// io_uring operations, the second currency beside syscalls; only
    /// io_uring variants have them, so summary.md shows their column only
    /// in tables with an io_uring variant.
    UringOps,
    EpollWakeups,
    Copies,
    ServerCpu,
    ContextSwitches,
    Driver,
    Machine,
    Memory,
}

/// How a chart names a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChartText {
    /// Panel title.
    pub caption: &'static str,
    /// y axis, with the unit.
    pub axis: &'static str,
}

/// One figure of a [`Summary`].
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    /// The field name in results.json, and the CSV column group
    /// (`<name>_median`, `_min`, `_max`, `_cv_percent`).
    pub name: &'static str,
    pub unit: &'static str,
    /// `None`: neither way is better (utilisation, events per wake-up).
    pub better: Option<Better>,
    pub aspect: Aspect,
    pub group: Group,
    /// `None` where the figure is unavailable (server-side figures without
    /// a control interface, figures absent from older results).
    pub pick: fn(&Summary) -> Option<Spread>,
    /// A column group of results.csv.
    pub csv: bool,
    /// Column heading in summary.md's tables.
    pub summary_column: Option<&'static str>,
    /// Name of its rows in `compare`: only figures that have a direction
    /// and are not [`Aspect::Context`].
    pub compare_label: Option<&'static str>,
    /// How charts that plot it name it; which charts plot it is the
    /// charts' choice (by [`Group`], or by naming the figure).
    pub chart: Option<ChartText>,
}

/// Payload throughput, named on its own by the charts: against message
/// size it leads, and the splice crossover is read on it.
pub const PAYLOAD_MEGABYTES_PER_SECOND: Figure = Figure {
    name: "payload_megabytes_per_second",
    unit: "MB/s",
    better: Some(Better::Higher),
    aspect: Aspect::Speed,
    group: Group::Throughput,
    pick: |s| Some(s.payload_megabytes_per_second),
    csv: true,
    summary_column: Some("MB/s"),
    compare_label: Some("MB/s"),
    chart: Some(ChartText {
        caption: "payload throughput",
        axis: "payload throughput (MB/s)",
    }),
};

/// Server CPU per request, named on its own by the charts: unlike
/// throughput, it holds whether or not the driver kept up.
pub const SERVER_CPU_US_PER_REQUEST: Figure = Figure {
    name: "server_cpu_us_per_request",
    unit: "µs",
    better: Some(Better::Lower),
    aspect: Aspect::Cost,
    group: Group::ServerCpu,
    // An external server's comes from the kernel's task clock.
    pick: |s| {
        s.server
            .as_ref()
            .map(|v| v.server_cpu_us_per_request)
            .or_else(|| {
                s.external_server
                    .as_ref()
                    .map(|e| e.server_cpu_us_per_request)
            })
    },
    csv: true,
    summary_column: Some("server CPU µs/req"),
    compare_label: Some("CPU µs/request"),
    chart: Some(ChartText {
        caption: "server CPU per request",
        axis: "server CPU per request (µs, user + system)",
    }),
};

/// Context switches per request, charted beside server CPU.
pub const CONTEXT_SWITCHES_PER_REQUEST: Figure = Figure {
    name: "context_switches_per_request",
    unit: "switches",
    better: Some(Better::Lower),
    aspect: Aspect::Cost,
    group: Group::ContextSwitches,
    pick: |s| {
        s.server
            .as_ref()
            .map(|v| v.context_switches_per_request)
            .or_else(|| {
                s.external_server
                    .as_ref()
                    .map(|e| e.context_switches_per_request)
            })
    },
    csv: true,
    summary_column: None,
    compare_label: None,
    chart: Some(ChartText {
        caption: "context switches per request",
        axis: "server context switches per request (count)",
    }),
};

/// A figure shown in results.csv only; the common case.
const CSV_ONLY: Figure = Figure {
    name: "",
    unit: "",
    better: None,
    aspect: Aspect::Context,
    group: Group::Machine,
    pick: |_| None,
    csv: true,
    summary_column: None,
    compare_label: None,
    chart: None,
};

/// Every figure, in results.csv's column order.
pub const FIGURES: &[Figure] = &[
    Figure {
        name: "requests_per_second",
        unit: "req/s",
        better: Some(Better::Higher),
        aspect: Aspect::Speed,
        group: Group::Throughput,
        pick: |s| Some(s.requests_per_second),
        summary_column: Some("req/s"),
        compare_label: Some("req/s"),
        chart: Some(ChartText {
            caption: "requests per second",
            axis: "requests per second (req/s)",
        }),
        ..CSV_ONLY
    },
    PAYLOAD_MEGABYTES_PER_SECOND,
    Figure {
        name: "p50_latency_us",
        unit: "µs",
        better: Some(Better::Lower),
        aspect: Aspect::Speed,
        group: Group::Latency,
        pick: |s| Some(s.p50_latency_us),
        summary_column: Some("p50 µs"),
        compare_label: Some("p50 µs"),
        ..CSV_ONLY
    },
    Figure {
        name: "p90_latency_us",
        unit: "µs",
        better: Some(Better::Lower),
        aspect: Aspect::Speed,
        group: Group::Latency,
        pick: |s| Some(s.p90_latency_us),
        ..CSV_ONLY
    },
    Figure {
        name: "p99_latency_us",
        unit: "µs",
        better: Some(Better::Lower),
        aspect: Aspect::Speed,
        group: Group::Latency,
        pick: |s| Some(s.p99_latency_us),
        summary_column: Some("p99 µs"),
        compare_label: Some("p99 µs"),
        ..CSV_ONLY
    },
    Figure {
        name: "p999_latency_us",
        unit: "µs",
        better: Some(Better::Lower),
        aspect: Aspect::Speed,
        group: Group::Latency,
        pick: |s| Some(s.p999_latency_us),
        summary_column: Some("p99.9 µs"),
        ..CSV_ONLY
    },
    Figure {
        name: "max_latency_us",
        unit: "µs",
        better: Some(Better::Lower),
        aspect: Aspect::Speed,
        group: Group::Latency,
        pick: |s| Some(s.max_latency_us),
        ..CSV_ONLY
    },
    Figure {
        name: "syscalls_per_request_total",
        unit: "calls",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::Syscalls,
        pick: |s| s.server.as_ref().map(|v| v.syscalls_per_request_total),
        summary_column: Some("syscalls/req"),
        compare_label: Some("syscalls/request"),
        ..CSV_ONLY
    },
    Figure {
        name: "kernel_syscalls_per_request_total",
        unit: "calls",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::Syscalls,
        pick: |s| s.kernel_syscalls_per_request_total,
        // Never a CSV column: adding it would change results.csv's columns.
        csv: false,
        summary_column: Some("kernel syscalls/req"),
        ..CSV_ONLY
    },
    Figure {
        name: "eagain_per_request_total",
        unit: "calls",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::Syscalls,
        // An external server's are the kernel's (filtered exit tracepoints).
        pick: |s| {
            s.server
                .as_ref()
                .map(|v| v.eagain_per_request_total)
                .or_else(|| s.external_server.as_ref()?.eagain_per_request_total)
        },
        ..CSV_ONLY
    },
    Figure {
        name: "uring_sqes_per_request_total",
        unit: "operations",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::UringOps,
        pick: |s| uring_ops(s).map(|u| u.sqes_per_request_total),
        summary_column: Some("io_uring ops/req"),
        compare_label: Some("io_uring operations/request"),
        ..CSV_ONLY
    },
    Figure {
        name: "uring_cqes_per_request_total",
        unit: "completions",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::UringOps,
        pick: |s| uring_ops(s).map(|u| u.cqes_per_request_total),
        ..CSV_ONLY
    },
    Figure {
        name: "uring_multishot_rearms_per_request",
        unit: "operations",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::UringOps,
        pick: |s| uring_ops(s).map(|u| u.multishot_rearms_per_request),
        ..CSV_ONLY
    },
    Figure {
        name: "uring_buffer_ring_refills_per_request",
        unit: "buffers",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::UringOps,
        pick: |s| uring_ops(s).map(|u| u.buffer_ring_refills_per_request),
        ..CSV_ONLY
    },
    Figure {
        name: "epoll_wait_calls_per_request",
        unit: "calls",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::EpollWakeups,
        pick: |s| s.server.as_ref().map(|v| v.epoll_wait_calls_per_request),
        ..CSV_ONLY
    },
    Figure {
        name: "epoll_events_per_wakeup",
        unit: "events",
        group: Group::EpollWakeups,
        pick: |s| s.server.as_ref().map(|v| v.epoll_events_per_wakeup),
        ..CSV_ONLY
    },
    Figure {
        name: "payload_copy_bytes_in_per_request",
        unit: "bytes",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::Copies,
        pick: |s| {
            s.server
                .as_ref()
                .map(|v| v.payload_copy_bytes_in_per_request)
        },
        ..CSV_ONLY
    },
    Figure {
        name: "payload_copy_bytes_out_per_request",
        unit: "bytes",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::Copies,
        pick: |s| {
            s.server
                .as_ref()
                .map(|v| v.payload_copy_bytes_out_per_request)
        },
        ..CSV_ONLY
    },
    Figure {
        name: "payload_copy_bytes_per_request",
        unit: "bytes",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::Copies,
        pick: |s| s.server.as_ref().map(|v| v.payload_copy_bytes_per_request),
        summary_column: Some("copied B/req"),
        ..CSV_ONLY
    },
    SERVER_CPU_US_PER_REQUEST,
    Figure {
        name: "server_cpu_user_us_per_request",
        unit: "µs",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::ServerCpu,
        pick: |s| s.server.as_ref().map(|v| v.server_cpu_user_us_per_request),
        ..CSV_ONLY
    },
    Figure {
        name: "server_cpu_system_us_per_request",
        unit: "µs",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::ServerCpu,
        pick: |s| {
            s.server
                .as_ref()
                .map(|v| v.server_cpu_system_us_per_request)
        },
        ..CSV_ONLY
    },
    CONTEXT_SWITCHES_PER_REQUEST,
    Figure {
        name: "voluntary_context_switches_per_request",
        unit: "switches",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::ContextSwitches,
        pick: |s| {
            s.server
                .as_ref()
                .map(|v| v.voluntary_context_switches_per_request)
        },
        ..CSV_ONLY
    },
    Figure {
        name: "involuntary_context_switches_per_request",
        unit: "switches",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::ContextSwitches,
        pick: |s| {
            s.server
                .as_ref()
                .map(|v| v.involuntary_context_switches_per_request)
        },
        ..CSV_ONLY
    },
    Figure {
        name: "driver_cpu_us_per_request",
        unit: "µs",
        group: Group::Driver,
        pick: |s| Some(s.driver_cpu_us_per_request),
        ..CSV_ONLY
    },
    Figure {
        name: "driver_to_server_cpu_ratio",
        unit: "ratio",
        group: Group::Driver,
        pick: |s| s.driver_to_server_cpu_ratio,
        ..CSV_ONLY
    },
    Figure {
        name: "driver_cpu_utilization_percent",
        unit: "percent",
        group: Group::Driver,
        pick: |s| s.driver_cpu_utilization_percent,
        ..CSV_ONLY
    },
    Figure {
        name: "server_cpu_utilization_percent",
        unit: "percent",
        group: Group::ServerCpu,
        pick: |s| s.server_cpu_utilization_percent,
        ..CSV_ONLY
    },
    Figure {
        name: "cpu_steal_percent",
        unit: "percent",
        group: Group::Machine,
        pick: |s| s.cpu_steal_percent,
        ..CSV_ONLY
    },
    Figure {
        name: "memory_per_connection_bytes",
        unit: "bytes",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::Memory,
        pick: |s| s.memory_per_connection_bytes,
        ..CSV_ONLY
    },
    // The whole memory per connection of `idle_active` cases, for
    // `compare` (a buffer policy or process layout against another). Not
    // CSV columns: adding them would change results.csv's columns.
    Figure {
        name: "server_rss_per_connection_bytes",
        unit: "bytes",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::Memory,
        pick: |s| s.server_rss_per_connection_bytes,
        csv: false,
        compare_label: Some("server RSS B/connection"),
        ..CSV_ONLY
    },
    Figure {
        name: "kernel_memory_per_connection_bytes",
        unit: "bytes",
        better: Some(Better::Lower),
        aspect: Aspect::Cost,
        group: Group::Memory,
        pick: |s| s.kernel_memory_per_connection_bytes,
        csv: false,
        compare_label: Some("kernel B/connection"),
        ..CSV_ONLY
    },
];

/// The io_uring operations of a summary; `None` for epoll variants. The
/// `uring_*` figures read their field of the same name without the prefix.
fn uring_ops(s: &Summary) -> Option<&super::uring_ops::UringOpsSummary> {
    s.server.as_ref()?.uring_ops.as_ref()
}

/// The figures of results.csv, in column order.
pub fn csv_figures() -> impl Iterator<Item = &'static Figure> {
    FIGURES.iter().filter(|f| f.csv)
}

/// The figures of summary.md's tables with their column headings, in
/// column order.
pub fn summary_figures() -> impl Iterator<Item = (&'static Figure, &'static str)> {
    FIGURES
        .iter()
        .filter_map(|f| f.summary_column.map(|column| (f, column)))
}

/// A figure `compare` judges: label, direction and how the verdict reads.
#[derive(Clone, Copy, Debug)]
pub struct Compared {
    pub figure: &'static Figure,
    pub label: &'static str,
    pub better: Better,
    /// Speed figures say faster/slower; cost figures cheaper/costlier.
    pub speed: bool,
}

/// The figures `compare` judges, in row order. A figure without a
/// direction, or of [`Aspect::Context`], is never compared (a unit test
/// keeps the registry so).
pub fn compared_figures() -> impl Iterator<Item = Compared> {
    FIGURES.iter().filter_map(|figure| {
        Some(Compared {
            figure,
            label: figure.compare_label?,
            better: figure.better?,
            speed: match figure.aspect {
                Aspect::Speed => true,
                Aspect::Cost => false,
                Aspect::Context => return None,
            },
        })
    })
}

/// Figures of `group` that charts can name, in registry order.
pub fn charted(group: Group) -> impl Iterator<Item = (&'static Figure, ChartText)> {
    FIGURES
        .iter()
        .filter(move |f| f.group == group)
        .filter_map(|f| f.chart.map(|text| (f, text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    #[test]
    fn names_are_unique_and_carry_their_unit() {
        for (i, f) in FIGURES.iter().enumerate() {
            assert!(
                FIGURES[..i].iter().all(|g| g.name != f.name),
                "{} twice",
                f.name
            );
            assert!(!f.name.is_empty() && !f.unit.is_empty(), "{}", f.name);
        }
    }

    #[test]
    fn every_labelled_figure_is_judged_by_compare() {
        let judged: Vec<&str> = compared_figures().map(|c| c.figure.name).collect();
        let labelled: Vec<&str> = FIGURES
            .iter()
            .filter(|f| f.compare_label.is_some())
            .map(|f| f.name)
            .collect();
        assert_eq!(judged, labelled, "a compare label needs a direction");
        assert_eq!(judged.len(), 9);
    }

    #[test]
    fn picks_read_the_field_they_are_named_after() {
        let results = fixture::results_with_uring();
        // lt-rw, and uring-rw (the only one with io_uring operations).
        for (index, uring) in [(0, false), (2, true)] {
            let summary = results.cases[0].variants[index].summary.as_ref().unwrap();
            let json = serde_json::to_value(summary).unwrap();
            for f in FIGURES {
                let field = match f.name.strip_prefix("uring_") {
                    Some(name) => json["server"]["uring_ops"].get(name),
                    None => json.get(f.name).or_else(|| json["server"].get(f.name)),
                };
                if f.group == Group::UringOps && !uring {
                    assert!(field.is_none() && (f.pick)(summary).is_none(), "{}", f.name);
                    continue;
                }
                // Memory whole is measured in idle_active cases only.
                if f.group == Group::Memory && field.is_none() {
                    assert!((f.pick)(summary).is_none(), "{}", f.name);
                    continue;
                }
                let field = field.unwrap_or_else(|| panic!("no field {}", f.name));
                let expected: Option<Spread> = serde_json::from_value(field.clone()).unwrap();
                assert_eq!((f.pick)(summary), expected, "{}", f.name);
            }
        }
    }
}
