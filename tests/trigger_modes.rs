//! Proves that the two trigger modes the servers register with really get
//! different notifications (the premise of every LT-vs-ET number): on a
//! socket that was only partly drained, a level-triggered registration is
//! reported again on every wait, an edge-triggered one is not reported
//! until new bytes arrive, and then it is, even though it was never drained.
//!
//! Uses `epoll_bench::sys::epoll` directly, with the exact interest sets of
//! the servers' `Level` and `Edge` triggers, on a Unix socket pair and on a
//! loopback TCP pair.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use epoll_bench::server::trigger::{Edge, Level, Trigger};
use epoll_bench::sys::epoll::{self, Epoll};

/// Long enough for a loaded machine to deliver loopback bytes.
const EXPECT_EVENT_MS: i32 = 2000;
/// How long "no event" is watched for; an event that should not exist
/// would be queued already, so this only has to cover delivery latency.
const EXPECT_NOTHING_MS: i32 = 50;

/// One socket registered in its own epoll set.
struct Watched {
    epoll: Epoll,
    name: &'static str,
}

impl Watched {
    fn new(fd: BorrowedFd<'_>, interest: u32, name: &'static str) -> Watched {
        let epoll = Epoll::new().expect("epoll_create1");
        epoll.add(fd, interest, 7).expect("EPOLL_CTL_ADD");
        Watched { epoll, name }
    }

    /// The events reported within `timeout_ms`, or `None`.
    fn wait(&self, timeout_ms: i32) -> Option<u32> {
        let mut events = epoll::event_buffer(4);
        let n = self
            .epoll
            .wait(&mut events, timeout_ms)
            .expect("epoll_wait");
        assert!(n <= 1, "{}: one fd registered, {n} events", self.name);
        (n == 1).then(|| {
            let event = events[0];
            assert_eq!({ event.u64 }, 7, "{}: token", self.name);
            event.events
        })
    }

    fn expect_readable(&self, when: &str) {
        let events = self.wait(EXPECT_EVENT_MS);
        assert!(
            events.is_some_and(|e| e & epoll::IN != 0),
            "{} {when}: expected EPOLLIN, got {events:?}",
            self.name
        );
    }

    fn expect_nothing(&self, when: &str) {
        let events = self.wait(EXPECT_NOTHING_MS);
        assert_eq!(events, None, "{} {when}: expected no event", self.name);
    }
}

/// Runs the partly-drained scenario on `reader`, fed by `writer`.
fn partly_drained_socket(writer: &mut impl Write, reader: &mut (impl Read + AsFd)) {
    let level = Watched::new(reader.as_fd(), Level::initial_interest(), "level-triggered");
    let edge = Watched::new(
        reader.as_fd(),
        Edge::<false>::initial_interest(),
        "edge-triggered",
    );
    assert_eq!(Edge::<false>::initial_interest() & epoll::ET, epoll::ET);
    assert_eq!(Level::initial_interest() & epoll::ET, 0);

    writer.write_all(&[1u8; 10]).expect("write 10 bytes");
    level.expect_readable("after 10 bytes arrived");
    edge.expect_readable("after 10 bytes arrived");

    let mut buf = [0u8; 64];
    reader.read_exact(&mut buf[..4]).expect("read 4 of 10");

    // Six bytes are still queued.
    level.expect_readable("with 6 bytes left (1st wait)");
    level.expect_readable("with 6 bytes left (2nd wait)");
    edge.expect_nothing("with 6 bytes left and no new data");
    edge.expect_nothing("with 6 bytes left and no new data, again");

    // New bytes are a new edge, although the socket was never drained.
    writer.write_all(&[2u8]).expect("write 1 more byte");
    edge.expect_readable("after 1 new byte");
    edge.expect_nothing("after that edge was reported");
    level.expect_readable("after 1 new byte");

    reader
        .read_exact(&mut buf[..7])
        .expect("read the 7 queued bytes");
    assert_eq!(&buf[..7], &[1, 1, 1, 1, 1, 1, 2]);
    level.expect_nothing("once drained");
    edge.expect_nothing("once drained");
}

#[test]
fn unix_socket_pair_level_repeats_edge_waits_for_new_data() {
    let (mut writer, mut reader) = UnixStream::pair().expect("socketpair");
    reader
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    partly_drained_socket(&mut writer, &mut reader);
}

#[test]
fn tcp_loopback_pair_level_repeats_edge_waits_for_new_data() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let mut writer = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    writer.set_nodelay(true).expect("TCP_NODELAY");
    let (mut reader, _) = listener.accept().expect("accept");
    reader
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    partly_drained_socket(&mut writer, &mut reader);
}

/// The hang-up case the short-read ET variants must handle: a FIN queued
/// behind data is reported once to an edge-triggered registration (with
/// the data), never again; a level-triggered one keeps reporting it.
#[test]
fn edge_reports_a_queued_hang_up_once() {
    let (mut writer, mut reader) = UnixStream::pair().expect("socketpair");
    let fd = reader.as_fd();
    let level = Watched::new(fd, Level::initial_interest(), "level-triggered");
    let edge = Watched::new(fd, Edge::<false>::initial_interest(), "edge-triggered");
    writer.write_all(b"last").expect("write");
    drop(writer);
    let reported = edge.wait(EXPECT_EVENT_MS).expect("an event");
    assert_ne!(reported & epoll::IN, 0, "{reported:#x}");
    assert_ne!(reported & epoll::RDHUP, 0, "{reported:#x}");
    let mut buf = [0u8; 16];
    assert_eq!(reader.read(&mut buf).expect("read"), 4);
    edge.expect_nothing("after the data was read, EOF still unread");
    let level_events = level.wait(EXPECT_EVENT_MS).expect("an event");
    assert_ne!(level_events & epoll::RDHUP, 0, "{level_events:#x}");
    assert_eq!(reader.read(&mut buf).expect("read EOF"), 0);
}
