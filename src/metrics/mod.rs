//! Turning raw counts into figures a reviewer can trust.
//!
//! - [`cross_check`]: in-process syscall counts against the kernel's.

#![forbid(unsafe_code)]

pub mod cross_check;
