//! Kernel-side syscall counts agree with the in-process ones for calls made
//! through `src/sys`, and expose calls made around it.
//!
//! These tests need perf tracepoint counters (root, or a permissive
//! `kernel.perf_event_paranoid`, and tracefs). Where the kernel refuses,
//! they print why and pass, except under CI (`CI` set), which runs as root
//! with tracefs mounted and so must really run them.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;

use epoll_bench::metrics::cross_check::{CrossCheck, cross_check};
use epoll_bench::sys::counters::{self, COUNTING_ENABLED, SyscallKind};
use epoll_bench::sys::perf::KernelSyscallCounters;
use epoll_bench::sys::thread::current_tid;

/// Counted reads in the window.
const COUNTED_READS: u64 = 1000;
/// Reads made behind the in-process counter's back: 5% of the counted
/// ones, well past the 1% tolerance.
const UNCOUNTED_READS: u64 = 50;

/// Counters on the calling thread, or `None` (after saying why) where the
/// kernel refuses them outside CI.
fn attach_here() -> Option<KernelSyscallCounters> {
    if !COUNTING_ENABLED {
        eprintln!("skipped: built without the count-syscalls feature, nothing to cross-check");
        return None;
    }
    match KernelSyscallCounters::attach(&[current_tid()]) {
        Ok(counters) => Some(counters),
        Err(reason) if std::env::var_os("CI").is_some() => {
            panic!("CI must run the kernel cross-check, but: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: kernel cross-check unavailable: {reason}");
            None
        }
    }
}

#[test]
fn counted_reads_match_the_kernel_exactly() {
    let Some(kernel) = attach_here() else { return };
    assert!(
        kernel.unavailable_kinds().is_empty(),
        "this kernel lacks tracepoints: {:?}",
        kernel.unavailable_kinds()
    );
    let zero = File::open("/dev/zero").unwrap();
    let mut buf = [0u8; 64];

    // Each kernel read is itself a `read` of this thread, counted by both
    // sides: taking the in-process snapshot after each kernel read puts the
    // same calls in both windows.
    let kernel_start = kernel.read().unwrap();
    let ours_start = counters::snapshot();
    for _ in 0..COUNTED_READS {
        assert_eq!(
            epoll_bench::sys::io::read(zero.as_fd(), &mut buf).unwrap(),
            buf.len()
        );
    }
    let kernel_end = kernel.read().unwrap();
    let ours_end = counters::snapshot();

    let kernel_window = kernel_end.since(&kernel_start);
    let ours_window = ours_end.since(&ours_start).calls;
    let kernel_reads = kernel_window.calls.get(SyscallKind::Read);
    assert!(kernel_reads > COUNTED_READS, "kernel saw {kernel_reads}");
    assert_eq!(kernel_reads, ours_window.get(SyscallKind::Read));
    assert!(kernel_window.total_syscalls >= kernel_reads);

    let report = cross_check(&ours_window, &kernel_window);
    assert!(report.agrees, "{}", CrossCheck::Checked(report.clone()));
    let read = &report.kinds[SyscallKind::Read as usize];
    assert_eq!(read.difference_calls, Some(0));
}

#[test]
fn reads_that_bypass_src_sys_fail_the_cross_check() {
    let Some(kernel) = attach_here() else { return };
    let mut zero = File::open("/dev/zero").unwrap();
    let mut buf = [0u8; 64];

    let kernel_start = kernel.read().unwrap();
    let ours_start = counters::snapshot();
    for _ in 0..COUNTED_READS {
        epoll_bench::sys::io::read(zero.as_fd(), &mut buf).unwrap();
    }
    // std's File::read issues read(2) directly: the kernel sees these, the
    // in-process counter does not.
    for _ in 0..UNCOUNTED_READS {
        zero.read_exact(&mut buf).unwrap();
    }
    let kernel_end = kernel.read().unwrap();
    let ours_end = counters::snapshot();

    let kernel_window = kernel_end.since(&kernel_start);
    let ours_window = ours_end.since(&ours_start).calls;
    assert_eq!(
        kernel_window.calls.get(SyscallKind::Read) - ours_window.get(SyscallKind::Read),
        UNCOUNTED_READS
    );
    let check = CrossCheck::of_window::<String>(&ours_window, Ok(&kernel_window));
    assert_eq!(check.passed(), Some(false), "{check}");
    let CrossCheck::Checked(report) = &check else {
        unreachable!()
    };
    assert_eq!(report.disagreeing_kinds, vec!["read".to_string()]);
    assert!(
        check.to_string().contains(&format!("(+{UNCOUNTED_READS})")),
        "{check}"
    );
}

