//! Turning raw counts into figures a reviewer can trust.
//!
//! - [`cross_check`]: in-process syscall counts against the kernel's.
//! - [`cpu_steal`]: CPU time the hypervisor took during a window.
//! - [`kernel_memory`]: what connections cost the kernel (sockstat, slabs).
//! - [`perf_report`]: `perf report` text as rows of samples per symbol.

#![forbid(unsafe_code)]

pub mod cpu_steal;
pub mod cross_check;
pub mod kernel_memory;
pub mod perf_report;
