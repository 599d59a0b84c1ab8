//! Case 14: SIGTERM while clients keep the server busy, on a server of its
//! own.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use epoll_bench::protocol::Protocol;
use rand::RngExt;

use crate::support::*;

/// Case 14, own server. Six clients keep the server busy (four ping-pong
/// with assorted sizes, two streaming 1 MiB messages); once it has served
/// a good amount, SIGTERM: exit 0 with the final JSON line within 1 s,
/// every accepted connection closed. Every response the clients got before
/// the server went away must be correct (a cut-off last one may be short).
pub(crate) fn sigterm_under_load(variant: &str, protocol: Protocol) {
    let server = ServerProcess::start(variant, protocol, &[]);
    let label = format!("{} case 14 SIGTERM under load", server.label);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..6u64)
        .map(|client| {
            let (addr, stop, answered) = (server.addr, Arc::clone(&stop), Arc::clone(&answered));
            let label = format!("{label}: client {client}");
            thread::spawn(move || load_client(addr, protocol, client, &stop, &answered, &label))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered.load(Ordering::Relaxed) < 200 {
        assert!(
            Instant::now() < deadline,
            "{label}: clients made no progress"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let report = server.terminate();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("load client");
    }
    assert!(report.total.counters.connections_accepted >= 6, "{label}");
}

/// One load client for case 14: messages until the server closes, `stop`
/// is set, or a bounded count is reached.
pub(crate) fn load_client(
    addr: SocketAddr,
    protocol: Protocol,
    client: u64,
    stop: &AtomicBool,
    answered: &AtomicU64,
    label: &str,
) {
    let mut stream = connect(addr);
    let mut sizes = rng(1400 + client);
    for seq in 0..100_000u32 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let len = if client < 2 {
            1 << 20
        } else {
            sizes.random_range(0..4096)
        };
        let data = payload(client << 32 | seq as u64, len);
        let mut writer = stream.try_clone().expect("clone socket");
        let request = encode_request(protocol, &data);
        // Written from a second thread so large messages cannot deadlock.
        let writing = thread::spawn(move || writer.write_all(&request).is_ok());
        let expected = expected_response(protocol, seq, &data);
        let mut got = vec![0u8; expected.len()];
        let mut filled = 0;
        while filled < got.len() {
            match stream.read(&mut got[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{label}: read failed: {e}"),
            }
        }
        assert_same_bytes(&got[..filled], &expected[..filled], 0, label);
        let _ = writing.join();
        if filled < got.len() {
            // The server shut down; what arrived was correct.
            return;
        }
        answered.fetch_add(1, Ordering::Relaxed);
    }
}