#[test]
fn counters_watch_a_thread_other_than_the_reader() {
    let Some(_) = attach_here() else { return };
    // The server's threads are watched from another process; here another
    // thread stands in for them.
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        tid_tx.send(current_tid()).unwrap();
        go_rx.recv().unwrap();
        let zero = File::open("/dev/zero").unwrap();
        let mut buf = [0u8; 8];
        for _ in 0..COUNTED_READS {
            epoll_bench::sys::io::read(zero.as_fd(), &mut buf).unwrap();
        }
        counters::snapshot().calls.get(SyscallKind::Read)
    });
    let tid = tid_rx.recv().unwrap();
    let kernel = KernelSyscallCounters::attach(&[tid]).unwrap();
    assert_eq!(kernel.tids(), vec![tid]);
    let start = kernel.read().unwrap();
    go_tx.send(()).unwrap();
    let worker_reads = worker.join().unwrap();
    // The exited thread's counters keep their final values.
    let window = kernel.read().unwrap().since(&start);
    assert_eq!(worker_reads, COUNTED_READS);
    assert_eq!(window.calls.get(SyscallKind::Read), COUNTED_READS);
}

#[test]
fn a_kernel_lacking_some_tracepoints_counts_the_others() {
    let Some(_) = attach_here() else { return };
    // Copy the ids of raw_syscalls:sys_enter and sys_enter_read only, as a
    // kernel with only those tracepoints would show them.
    let real = epoll_bench::sys::perf::TRACEFS_EVENT_DIRS
        .iter()
        .map(std::path::Path::new)
        .find(|d| d.is_dir())
        .unwrap();
    let fake = tempfile::tempdir().unwrap();
    for relative in ["raw_syscalls/sys_enter", "syscalls/sys_enter_read"] {
        std::fs::create_dir_all(fake.path().join(relative)).unwrap();
        std::fs::copy(
            real.join(relative).join("id"),
            fake.path().join(relative).join("id"),
        )
        .unwrap();
    }
    let kernel =
        KernelSyscallCounters::attach_with_events_dir(&[current_tid()], fake.path()).unwrap();
    let unavailable: Vec<SyscallKind> = kernel
        .unavailable_kinds()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(unavailable.len(), SyscallKind::ALL.len() - 1);
    assert!(!unavailable.contains(&SyscallKind::Read));

    let zero = File::open("/dev/zero").unwrap();
    let mut buf = [0u8; 8];
    let kernel_start = kernel.read().unwrap();
    let ours_start = counters::snapshot();
    for _ in 0..10 {
        epoll_bench::sys::io::read(zero.as_fd(), &mut buf).unwrap();
    }
    // A counted call of a kind the kernel cannot see here.
    let _ = epoll_bench::sys::rusage::this_thread().unwrap();
    let kernel_window = kernel.read().unwrap().since(&kernel_start);
    let ours_window = counters::snapshot().since(&ours_start).calls;

    let report = cross_check(&ours_window, &kernel_window);
    assert!(report.agrees);
    assert!(report.unchecked_kinds.contains(&"getrusage".to_string()));
    assert_eq!(report.kinds[SyscallKind::Getrusage as usize].agrees, None);
    // getrusage is among the kernel's total but none of its tracked kinds.
    assert!(report.unaccounted_syscalls >= 1);
}

#[test]
fn counters_watch_another_process() {
    let Some(_) = attach_here() else { return };
    // The shell's `read` builtin reads a pipe one byte per read(2) (it must
    // not consume past the newline), so the line's length bounds the count.
    let mut shell = std::process::Command::new("sh")
        .args(["-c", "read line"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A single-threaded process: its only thread id is its process id.
    let kernel = KernelSyscallCounters::attach(&[shell.id() as i32]).unwrap();
    let start = kernel.read().unwrap();
    let line = b"twelve bytes\n";
    std::io::Write::write_all(shell.stdin.as_mut().unwrap(), line).unwrap();
    assert!(shell.wait().unwrap().success());
    let window = kernel.read().unwrap().since(&start);
    // The first read may have been entered before the counters attached.
    let reads = window.calls.get(SyscallKind::Read);
    assert!(reads >= line.len() as u64 - 1, "kernel saw {reads} reads");
    assert!(window.total_syscalls > reads);
}

#[test]
fn a_kernel_watch_brackets_a_window() {
    use epoll_bench::metrics::cross_check::KernelWatch;
    let Some(_) = attach_here() else { return };
    let watch = KernelWatch::attach(&[current_tid()]);
    assert_eq!(watch.unavailable_reason(), None);
    let zero = File::open("/dev/zero").unwrap();
    let mut buf = [0u8; 16];

    let start = watch.start();
    let ours_start = counters::snapshot();
    for _ in 0..COUNTED_READS {
        epoll_bench::sys::io::read(zero.as_fd(), &mut buf).unwrap();
    }
    let ours = counters::snapshot().since(&ours_start).calls;
    let check = watch.finish(&start, &ours);
    let CrossCheck::Checked(report) = &check else {
        panic!("{check}")
    };
    assert!(report.agrees, "{check}");
    // The closing kernel read is in the kernel window only: one call.
    let read = &report.kinds[SyscallKind::Read as usize];
    assert_eq!(read.in_process_calls, COUNTED_READS);
    assert_eq!(read.difference_calls, Some(1));
}
