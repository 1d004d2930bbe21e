//! Forked children that report a [`TestResult`]: steps of a test that need
//! a process of their own (one that changes process-wide state for good,
//! drops its privileges, or forms views the test process must not have).
//!
//! The child runs a closure; an `Ok(code)` becomes its exit code, a
//! failure (or skip) travels back through a pipe with its message, so the
//! parent's [`Reporting::finish`] returns the same result the closure did.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};

use crate::check::{Failure, TestResult};
use crate::framework::{describe_status, wait};

/// The exit code of a child whose closure panicked.
const PANICKED: i32 = 101;
/// The exit code of a child whose closure failed (the message is in the
/// pipe).
const FAILED: i32 = 102;

/// A forked child running a closure; killed and reaped on drop unless
/// [`finished`](Reporting::finish).
pub struct Reporting {
    pid: libc::pid_t,
    messages: OwnedFd,
    reaped: bool,
}

/// Forks a child that runs `f`: its `Ok(code)` is the exit code, a failure
/// or skip is reported with its message.
///
/// # Safety
///
/// As for [`crate::util::process::fork`]: in a multithreaded process only
/// the forking thread goes on in the child, so `f` must not need anything
/// another thread may have held at the fork (locks, the allocator). From a
/// single-threaded process, `f` may do anything.
pub unsafe fn spawn(f: impl FnOnce() -> TestResult<u8>) -> TestResult<Reporting> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Failure::new(format!(
            "pipe2: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: pipe2 just returned these descriptors; nothing else owns them.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the caller vouches for what the child does; the child never
    // returns from this function.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Failure::new(format!(
            "fork: {}",
            io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        drop(read);
        let code = match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(code)) => i32::from(code),
            Ok(Err(failure)) => {
                let kind = if failure.is_skip() { 'S' } else { 'F' };
                write_all(write.as_raw_fd(), format!("{kind}{failure}").as_bytes());
                FAILED
            }
            Err(_) => PANICKED,
        };
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    drop(write);
    Ok(Reporting {
        pid,
        messages: read,
        reaped: false,
    })
}

/// [`spawn`] and [`Reporting::finish`]: runs `f` in a child and returns
/// its result; `what` names the child in failures.
///
/// # Safety
///
/// As for [`spawn`].
pub unsafe fn run(what: &str, f: impl FnOnce() -> TestResult<u8>) -> TestResult<u8> {
    // SAFETY: forwarded to the caller.
    unsafe { spawn(f) }?.finish(what)
}

impl Reporting {
    /// The child's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Waits for the child and returns what its closure returned; `what`
    /// names the child in failures. A child killed by a signal, or one
    /// that panicked, fails. Reads the report to its end first: processes
    /// that inherited the pipe from the child (its own children) keep this
    /// waiting until they exit too.
    pub fn finish(self, what: &str) -> TestResult<u8> {
        let status = self.finish_status(what)?;
        if libc::WIFEXITED(status) {
            return match libc::WEXITSTATUS(status) {
                PANICKED => Err(Failure::new(format!(
                    "{what}: the child panicked (see the diagnostics)"
                ))),
                FAILED => Err(Failure::new(format!(
                    "{what}: the child failed without a message"
                ))),
                code => u8::try_from(code)
                    .map_err(|_| Failure::new(format!("{what}: exit status {code}"))),
            };
        }
        Err(Failure::new(format!(
            "{what}: the child {}",
            describe_status(status)
        )))
    }

    /// As [`Reporting::finish`], but returns the wait status of a child
    /// that reported no failure (it may have been killed by a signal) for
    /// the caller to judge.
    pub fn finish_status(mut self, what: &str) -> TestResult<libc::c_int> {
        let message = read_all(self.messages.as_raw_fd());
        let status = wait(self.pid);
        self.reaped = true;
        let Some(status) = status else {
            return Err(Failure::new(format!(
                "{what}: waitpid: {}",
                io::Error::last_os_error()
            )));
        };
        let text = String::from_utf8_lossy(&message);
        if let Some(reason) = text.strip_prefix('F') {
            return Err(Failure::new(format!("{what}: {reason}")));
        }
        if let Some(reason) = text.strip_prefix('S') {
            return Err(Failure::skip(format!("{what}: {reason}")));
        }
        Ok(status)
    }
}

impl Drop for Reporting {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: plain system calls on our own, not yet reaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            wait(self.pid);
        }
    }
}

/// Writes all of `bytes` to `fd`, giving up on an error.
fn write_all(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid buffer of the given length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        match usize::try_from(n) {
            Ok(n) if n > 0 => bytes = &bytes[n..],
            _ => return,
        }
    }
}

/// Everything `fd` delivers until end of file (or an error).
fn read_all(fd: RawFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: reads into a valid buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        match usize::try_from(n) {
            Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => return out,
        }
    }
}

/// The errno of the last failed libc call of the calling thread.
pub fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_come_back() {
        // SAFETY: the child allocates nothing on this path (the test
        // harness may be multithreaded).
        let ok = unsafe { run("a", || Ok(7)) };
        assert_eq!(ok.ok(), Some(7));
    }
}
