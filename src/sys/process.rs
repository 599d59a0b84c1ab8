//! Other programs as servers: starting one held just before `exec`, so that
//! counters inherited by every thread it will create can be attached first,
//! pinning it, and asking it to stop.
//!
//! Why held: perf counters opened with `inherit` follow the threads (and
//! children) a task creates *after* they are attached. A runtime such as
//! tokio's or Go's creates its threads as it starts, so counters attached
//! once the program is listening would miss them. The child therefore
//! reports its pid and waits on a pipe inside `pre_exec`; the parent
//! attaches, then lets it `exec`. `Command::spawn` returns only once the
//! child has exec'd, so it runs on a helper thread meanwhile.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::thread::JoinHandle;

use super::Fd;
use super::counters::{SyscallKind, finish_nix};

/// A child forked from `command` and waiting before its `exec`.
pub struct HeldChild {
    pid: u32,
    /// [`GO`] lets the child `exec`, [`GIVE_UP`] makes it exit (its
    /// `spawn` then fails). Not end of file: another child forked
    /// meanwhile may hold a copy of this end until it execs.
    release: Fd,
    spawning: JoinHandle<io::Result<Child>>,
}

const GO: u8 = 1;
const GIVE_UP: u8 = 0;

/// A pipe with both ends close-on-exec, so the program never inherits it.
fn pipe(flags: libc::c_int) -> io::Result<(Fd, Fd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is writable for two ints for the duration of the call.
    syscall!(Pipe2, pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | flags))?;
    Ok((Fd::from_new(fds[0]), Fd::from_new(fds[1])))
}

/// Forks `command` and holds it before `exec` (see the module comment).
pub fn spawn_held(mut command: Command) -> io::Result<HeldChild> {
    // Read without blocking: if the fork fails, a copy of the write end
    // in some other forked child would keep end of file from coming.
    let (pid_read, pid_write) = pipe(libc::O_NONBLOCK)?;
    let (release_read, release) = pipe(0)?;
    let (pid_out, wait_in) = (pid_write.raw(), release_read.raw());
    // SAFETY: the closure runs in the forked child, where only
    // async-signal-safe calls are allowed: getpid, write and read on
    // descriptors that are open in the child (the parent keeps its copies
    // open until `spawn` returns, below), no allocation, no lock.
    unsafe {
        command.pre_exec(move || {
            let pid = libc::getpid().to_ne_bytes();
            if libc::write(pid_out, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
                return Err(io::Error::last_os_error());
            }
            let mut byte = 0u8;
            loop {
                match libc::read(wait_in, (&mut byte as *mut u8).cast(), 1) {
                    1 if byte == GO => return Ok(()),
                    0 | 1 => return Err(io::Error::from_raw_os_error(libc::ECANCELED)),
                    _ if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
                    _ => return Err(io::Error::last_os_error()),
                }
            }
        });
    }
    let spawning = std::thread::Builder::new()
        .name("server-spawn".into())
        .spawn(move || {
            let child = command.spawn();
            // Only now: a child that failed before writing its pid leaves
            // the reader below at end of file instead of waiting forever.
            drop((pid_write, release_read));
            child
        })?;
    let mut pid = [0u8; 4];
    let mut got = 0;
    while got < pid.len() {
        // SAFETY: `pid[got..]` is writable for its length for the call.
        match syscall!(
            Read,
            read(
                pid_read.raw(),
                pid[got..].as_mut_ptr().cast(),
                pid.len() - got
            )
        ) {
            Ok(0) => break,
            Ok(n) => got += n as usize,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !spawning.is_finished() => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got < pid.len() {
        // The fork failed or the child died before reporting: `spawn` says why.
        drop(release);
        return Err(match spawning.join() {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => io::Error::other("the child exec'd without reporting its pid"),
            Err(_) => io::Error::other("the spawning thread panicked"),
        });
    }
    Ok(HeldChild {
        pid: i32::from_ne_bytes(pid) as u32,
        release,
        spawning,
    })
}

impl HeldChild {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Lets the child `exec` the program; returns it once it has (or why
    /// it could not, e.g. no such program).
    pub fn release(self) -> io::Result<Child> {
        tell(&self.release, GO)?;
        drop(self.release);
        self.spawning
            .join()
            .map_err(|_| io::Error::other("the spawning thread panicked"))?
    }

    /// Makes the child exit without running the program.
    pub fn abandon(self) {
        let _ = tell(&self.release, GIVE_UP);
        let _ = self.spawning.join();
    }
}

fn tell(release: &Fd, byte: u8) -> io::Result<()> {
    let byte = [byte];
    // SAFETY: `byte` is readable for one byte for the call.
    syscall!(Write, write(release.raw(), byte.as_ptr().cast(), 1))?;
    Ok(())
}

/// Restricts process `pid`'s calling thread — for a held child, its only
/// thread, whose mask every thread it creates inherits — to `cpus`.
pub fn pin_process(pid: u32, cpus: &[usize]) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).map_err(io::Error::from)?;
    }
    finish_nix(
        SyscallKind::SchedSetaffinity,
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(pid as i32), &set),
    )
}

/// Sends SIGTERM to process `pid`: how a server is asked to stop.
pub fn terminate(pid: u32) -> io::Result<()> {
    finish_nix(
        SyscallKind::Kill,
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_child_runs_only_when_released() {
        let mut command = Command::new("/bin/sh");
        command.args(["-c", "exit 7"]);
        let held = spawn_held(command).unwrap();
        // Still the forked image: not exited, whatever the program does.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", held.pid())).unwrap();
        assert!(!stat.contains(" Z "), "{stat}");
        let mut child = held.release().unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(7));
    }

    #[test]
    fn a_missing_program_is_an_error_at_release_and_abandon_ends_the_child() {
        let held = spawn_held(Command::new("/no/such/program")).unwrap();
        let err = held.release().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        let held = spawn_held(Command::new("/bin/true")).unwrap();
        let pid = held.pid();
        held.abandon();
        // Its spawn failed and reaped it: the program never ran.
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
