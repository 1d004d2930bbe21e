//! Forked children and the pipes that pace them.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};

use crate::check::{Failure, TestResult};
use crate::framework::wait;

/// The exit code of a forked child whose function panicked.
pub const PANICKED: i32 = 101;

/// A forked child, killed and reaped on drop unless waited for.
pub struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

/// Forks; the child runs `child` and `_exit`s with the code it returns
/// ([`PANICKED`] if it panics, so that it never unwinds into the frames of
/// the parent's copy).
///
/// # Safety
///
/// In a multithreaded process only the forking thread goes on in the child:
/// `child` must then not need anything another thread may have held at the
/// fork (locks, the allocator of another libc, stdout). Reading and writing
/// memory, and `read`/`write`/`close`/`exec` system calls, are fine.
pub unsafe fn fork(child: impl FnOnce() -> i32) -> TestResult<Child> {
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
        let code = panic::catch_unwind(AssertUnwindSafe(child)).unwrap_or(PANICKED);
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    Ok(Child { pid, reaped: false })
}

impl Child {
    /// The child's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Blocks until the child ends; its wait status.
    pub fn wait(mut self) -> TestResult<libc::c_int> {
        let status = wait(self.pid);
        self.reaped = true;
        status.ok_or_else(|| Failure::new(format!("waitpid: {}", io::Error::last_os_error())))
    }

    /// Waits for the child and fails unless it exited with status 0;
    /// `explain` turns other exit codes into a reason.
    pub fn expect_success(self, what: &str, explain: impl Fn(i32) -> String) -> TestResult {
        let status = self.wait()?;
        if libc::WIFEXITED(status) {
            match libc::WEXITSTATUS(status) {
                0 => return Ok(()),
                PANICKED => return Err(Failure::new(format!("{what}: the child panicked"))),
                code => return Err(Failure::new(format!("{what}: {}", explain(code)))),
            }
        }
        Err(Failure::new(format!(
            "{what}: the child {}",
            crate::framework::describe_status(status)
        )))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: plain system calls on our own, not yet reaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            wait(self.pid);
        }
    }
}

/// A pipe (both ends close-on-exec) to send single bytes through, from a
/// parent to a forked child or back: `(receiver, sender)`. Each side drops
/// the end it does not use after the fork, so that the other side sees end
/// of file when it dies. Sending and receiving are async-signal-safe.
pub fn pipe() -> TestResult<(Receiver, Sender)> {
    let (read, write) = pipe_fds(libc::O_CLOEXEC)?;
    Ok((Receiver(read), Sender(write)))
}

/// `pipe2(flags)`: `(read end, write end)`.
pub fn pipe_fds(flags: libc::c_int) -> TestResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), flags) } != 0 {
        return Err(Failure::new(format!(
            "pipe2: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: pipe2 just returned these descriptors; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The read end of a [`pipe`].
pub struct Receiver(OwnedFd);

/// The write end of a [`pipe`].
pub struct Sender(OwnedFd);

impl Sender {
    /// Writes one byte; false on error.
    pub fn send(&self, byte: u8) -> bool {
        loop {
            // SAFETY: writes one byte from a valid buffer.
            let n = unsafe { libc::write(self.0.as_raw_fd(), (&byte as *const u8).cast(), 1) };
            if n == 1 {
                return true;
            }
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
    }
}

impl Receiver {
    /// Reads one byte; None at end of file or on error.
    pub fn recv(&self) -> Option<u8> {
        let mut byte = 0u8;
        loop {
            // SAFETY: reads one byte into a valid buffer.
            let n = unsafe { libc::read(self.0.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) };
            if n == 1 {
                return Some(byte);
            }
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_carries_bytes() -> TestResult {
        let (rx, tx) = pipe()?;
        assert!(tx.send(7) && tx.send(9));
        assert_eq!(rx.recv(), Some(7));
        assert_eq!(rx.recv(), Some(9));
        drop(tx);
        assert_eq!(rx.recv(), None);
        Ok(())
    }
}
