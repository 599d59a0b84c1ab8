//! Conformance suite (issue 2, item 7): every server variant × both wire
//! protocols against the same adversarial cases, run against the real
//! `epoll-bench serve` binary.
//!
//! Each (variant, protocol) pair gets one `shared_cases` test that runs the
//! cases below one after the other against one server (and, for the variants
//! that take pooled buffers, `shared_cases_pooled`: the same cases against a
//! `--buffers pooled` server whose pool is small enough to make connections
//! wait for buffers), plus three tests for
//! cases that need a server of their own (`oversized_frame`,
//! `emfile_on_accept`, `sigterm_under_load`). After every case the suite
//! checks that the server's open fd count is back to its baseline, that the
//! accept/close/error counters moved exactly as the case implies, and that a
//! fresh connection is still served correctly.
//!
//! The file protocol has cases of its own (`file.rs`), run for every
//! variant that serves it.
//!
//! Frame vs echo: a "message" is a frame (`len` + payload, answered by
//! `len`, `seq`, payload) or, in echo mode, just its payload bytes (answered
//! by the same bytes). Each case says what it means in echo mode where that
//! is not simply "the same bytes without headers".

#[path = "../support/mod.rs"]
mod support;

#[path = "../support/file_client.rs"]
mod file_client;

mod case;
mod connections;
mod emfile_on_accept;
mod file;
mod framing;
mod oversized_frame;
mod shared_server;
mod sigterm_under_load;

use epoll_bench::protocol::Protocol;
use epoll_bench::server::Variant;

use emfile_on_accept::emfile_on_accept;
use oversized_frame::oversized_frame;
use shared_server::{shared_cases, shared_cases_pooled};
use sigterm_under_load::sigterm_under_load;

/// Whether the suite should run `variant` with `protocol`: the machine
/// runs it, and the variant serves the protocol (a file-only strategy has
/// no frame or echo cases, and most variants no file cases). Says why not.
fn runs_here(variant: &str, protocol: Protocol) -> bool {
    let parsed: Variant = variant.parse().expect("a built-in variant");
    if !parsed.serves(protocol) {
        eprintln!(
            "skipped: {variant} does not serve --protocol {}",
            protocol.name()
        );
        return false;
    }
    !support::unavailable_here(variant)
}

macro_rules! protocol_tests {
    ($module:ident, $variant:expr, $protocol:expr) => {
        mod $module {
            use super::super::*;

            #[test]
            fn shared_cases() {
                if !crate::runs_here($variant, $protocol) {
                    return;
                }
                super::super::shared_cases($variant, $protocol);
            }

            /// The shared cases again with pooled buffers (variants that
            /// refuse them skip it).
            #[test]
            fn shared_cases_pooled() {
                if crate::support::unavailable_here($variant) {
                    return;
                }
                super::super::shared_cases_pooled($variant, $protocol);
            }

            #[test]
            fn oversized_frame() {
                if !crate::runs_here($variant, $protocol) {
                    return;
                }
                super::super::oversized_frame($variant, $protocol);
            }

            #[test]
            fn emfile_on_accept() {
                if !crate::runs_here($variant, $protocol) {
                    return;
                }
                super::super::emfile_on_accept($variant, $protocol);
            }

            #[test]
            fn sigterm_under_load() {
                if !crate::runs_here($variant, $protocol) {
                    return;
                }
                super::super::sigterm_under_load($variant, $protocol);
            }
        }
    };
}

/// A module of tests per variant, from the server's one list.
macro_rules! variant_tests {
    ($($module:ident => $variant:expr),* $(,)?) => {
        $(
            mod $module {
                protocol_tests!(frame, &$variant.name(), Protocol::Frame);
                protocol_tests!(echo, &$variant.name(), Protocol::Echo);

                #[test]
                fn file_cases() {
                    let variant = $variant.name();
                    if crate::runs_here(&variant, epoll_bench::protocol::Protocol::File) {
                        crate::file::file_cases(&variant);
                    }
                }
            }
        )*
    };
}

epoll_bench::for_each_variant!(variant_tests);
