//! `serve --processes P` against the real binary: P processes on one port
//! serve like one server (every byte verified), the first answers for all
//! with a report that is the sum of its processes', no worker outlives it,
//! and P processes hold more connections than one process's fd limit lets
//! one hold. Loopback only; every wait is bounded.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use epoll_bench::protocol::{self, Protocol};
use epoll_bench::server::ServerReport;
use epoll_bench::sys::SyscallKind;
use epoll_bench::sys::memory::children_of;

use support::*;

/// Enough connections that SO_REUSEPORT's hash gives every process some
/// (the chance that 32 all land on one of two is 2^-31).
const CONNECTIONS: usize = 32;

/// The gathered report is the sum of its threads, thread by thread and
/// process by process.
fn assert_is_the_sum(report: &ServerReport, processes: usize, threads_each: usize) {
    assert_eq!(report.processes.len(), processes, "{:?}", report.processes);
    assert_eq!(report.threads.len(), processes * threads_each);
    assert!(report.processes.iter().all(|p| p.threads == threads_each));
    for (index, thread) in report.threads.iter().enumerate() {
        assert_eq!(
            thread.thread_index, index,
            "threads numbered across processes"
        );
    }
    let requests: u64 = report
        .threads
        .iter()
        .map(|t| t.counters.requests_parsed)
        .sum();
    assert_eq!(report.total.counters.requests_parsed, requests);
    for kind in SyscallKind::ALL {
        let calls: u64 = report
            .threads
            .iter()
            .map(|t| t.syscalls.calls.get(kind))
            .sum();
        assert_eq!(report.total.syscalls.calls.get(kind), calls, "{kind:?}");
    }
    let cpu: f64 = report
        .threads
        .iter()
        .map(|t| t.usage.cpu_user_seconds + t.usage.cpu_system_seconds)
        .sum();
    let total_cpu = report.total.usage.cpu_user_seconds + report.total.usage.cpu_system_seconds;
    assert!((total_cpu - cpu).abs() < 1e-9, "{total_cpu} vs {cpu}");
}

#[test]
fn two_processes_serve_every_byte_and_report_as_one_server() {
    let server = ServerProcess::start("lt-writev", Protocol::Frame, &["--processes", "2"]);
    let workers = children_of(server.pid);
    assert_eq!(workers.len(), 1, "one worker process: {workers:?}");
    let mut streams: Vec<TcpStream> = (0..CONNECTIONS).map(|_| connect(server.addr)).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        for seq in 0..3u32 {
            let data = payload(1000 * i as u64 + seq as u64, 1 + 700 * seq as usize);
            round_trip(
                stream,
                Protocol::Frame,
                seq,
                &data,
                &format!("conn {i} seq {seq}"),
            );
        }
    }
    // A frame split into single bytes, and three pipelined in one write.
    let stream = &mut streams[0];
    let data = payload(7, 40);
    for byte in encode_request(Protocol::Frame, &data) {
        stream.write_all(&[byte]).unwrap();
    }
    read_expected(
        stream,
        &expected_response(Protocol::Frame, 3, &data),
        "split",
    );
    let pipelined: Vec<Vec<u8>> = (0..3).map(|i| payload(70 + i, 100)).collect();
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for (i, data) in pipelined.iter().enumerate() {
        request.extend(encode_request(Protocol::Frame, data));
        expected.extend(expected_response(Protocol::Frame, 4 + i as u32, data));
    }
    stream.write_all(&request).unwrap();
    read_expected(stream, &expected, "pipelined");
    // An oversized frame closes that connection only.
    let mut bad = connect(server.addr);
    bad.write_all(&protocol::request_header(u32::MAX)).unwrap();
    expect_eof(&mut bad, "oversized frame");
    round_trip(
        &mut streams[1],
        Protocol::Frame,
        3,
        b"still served",
        "after oversized",
    );

    let report = server.snapshot();
    assert_is_the_sum(&report, 2, 1);
    assert_eq!(report.processes[0].pid, server.pid);
    assert_eq!(report.processes[1].pid, workers[0]);
    let requests = (CONNECTIONS * 3 + 1 + 3 + 1) as u64;
    assert_eq!(report.total.counters.requests_parsed, requests);
    assert_eq!(report.total.counters.protocol_errors, 1);
    for thread in &report.threads {
        assert!(
            thread.counters.connections_accepted > 0,
            "both processes serve: {thread:?}"
        );
    }
    assert!(
        report
            .processes
            .iter()
            .all(|p| p.memory.is_some_and(|m| m.rss_bytes > 0))
    );
    assert!(report.memory().unwrap().rss_bytes > report.processes[0].memory.unwrap().rss_bytes);

    drop(streams);
    let last = server.terminate();
    assert_is_the_sum(&last, 2, 1);
    assert_eq!(last.total.counters.requests_parsed, requests);
}

