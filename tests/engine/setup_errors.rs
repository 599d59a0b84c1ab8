//! Cases that cannot start get a clear error: too many connections for the
//! fd limit, a CPU that does not exist, a refused target.

use std::net::{SocketAddr, TcpListener};

use epoll_bench::driver::engine::{EngineError, run_case};
use epoll_bench::driver::measurement::NoObserver;
use epoll_bench::protocol::Protocol;
use epoll_bench::results::workload::Shape;

use crate::harness::*;
use crate::test_server::*;

#[test]
fn more_connections_than_the_fd_limit_is_a_clear_error() {
    let (_, hard) = epoll_bench::sys::rlimit::nofile().unwrap();
    let too_many = u32::try_from(hard).unwrap_or(u32::MAX - 10);
    // Nothing listens there: the limit is checked before connecting.
    let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let c = case(Protocol::Frame, Shape::PingPong, too_many, fixed(64));
    let err = run_case(&c, &config(target), &mut NoObserver).unwrap_err();
    assert!(matches!(err, EngineError::FdLimit { .. }), "{err}");
    assert!(err.to_string().contains("RLIMIT_NOFILE"), "{err}");
    // Idle connections beyond one process go to worker processes, but the
    // active set must fit this one: refused with the limit named.
    let c = case(
        Protocol::Frame,
        Shape::IdleActive {
            idle_connections: 1,
        },
        too_many,
        fixed(64),
    );
    let err = run_case(&c, &config(target), &mut NoObserver).unwrap_err();
    assert!(matches!(err, EngineError::Scale(_)), "{err}");
    assert!(
        err.to_string()
            .contains("active connections stay in the driver's main process")
            && err.to_string().contains("RLIMIT_NOFILE"),
        "{err}"
    );
}

#[test]
fn driver_threads_can_be_pinned_and_a_bad_cpu_is_a_clear_error() {
    let server = TestServer::start(Protocol::Frame, Fault::None);
    let c = case(Protocol::Frame, Shape::PingPong, 4, fixed(64));
    let mut cfg = config(server.addr);
    cfg.driver_cpus = Some(vec![0]);
    let m = run_case(&c, &cfg, &mut NoObserver).unwrap();
    assert_clean(&m);
    assert!(m.driver_cpu_utilization() > 0.0);
    // Linux has reported steal in /proc/stat since 2.6.11.
    let steal = m.cpu_steal_percent.expect("steal recorded");
    assert!((0.0..=100.0).contains(&steal), "{steal}");
    cfg.driver_cpus = Some(vec![100_000]);
    let err = run_case(&c, &cfg, &mut NoObserver).unwrap_err();
    assert!(
        matches!(err, EngineError::Pin { cpu: 100_000, .. }),
        "{err}"
    );
}

#[test]
fn a_refused_target_is_a_connect_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let c = case(Protocol::Frame, Shape::PingPong, 4, fixed(64));
    let err = run_case(&c, &config(target), &mut NoObserver).unwrap_err();
    match &err {
        EngineError::Connect { requested, .. } => assert_eq!(*requested, 4),
        other => panic!("expected a connect error, got {other}"),
    }
    assert!(err.to_string().contains(&target.to_string()), "{err}");
}
