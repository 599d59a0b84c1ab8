//! Conformance of the reference peers (peers/README.md): the tokio server
//! (both runtimes) and the Go server, each with both wire protocols,
//! against the conformance cases that can be checked over the wire
//! (cases.rs says which and how). The Go tests are skipped, saying why,
//! where no Go toolchain is installed; in CI (`CI` set) that is a failure.

#[path = "../support/mod.rs"]
mod support;

mod case;
mod cases;
mod emfile;
#[path = "../conformance/framing.rs"]
mod framing;
mod peer;
// Only its load client is used here.
#[allow(dead_code)]
#[path = "../conformance/sigterm_under_load.rs"]
mod sigterm;

use epoll_bench::protocol::Protocol;

use peer::Peer;

macro_rules! protocol_tests {
    ($module:ident, $peer:expr, $protocol:expr) => {
        mod $module {
            use super::super::*;

            #[test]
            fn shared_cases() {
                if !peer::unavailable_here($peer) {
                    cases::shared_cases($peer, $protocol);
                }
            }

            #[test]
            fn oversized_frame() {
                if !peer::unavailable_here($peer) {
                    cases::oversized_frame($peer, $protocol);
                }
            }

            #[test]
            fn emfile_on_accept() {
                if !peer::unavailable_here($peer) {
                    emfile::emfile_on_accept($peer, $protocol);
                }
            }

            #[test]
            fn sigterm_under_load() {
                if !peer::unavailable_here($peer) {
                    cases::sigterm_under_load($peer, $protocol);
                }
            }
        }
    };
}

macro_rules! peer_tests {
    ($($module:ident => $peer:expr),* $(,)?) => {
        $(
            mod $module {
                protocol_tests!(frame, $peer, Protocol::Frame);
                protocol_tests!(echo, $peer, Protocol::Echo);
            }
        )*
    };
}

peer_tests! {
    tokio_current_thread => Peer::TokioCurrentThread,
    tokio_multi_thread => Peer::TokioMultiThread,
    go => Peer::Go,
}
