//! Checks on mmview(2) results, and the errno side of libc calls.

use std::fmt::{self, Debug};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::check::{ensure, ensure_eq, fail, Failure, TestResult};

/// The name and description of an errno: `EINVAL (Invalid argument)`.
pub fn errno_name(errno: i32) -> String {
    mmview::Error::from_errno(errno).to_string()
}

/// The errno of the last failed libc call of the calling thread.
pub fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The result of a libc call that returns -1 and sets errno on failure
/// (`mprotect`, `madvise`, `prctl`, `syscall`, ...): the value, or the
/// errno.
pub fn sys(ret: impl Into<libc::c_long>) -> Result<libc::c_long, i32> {
    let ret = ret.into();
    if ret == -1 {
        Err(last_errno())
    } else {
        Ok(ret)
    }
}

/// Turns the errno of a failed call into a failure that names the call.
pub trait ErrnoContext<T> {
    /// On error, a failure reading `"what: EINVAL (Invalid argument)"`.
    fn errno_context(self, what: impl fmt::Display) -> TestResult<T>;

    /// Like [`ErrnoContext::errno_context`], with the text computed only
    /// on error.
    fn with_errno_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> TestResult<T>;
}

impl<T> ErrnoContext<T> for Result<T, i32> {
    fn errno_context(self, what: impl fmt::Display) -> TestResult<T> {
        self.map_err(|e| Failure::new(format!("{what}: {}", errno_name(e))))
    }

    fn with_errno_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> TestResult<T> {
        self.map_err(|e| Failure::new(format!("{}: {}", what(), errno_name(e))))
    }
}

/// The calling thread's id.
pub fn gettid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Raises the soft and hard limit `resource` (`RLIMIT_MEMLOCK`,
/// `RLIMIT_CORE`, ...) of the calling process to unlimited; the errno on
/// failure.
pub fn unlimit(resource: libc::__rlimit_resource_t) -> Result<(), i32> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `unlimited` is a valid rlimit.
    sys(unsafe { libc::setrlimit(resource, &unlimited) }).map(drop)
}

/// A new anonymous mapping of `len` bytes with `prot` and `flags` (which
/// include `MAP_ANONYMOUS`), at an address the kernel picks: its address,
/// or the errno. Nothing unmaps it but the caller.
pub fn mmap_anon(len: usize, prot: libc::c_int, flags: libc::c_int) -> Result<usize, i32> {
    // SAFETY: a new mapping at an address the kernel picks touches no
    // existing memory.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
    if ptr == libc::MAP_FAILED {
        Err(last_errno())
    } else {
        Ok(ptr as usize)
    }
}

/// `mprotect(addr, len, prot)`; the errno on failure.
///
/// # Safety
///
/// The range is the caller's own memory, which it touches afterwards only
/// as `prot` allows (or where it expects the fault), and which no
/// reference relies on being accessible.
pub unsafe fn mprotect(addr: usize, len: usize, prot: libc::c_int) -> Result<(), i32> {
    // SAFETY: guaranteed by the caller.
    sys(unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) }).map(drop)
}

/// What a raw return value means: `returned 3` or `EINVAL (Invalid argument)`.
pub fn describe_raw(ret: i64) -> String {
    match ret.checked_neg().map(i32::try_from) {
        Some(Ok(errno)) if ret < 0 => errno_name(errno),
        _ => format!("returned {ret}"),
    }
}

/// Fails unless `result` is the error `errno`; `what` names the call.
pub fn expect_errno<T: Debug>(result: mmview::Result<T>, errno: i32, what: &str) -> TestResult {
    match result {
        Err(e) if e.is(errno) => Ok(()),
        Err(e) => fail!("{what}: expected {}, got {e}", errno_name(errno)),
        Ok(value) => fail!(
            "{what}: expected {}, but it succeeded with {value:?}",
            errno_name(errno)
        ),
    }
}

