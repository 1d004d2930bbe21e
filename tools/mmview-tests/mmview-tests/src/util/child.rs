//! Forked children that report a [`TestResult`]: steps of a test that need
//! a process of their own (one that changes process-wide state for good,
//! drops its privileges, or forms views the test process must not have).
//!
//! The child runs a closure; an `Ok(code)` becomes its exit code, a
//! failure (or skip) travels back through a pipe with its message, so the
//! parent's [`Reporting::finish`] returns the same result the closure did.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::check::{check_all, Context, Failure, TestResult};
use crate::framework::{describe_status, send};
use crate::util::process::{fork, pipe_fds, Child, PANICKED};

/// The exit code of a child whose closure failed (the message is in the
/// pipe).
const FAILED: i32 = 102;

/// A forked child running a closure; killed and reaped on drop unless
/// [`finished`](Reporting::finish).
pub struct Reporting {
    /// Dropped first: the child is killed and reaped before its pipe
    /// closes.
    child: Child,
    messages: OwnedFd,
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
    let (read, write) = pipe_fds(libc::O_CLOEXEC)?;
    let (read_fd, write_fd) = (read.as_raw_fd(), write.as_raw_fd());
    let body = || {
        // SAFETY: the child's copy of the read end, which nothing in the
        // child uses (it never returns from `fork`).
        unsafe { libc::close(read_fd) };
        match f() {
            Ok(code) => i32::from(code),
            Err(failure) => {
                let kind = if failure.is_skip() { 'S' } else { 'F' };
                send(write_fd, &format!("{kind}{failure}"));
                FAILED
            }
        }
    };
    // SAFETY: the caller vouches for what the child does.
    let child = unsafe { fork(body) }?;
    drop(write);
    Ok(Reporting {
        child,
        messages: read,
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

/// Runs `case(false)` (the change made in the base) and `case(true)` (made
/// in view 1) in a child each, named `from_base` and `from_view` in
/// failures. A skip of the first skips the test (the second does not run).
///
/// # Safety
///
/// As for [`spawn`].
pub unsafe fn run_both_directions(
    from_base: &str,
    from_view: &str,
    case: impl Fn(bool) -> TestResult<u8>,
) -> TestResult {
    // SAFETY: forwarded to the caller.
    let base = unsafe { run(from_base, || case(false)) };
    if let Err(e) = &base {
        if e.is_skip() {
            return base.map(drop);
        }
    }
    // SAFETY: as above.
    let view = unsafe { run(from_view, || case(true)) };
    check_all([base.map(drop), view.map(drop)])
}

impl Reporting {
    /// The child's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.child.pid()
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
    pub fn finish_status(self, what: &str) -> TestResult<libc::c_int> {
        let message = read_all(self.messages.as_raw_fd());
        let status = self.child.wait().context(what)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_come_back() {
        // SAFETY: the child allocates nothing on this path (the test
        // harness may be multithreaded).
        let ok = unsafe { run("a", || Ok(7)) };
        assert_eq!(ok.ok(), Some(7));
        // SAFETY: as above.
        let both = unsafe { run_both_directions("b", "v", |in_view| Ok(u8::from(in_view))) };
        assert!(both.is_ok());
    }
}
