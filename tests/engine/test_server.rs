//! A small server written here (one std thread per connection, loopback
//! only) that answers correctly or misbehaves in one chosen way.
//!
//! In the file protocol it serves the served file's bytes computed from
//! the protocol's definition (`fill_served_file`), not read from a file:
//! the driver is tested against the contract, without the real servers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use epoll_bench::protocol::Protocol;
use epoll_bench::protocol::file::{FILE_REQUEST_BYTES, FileRequest, fill_served_file};

/// File requests a test server keeps for inspection (per server, the
/// first ones received): enough for any test's assertions, bounded so a
/// long case cannot grow it without limit.
pub(crate) const KEPT_FILE_REQUESTS: usize = 10_000;

/// How a test server misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Fault {
    None,
    /// Flips one payload byte of response number `n` on every connection.
    FlipByteInResponse(u64),
    /// Sends `seq + 1` in response number `n`.
    WrongSeqInResponse(u64),
    /// File protocol: answers response number `n` with the right length
    /// from the wrong place (one page further into the file, or back
    /// where the request is at the file's end).
    WrongOffsetInResponse(u64),
    /// Closes every connection after answering `n` requests.
    CloseAfter(u64),
    /// Reads requests and never answers.
    Silent,
}

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) accepted: Arc<AtomicU64>,
    pub(crate) answered: Arc<AtomicU64>,
    /// File protocol: the requests received, as decoded.
    pub(crate) file_requests: Arc<Mutex<Vec<FileRequest>>>,
    pub(crate) acceptor: Option<JoinHandle<()>>,
}

/// What every connection of a test server shares.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) answered: Arc<AtomicU64>,
    pub(crate) file_requests: Arc<Mutex<Vec<FileRequest>>>,
}

impl TestServer {
    pub(crate) fn start(protocol: Protocol, fault: Fault) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let answered = Arc::new(AtomicU64::new(0));
        let file_requests = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let accepted = accepted.clone();
            let shared = Shared {
                stop: stop.clone(),
                answered: answered.clone(),
                file_requests: file_requests.clone(),
            };
            std::thread::spawn(move || {
                while !shared.stop.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            accepted.fetch_add(1, Ordering::AcqRel);
                            stream.set_nonblocking(false).unwrap();
                            stream.set_nodelay(true).unwrap();
                            // Bounded: a stuck read ends when the test stops.
                            stream
                                .set_read_timeout(Some(Duration::from_millis(200)))
                                .unwrap();
                            let shared = shared.clone();
                            std::thread::spawn(move || serve(stream, protocol, fault, &shared));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            })
        };
        TestServer {
            addr,
            stop,
            accepted,
            answered,
            file_requests,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Reads exactly `buf.len()` bytes, retrying read timeouts until `stop`.
/// False on EOF, error or stop.
pub(crate) fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::Acquire) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

pub(crate) fn serve(mut stream: TcpStream, protocol: Protocol, fault: Fault, shared: &Shared) {
    let (stop, answered) = (&*shared.stop, &*shared.answered);
    let mut seq: u64 = 0;
    match protocol {
        Protocol::Frame => loop {
            let mut header = [0u8; 4];
            if !read_full(&mut stream, &mut header, stop) {
                return;
            }
            let len = u32::from_be_bytes(header);
            let mut response = Vec::with_capacity(8 + len as usize);
            let wire_seq = match fault {
                Fault::WrongSeqInResponse(n) if n == seq => seq as u32 + 1,
                _ => seq as u32,
            };
            response.extend_from_slice(&len.to_be_bytes());
            response.extend_from_slice(&wire_seq.to_be_bytes());
            response.resize(8 + len as usize, 0);
            if !read_full(&mut stream, &mut response[8..], stop) {
                return;
            }
            if let Fault::FlipByteInResponse(n) = fault
                && n == seq
                && len > 0
            {
                response[8 + len as usize / 2] ^= 0x20;
            }
            match fault {
                Fault::Silent => {}
                Fault::CloseAfter(n) if seq >= n => return,
                _ => {
                    if stream.write_all(&response).is_err() {
                        return;
                    }
                    answered.fetch_add(1, Ordering::AcqRel);
                }
            }
            seq += 1;
        },
        Protocol::File => serve_file(stream, fault, shared),
        Protocol::Echo => {
            let mut buf = [0u8; 16 * 1024];
            let mut echoed: u64 = 0;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if let Fault::FlipByteInResponse(byte) = fault
                            && (echoed..echoed + n as u64).contains(&byte)
                        {
                            buf[(byte - echoed) as usize] ^= 0x20;
                        }
                        if fault == Fault::Silent {
                            continue;
                        }
                        if stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                        echoed += n as u64;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        }
    }
}

/// The file protocol: each 12-byte request answered with the header and
/// the file's bytes at the requested range (or the fault's wrong ones).
fn serve_file(mut stream: TcpStream, fault: Fault, shared: &Shared) {
    let mut seq: u64 = 0;
    loop {
        let mut bytes = [0u8; FILE_REQUEST_BYTES];
        if !read_full(&mut stream, &mut bytes, &shared.stop) {
            return;
        }
        let request = FileRequest::decode(&bytes);
        {
            let mut kept = shared.file_requests.lock().unwrap();
            if kept.len() < KEPT_FILE_REQUESTS {
                kept.push(request);
            }
        }
        // A request outside the file is the driver's bug: close, as a
        // real server does on a protocol error.
        if request.check(u32::MAX).is_err() {
            return;
        }
        let len = request.len_bytes;
        let wire_seq = match fault {
            Fault::WrongSeqInResponse(n) if n == seq => seq as u32 + 1,
            _ => seq as u32,
        };
        let offset = match fault {
            Fault::WrongOffsetInResponse(n) if n == seq => {
                let shifted = request.offset_bytes + 4096;
                if (FileRequest {
                    offset_bytes: shifted,
                    ..request
                })
                .check(u32::MAX)
                .is_ok()
                {
                    shifted
                } else {
                    request.offset_bytes - 4096
                }
            }
            _ => request.offset_bytes,
        };
        let mut response = Vec::with_capacity(8 + len as usize);
        response.extend_from_slice(&len.to_be_bytes());
        response.extend_from_slice(&wire_seq.to_be_bytes());
        response.resize(8 + len as usize, 0);
        fill_served_file(offset, &mut response[8..]);
        if let Fault::FlipByteInResponse(n) = fault
            && n == seq
            && len > 0
        {
            response[8 + len as usize / 2] ^= 0x20;
        }
        match fault {
            Fault::Silent => {}
            Fault::CloseAfter(n) if seq >= n => return,
            _ => {
                if stream.write_all(&response).is_err() {
                    return;
                }
                shared.answered.fetch_add(1, Ordering::AcqRel);
            }
        }
        seq += 1;
    }
}