/// Issues the raw call `mmview(op, arg1, arg2)` and fails unless it returns
/// `-errno`.
///
/// Meant for calls that must be refused. Should a buggy kernel accept an
/// `MMVIEW_MIGRATE` here, the move is confined to the disposable test child
/// that reports the failure.
pub fn expect_raw_errno(op: i64, arg1: u64, arg2: u64, errno: i32) -> TestResult {
    // SAFETY: the call is expected to fail and change nothing; see above for
    // the case where the kernel is wrong.
    let ret = unsafe { mmview::raw_mmview(op, arg1, arg2) };
    if ret != -i64::from(errno) {
        fail!(
            "mmview({op}, {arg1:#x}, {arg2:#x}): expected {}, got {}",
            errno_name(errno),
            describe_raw(ret)
        );
    }
    Ok(())
}

/// A userfaultfd after the UFFDIO_API handshake, with the features and
/// ioctls the kernel offers.
pub fn userfaultfd_open() -> TestResult<(OwnedFd, u64, u64)> {
    #[repr(C)]
    struct UffdioApi {
        api: u64,
        features: u64,
        ioctls: u64,
    }
    const UFFD_API: u64 = 0xaa;
    /// _IOWR(0xAA, 0x3F, struct uffdio_api)
    const UFFDIO_API: u64 = 0xc018_aa3f;
    const UFFDIO_API_BIT: u64 = 1 << 0x3f;

    // SAFETY: plain system call with integer flags.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if fd < 0 {
        fail!("userfaultfd(2): {}", errno_name(last_errno()));
    }
    let fd = i32::try_from(fd)?;
    // SAFETY: the kernel just returned this descriptor; we are its only owner.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut api = UffdioApi {
        api: UFFD_API,
        features: 0,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API reads and writes one struct uffdio_api.
    if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API as _, &mut api) } != 0 {
        fail!("UFFDIO_API: {}", std::io::Error::last_os_error());
    }
    ensure_eq!(api.api, UFFD_API, "api version after UFFDIO_API");
    ensure!(
        api.ioctls & UFFDIO_API_BIT != 0,
        "UFFDIO_API offers no ioctls: {:#x}",
        api.ioctls
    );
    Ok((fd, api.features, api.ioctls))
}

/// UFFDIO_REGISTER of `[addr, addr + len)` for missing-page faults on
/// `uffd`; the errno on failure.
pub fn userfaultfd_register(uffd: &OwnedFd, addr: usize, len: usize) -> Result<(), i32> {
    #[repr(C)]
    struct UffdioRegister {
        start: u64,
        len: u64,
        mode: u64,
        ioctls: u64,
    }
    /// _IOWR(0xAA, 0x00, struct uffdio_register)
    const UFFDIO_REGISTER: u64 = 0xc020_aa00;
    const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
    let mut reg = UffdioRegister {
        start: addr as u64,
        len: len as u64,
        mode: UFFDIO_REGISTER_MODE_MISSING,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_REGISTER reads and writes one struct uffdio_register.
    if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER as _, &mut reg) } != 0 {
        return Err(last_errno());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_results() {
        // SAFETY: closing no descriptor changes nothing.
        let r = sys(unsafe { libc::close(-1) });
        assert_eq!(r, Err(libc::EBADF));
        let msg = r.errno_context("close(-1)").err().map(|f| f.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("close(-1): EBADF (Bad file descriptor)")
        );
        assert_eq!(sys(5), Ok(5));
        assert!(mmap_anon(4096, libc::PROT_READ, libc::MAP_PRIVATE).is_err());
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe_raw(3), "returned 3");
        assert_eq!(describe_raw(-22), "EINVAL (Invalid argument)");
        assert_eq!(describe_raw(i64::MIN), format!("returned {}", i64::MIN));
    }

    #[test]
    fn expect_errno_checks_the_value() {
        let einval: mmview::Result<u8> = Err(mmview::Error::from_errno(libc::EINVAL));
        assert!(expect_errno(einval, libc::EINVAL, "x").is_ok());
        let msg = expect_errno(einval, libc::EPERM, "x")
            .err()
            .map(|f| f.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("x: expected EPERM (Operation not permitted), got EINVAL (Invalid argument)")
        );
        let msg = expect_errno(Ok(5u8), libc::EPERM, "x")
            .err()
            .map(|f| f.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("x: expected EPERM (Operation not permitted), but it succeeded with 5")
        );
    }
}
