//! Faults (SIGSEGV, SIGBUS) that a step of a test expects or must not
//! cause, observed in a forked child: after [`exit_on_fault`], a fault on
//! any thread ends the process at once with an exit code that names the
//! signal and whether its address was the watched one
//! ([`describe_fault_exit`] spells it out), and, through a [`StageLog`],
//! the step of the test it hit ([`stage`]).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};

use crate::check::{Failure, TestResult};

/// Exit code: SIGSEGV at an address in the watched range.
pub const SEGV_WATCHED: u8 = 90;
/// Exit code: SIGSEGV elsewhere.
pub const SEGV_ELSEWHERE: u8 = 91;
/// Exit code: SIGBUS at an address in the watched range.
pub const BUS_WATCHED: u8 = 92;
/// Exit code: SIGBUS elsewhere.
pub const BUS_ELSEWHERE: u8 = 93;

static WATCH_START: AtomicUsize = AtomicUsize::new(0);
static WATCH_END: AtomicUsize = AtomicUsize::new(0);
/// The step the process is at ([`stage`]), for the handler to report.
static STAGE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static STAGE_LEN: AtomicUsize = AtomicUsize::new(0);
/// Where the handler writes the stage ([`StageLog::install`]), or -1.
static STAGE_FD: AtomicI32 = AtomicI32::new(-1);

/// The handler: `_exit` with the code for the signal and its address
/// (async-signal-safe: atomics and `_exit` only).
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers,
    // and si_addr is the field of SIGSEGV and SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    let watched =
        WATCH_START.load(Ordering::Relaxed) <= addr && addr < WATCH_END.load(Ordering::Relaxed);
    let code = match (sig == libc::SIGBUS, watched) {
        (false, true) => SEGV_WATCHED,
        (false, false) => SEGV_ELSEWHERE,
        (true, true) => BUS_WATCHED,
        (true, false) => BUS_ELSEWHERE,
    };
    let fd = STAGE_FD.load(Ordering::Relaxed);
    let stage = STAGE.load(Ordering::Relaxed);
    if fd >= 0 && !stage.is_null() {
        // SAFETY: `stage` points to a static string of STAGE_LEN bytes
        // (see `stage`); write is async-signal-safe.
        unsafe { libc::write(fd, stage.cast(), STAGE_LEN.load(Ordering::Relaxed)) };
    }
    // SAFETY: ends the process; no state of it matters any more.
    unsafe { libc::_exit(i32::from(code)) };
}

/// Names the step the calling process is at: a fault from now on reports
/// it through the [`StageLog`] installed in the process.
pub fn stage(what: &'static str) {
    STAGE.store(std::ptr::null_mut(), Ordering::SeqCst);
    STAGE_LEN.store(what.len(), Ordering::SeqCst);
    STAGE.store(what.as_ptr().cast_mut(), Ordering::SeqCst);
}

/// A pipe through which a forked child's fault handler tells the parent
/// the [`stage`] the fault hit. Made by the parent before the fork.
pub struct StageLog {
    read: OwnedFd,
    write: OwnedFd,
}

impl StageLog {
    pub fn new() -> TestResult<StageLog> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(Failure::new(format!(
                "pipe2: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: pipe2 just returned these descriptors; nothing else owns
        // them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(StageLog { read, write })
    }

    /// In the child: the fault handler reports to this log.
    pub fn install(&self) {
        STAGE_FD.store(self.write.as_raw_fd(), Ordering::SeqCst);
    }

    /// In the parent, once the child ended: the stage it reported.
    pub fn reported(&self) -> Option<String> {
        let mut buf = [0u8; 256];
        // SAFETY: reads into a valid buffer (the pipe does not block).
        let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let n = usize::try_from(n).ok().filter(|&n| n > 0)?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

/// From now on a SIGSEGV or SIGBUS on any thread ends the calling process
/// with one of the exit codes above; `[start, end)` is the watched range.
/// Only for a forked child whose exit code the test reads.
pub fn exit_on_fault(start: usize, end: usize) -> TestResult {
    WATCH_START.store(start, Ordering::Relaxed);
    WATCH_END.store(end, Ordering::Relaxed);
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: an all-zero sigaction is valid (empty mask, no flags).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_fault as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO;
        // SAFETY: installs a handler that only reads atomics and exits.
        if unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) } != 0 {
            return Err(Failure::new(format!(
                "sigaction({sig}): {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

/// What an exit code of [`exit_on_fault`]'s handler means, if it is one.
pub fn describe_fault_exit(code: u8) -> Option<&'static str> {
    Some(match code {
        SEGV_WATCHED => "SIGSEGV at the watched address",
        SEGV_ELSEWHERE => "SIGSEGV outside the watched range",
        BUS_WATCHED => "SIGBUS at the watched address",
        BUS_ELSEWHERE => "SIGBUS outside the watched range",
        _ => return None,
    })
}
