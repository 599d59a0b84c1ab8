//! Turning raw counts into figures a reviewer can trust.
//!
//! - [`cross_check`]: in-process syscall counts against the kernel's.
//! - [`cpu_steal`]: CPU time the hypervisor took during a window.

#![forbid(unsafe_code)]

pub mod cpu_steal;
pub mod cross_check;