#[test]
fn echo_is_served_by_every_process_too() {
    let server = ServerProcess::start(
        "et-rw",
        Protocol::Echo,
        &["--processes", "2", "--threads", "2"],
    );
    let mut streams: Vec<TcpStream> = (0..CONNECTIONS).map(|_| connect(server.addr)).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        let data = payload(500 + i as u64, 3000);
        round_trip(stream, Protocol::Echo, 0, &data, &format!("echo conn {i}"));
    }
    let report = server.snapshot();
    assert_is_the_sum(&report, 2, 2);
    assert_eq!(report.total.counters.bytes_out, (CONNECTIONS * 3000) as u64);
    drop(streams);
    server.terminate();
}

#[test]
fn thread_per_connection_servers_run_as_several_processes_too() {
    let server = ServerProcess::start("tpc-rw", Protocol::Frame, &["--processes", "2"]);
    let mut streams: Vec<TcpStream> = (0..CONNECTIONS).map(|_| connect(server.addr)).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        let data = payload(900 + i as u64, 2000);
        round_trip(stream, Protocol::Frame, 0, &data, &format!("tpc conn {i}"));
    }
    let report = server.snapshot();
    assert_is_the_sum(&report, 2, 1);
    assert_eq!(report.total.counters.requests_parsed, CONNECTIONS as u64);
    for thread in &report.threads {
        assert!(
            thread.counters.connections_accepted > 0,
            "both processes start connection threads: {thread:?}"
        );
    }
    drop(streams);
    let last = server.terminate();
    assert_is_the_sum(&last, 2, 1);
    assert_eq!(last.total.counters.connections_closed, CONNECTIONS as u64);
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'))
        })
}

#[test]
fn killing_the_parent_leaves_no_worker() {
    let server = ServerProcess::start("lt-rw", Protocol::Frame, &["--processes", "3"]);
    let workers = children_of(server.pid);
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert!(workers.iter().all(|&w| alive(w)));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while workers.iter().any(|&w| alive(w)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = workers.iter().copied().filter(|&w| alive(w)).collect();
    assert!(
        left.is_empty(),
        "workers outlived their SIGKILLed parent: {left:?}"
    );
}

/// Holds `count` connections to `server`, each answered once; the count
/// served within the deadline.
fn served_connections(addr: std::net::SocketAddr, count: usize) -> usize {
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = connect(addr);
        stream
            .write_all(&encode_request(Protocol::Frame, &payload(i as u64, 8)))
            .unwrap();
        streams.push(stream);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut served = 0;
    for stream in &mut streams {
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        let mut response = [0u8; protocol::RESPONSE_HEADER_BYTES + 8];
        if stream.read_exact(&mut response).is_ok() {
            served += 1;
        }
    }
    served
}

#[test]
fn processes_hold_more_connections_than_one_process_may() {
    // Every process of the server is allowed 40 more fds than it has open:
    // one process can hold 40 connections, three can hold 120.
    const PER_PROCESS: usize = 40;
    const WANTED: usize = 75;
    let single = ServerProcess::start("lt-rw", Protocol::Frame, &[]);
    let limit = nofile_limit_leaving(&single.fd_numbers(), PER_PROCESS);
    epoll_bench::sys::rlimit::set_process_nofile_soft(single.pid, limit).unwrap();
    let one = served_connections(single.addr, WANTED);
    assert!(
        one <= PER_PROCESS,
        "one process served {one} > {PER_PROCESS}"
    );
    drop(single);

    let multi = ServerProcess::start("lt-rw", Protocol::Frame, &["--processes", "3"]);
    let mut pids = vec![multi.pid];
    pids.extend(children_of(multi.pid));
    assert_eq!(pids.len(), 3);
    for &pid in &pids {
        let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        let limit = nofile_limit_leaving(&open, PER_PROCESS);
        epoll_bench::sys::rlimit::set_process_nofile_soft(pid, limit).unwrap();
    }
    let all = served_connections(multi.addr, WANTED);
    assert_eq!(all, WANTED, "three processes served {all} of {WANTED}");
    let report = multi.snapshot();
    assert_eq!(report.total.counters.connections_accepted, WANTED as u64);
    assert!(
        report
            .threads
            .iter()
            .all(|t| t.counters.connections_accepted as usize <= PER_PROCESS)
    );
}
