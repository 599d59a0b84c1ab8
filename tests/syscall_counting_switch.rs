//! The run-time switch of in-process counting (`serve --no-syscall-counting`):
//! off, nothing is counted; on again, every call is counted exactly. A test
//! binary of its own: the switch is process-wide, and flipping it beside
//! other tests would take calls from their windows.

use std::fs::File;
use std::os::fd::AsFd;

use epoll_bench::sys::counters::{self, COUNTING_ENABLED, SyscallKind};

const READS: u64 = 1000;

fn reads_counted_over(reads: u64) -> u64 {
    let zero = File::open("/dev/zero").unwrap();
    let mut buf = [0u8; 16];
    let before = counters::snapshot();
    for _ in 0..reads {
        epoll_bench::sys::io::read(zero.as_fd(), &mut buf).unwrap();
    }
    counters::snapshot()
        .since(&before)
        .calls
        .get(SyscallKind::Read)
}

#[test]
fn switched_off_counts_nothing_and_switched_on_counts_every_call() {
    if !COUNTING_ENABLED {
        eprintln!("skipped: built without the count-syscalls feature");
        return;
    }
    assert!(counters::counting(), "counting starts switched on");
    assert_eq!(reads_counted_over(READS), READS);

    counters::set_counting(false);
    assert!(!counters::counting());
    assert_eq!(reads_counted_over(READS), 0);

    counters::set_counting(true);
    assert_eq!(reads_counted_over(READS), READS);
    assert_eq!(reads_counted_over(1), 1);
}
