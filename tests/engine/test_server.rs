//! A small server written here (one std thread per connection, loopback
//! only) that answers correctly or misbehaves in one chosen way.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use epoll_bench::protocol::Protocol;

/// How a test server misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Fault {
    None,
    /// Flips one payload byte of response number `n` on every connection.
    FlipByteInResponse(u64),
    /// Sends `seq + 1` in response number `n`.
    WrongSeqInResponse(u64),
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
    pub(crate) acceptor: Option<JoinHandle<()>>,
}

impl TestServer {
    pub(crate) fn start(protocol: Protocol, fault: Fault) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let answered = Arc::new(AtomicU64::new(0));
        let acceptor = {
            let (stop, accepted, answered) = (stop.clone(), accepted.clone(), answered.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            accepted.fetch_add(1, Ordering::AcqRel);
                            stream.set_nonblocking(false).unwrap();
                            stream.set_nodelay(true).unwrap();
                            // Bounded: a stuck read ends when the test stops.
                            stream
                                .set_read_timeout(Some(Duration::from_millis(200)))
                                .unwrap();
                            let (stop, answered) = (stop.clone(), answered.clone());
                            std::thread::spawn(move || {
                                serve(stream, protocol, fault, &stop, &answered)
                            });
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

pub(crate) fn serve(
    mut stream: TcpStream,
    protocol: Protocol,
    fault: Fault,
    stop: &AtomicBool,
    answered: &AtomicU64,
) {
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
        Protocol::File => panic!("the engine test server does not speak the file protocol"),
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
