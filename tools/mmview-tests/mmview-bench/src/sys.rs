//! System helpers: memory regions, timed fork(), pipes, /proc/meminfo,
//! and running code in a view.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::time::Duration;

use crate::clock::Stamp;

use mmview::ViewId;

use crate::measure::{broken, mm, Failure, Result};

/// One mebibyte.
pub const MIB: usize = 1 << 20;

/// The base page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// The text of the last OS error.
fn os_error() -> io::Error {
    io::Error::last_os_error()
}

/// Private anonymous read-write memory in base pages (`MADV_NOHUGEPAGE`:
/// the guest has THP "always", and a fault or a copy must cost one base page
/// so that sizes mean page counts). Unmapped on drop.
///
/// The memory is only accessed through raw pointers (never through Rust
/// references), so it may change under the program, e.g. when the thread
/// migrates to another view.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    page: usize,
}

impl Region {
    /// A new region of `len` bytes (rounded up to pages), not yet touched.
    pub fn new(len: usize) -> Result<Region> {
        let page = page_size();
        let len = len.div_ceil(page).max(1) * page;
        // SAFETY: a new mapping at an address the kernel picks touches no
        // existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            broken!("mmap of {} MiB: {}", len / MIB, os_error());
        }
        let Some(ptr) = NonNull::new(ptr.cast::<u8>()) else {
            broken!("mmap returned NULL");
        };
        let region = Region { ptr, len, page };
        // SAFETY: the range is our fresh mapping.
        if unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_NOHUGEPAGE) } != 0 {
            broken!("madvise(MADV_NOHUGEPAGE): {}", os_error());
        }
        Ok(region)
    }

    /// A new region with every page written once (`value ^ index` in the
    /// first word of page `index`).
    pub fn touched(len: usize, value: u64) -> Result<Region> {
        let region = Region::new(len)?;
        region.write_pages(0, region.pages(), value);
        Ok(region)
    }

    /// The start address.
    pub fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The number of pages.
    pub fn pages(&self) -> usize {
        self.len / self.page
    }

    /// The page size.
    pub fn page(&self) -> usize {
        self.page
    }

    /// The first word of page `index`.
    fn word(&self, index: usize) -> *mut u64 {
        assert!(index < self.pages());
        // SAFETY: the page lies inside the mapping.
        unsafe { self.ptr.as_ptr().add(index * self.page).cast::<u64>() }
    }

    /// Writes `value ^ index` into the first word of pages `from..to`: one
    /// store per page, in order.
    pub fn write_pages(&self, from: usize, to: usize, value: u64) {
        for index in from..to.min(self.pages()) {
            // SAFETY: the word is inside the mapping, which is writable and
            // only accessed through raw pointers.
            unsafe { self.word(index).write_volatile(value ^ index as u64) };
        }
    }

    /// Reads the first word of every page, in order; their wrapping sum.
    pub fn read_pages(&self) -> u64 {
        let mut sum = 0u64;
        for index in 0..self.pages() {
            // SAFETY: the word is inside the mapping, which is readable.
            sum = sum.wrapping_add(unsafe { self.word(index).read_volatile() });
        }
        sum
    }

    /// What [`Region::read_pages`] returns after `write_pages(0, pages, value)`.
    pub fn expected_sum(&self, value: u64) -> u64 {
        (0..self.pages() as u64).fold(0u64, |sum, index| sum.wrapping_add(value ^ index))
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: we own the mapping; nothing refers to it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A forked child, killed and reaped on drop unless waited for.
pub struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

impl Child {
    /// Waits for the child to end; fails unless it exited with status 0.
    pub fn wait(mut self) -> Result<()> {
        let status = waitpid(self.pid);
        self.reaped = true;
        match status {
            Some(s) if libc::WIFEXITED(s) && libc::WEXITSTATUS(s) == 0 => Ok(()),
            Some(s) => broken!("fork child ended with wait status {s:#x}"),
            None => broken!("waitpid: {}", os_error()),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: plain system calls on our own, not yet reaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            waitpid(self.pid);
        }
    }
}

/// Blocks until `pid` ends; its wait status (None if waitpid failed).
pub fn waitpid(pid: libc::pid_t) -> Option<libc::c_int> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Some(status);
        }
        if r < 0 && os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// Forks. The child runs `child` and `_exit`s with its result; the parent
/// gets the child and the time it spent in `fork()`.
///
/// In a multithreaded process `child` may only do async-signal-safe things:
/// read and write memory, `read`/`write`/`close` file descriptors. No
/// allocation, no locks, no printing.
pub fn fork_timed(child: impl FnOnce() -> i32) -> Result<(Child, Duration)> {
    let start = Stamp::now();
    // SAFETY: the child only runs `child`, which the caller keeps
    // async-signal-safe, and then _exits.
    let pid = unsafe { libc::fork() };
    let elapsed = start.elapsed();
    if pid < 0 {
        broken!("fork: {}", os_error());
    }
    if pid == 0 {
        let code = child();
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    Ok((Child { pid, reaped: false }, elapsed))
}

/// A pipe: (read end, write end), both close-on-exec.
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        broken!("pipe2: {}", os_error());
    }
    // SAFETY: pipe2 just returned these descriptors; nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads exactly `buf.len()` bytes (async-signal-safe); false on EOF or error.
pub fn read_exact(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the rest of `buf` is a valid writable buffer.
        let n = unsafe { libc::read(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done) };
        match usize::try_from(n) {
            Ok(0) => return false,
            Ok(n) => done += n,
            Err(_) if os_error().kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Writes all of `buf` (async-signal-safe); false on error.
pub fn write_all(fd: RawFd, buf: &[u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the rest of `buf` is a valid buffer.
        let n = unsafe { libc::write(fd, buf[done..].as_ptr().cast(), buf.len() - done) };
        match usize::try_from(n) {
            Ok(n) if n > 0 => done += n,
            Err(_) if os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
    true
}

/// In a fork child: closes `release_w` (the child's copy of the parent's
/// write end) and blocks until the parent closes its own. Async-signal-safe.
pub fn wait_for_release(release_r: RawFd, release_w: RawFd) {
    // SAFETY: plain system call on a descriptor this process owns.
    unsafe { libc::close(release_w) };
    let mut byte = [0u8; 1];
    read_exact(release_r, &mut byte);
}

/// A field of /proc/meminfo, in kB.
pub fn meminfo_kib(key: &str) -> Result<u64> {
    let text = match std::fs::read_to_string("/proc/meminfo") {
        Ok(text) => text,
        Err(e) => broken!("reading /proc/meminfo: {e}"),
    };
    parse_meminfo(&text, key).ok_or_else(|| Failure::Broken(format!("/proc/meminfo has no {key}")))
}

/// Memory the kernel could hand out now, in KiB: `MemAvailable` of
/// /proc/meminfo plus the free pages parked on per-CPU lists (the `count:`
/// lines of /proc/zoneinfo). MemAvailable leaves those out, and 6.12 lets
/// them grow to an eighth of memory after a large free, to drain back over
/// seconds: without them, memory freed just before a reading looks in use.
pub fn available_kib() -> Result<u64> {
    let available = meminfo_kib("MemAvailable")?;
    let zoneinfo = match std::fs::read_to_string("/proc/zoneinfo") {
        Ok(text) => text,
        Err(e) => broken!("reading /proc/zoneinfo: {e}"),
    };
    let page_kib = (page_size() / 1024) as u64;
    Ok(available + pcp_pages(&zoneinfo) * page_kib)
}

/// The pages on per-CPU free lists, from /proc/zoneinfo text.
pub fn pcp_pages(zoneinfo: &str) -> u64 {
    zoneinfo
        .lines()
        .filter_map(|line| line.trim().strip_prefix("count:"))
        .filter_map(|value| value.trim().parse::<u64>().ok())
        .sum()
}

/// The number of a `Key:   123 kB` line.
pub fn parse_meminfo(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, rest) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// A view that is deleted on drop (errors ignored: the figure has reported
/// them already, or is failing for another reason).
pub struct View(ViewId);

impl View {
    /// `MMVIEW_CREATE`, timed: the view and the time the call took.
    pub fn create_timed() -> Result<(View, Duration)> {
        let start = Stamp::now();
        let result = mmview::create();
        let elapsed = start.elapsed();
        Ok((View(mm("MMVIEW_CREATE", result)?), elapsed))
    }

    /// `MMVIEW_CREATE`.
    pub fn create() -> Result<View> {
        Ok(View::create_timed()?.0)
    }

    /// The id.
    pub fn id(&self) -> ViewId {
        self.0
    }

    /// Deletes the view, reporting errors.
    pub fn delete(self) -> Result<()> {
        let id = self.0;
        std::mem::forget(self);
        mm("MMVIEW_DELETE", mmview::delete(id))
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = mmview::delete(self.0);
    }
}

/// `MMVIEW_UNSHARE` of the first `len` bytes of `region`.
pub fn unshare(region: &Region, len: usize) -> Result<()> {
    mm(
        "MMVIEW_UNSHARE",
        mmview::unshare(region.ptr().cast_const(), len),
    )
}

/// Runs `f` with the calling thread in `view`, then migrates back to the
/// base. Checks that each migration returns the view it came from.
///
/// # Safety
///
/// `f` and everything around it must follow the contract of
/// [`mmview::migrate`]: the stack, the heap and all state the code relies
/// on are shared (or equal in both views), and unshared memory is accessed
/// only through raw pointers (a [`Region`]) within `f`.
pub unsafe fn in_view<R>(view: &View, f: impl FnOnce() -> R) -> Result<R> {
    // SAFETY: forwarded to the caller.
    let previous = mm("MMVIEW_MIGRATE", unsafe { mmview::migrate(view.id()) })?;
    let result = f();
    // SAFETY: as above; back to the base, which the caller came from.
    let back = unsafe { mmview::migrate(ViewId::BASE) };
    let from = mm("MMVIEW_MIGRATE to the base", back)?;
    if previous != ViewId::BASE || from != view.id() {
        broken!(
            "MMVIEW_MIGRATE returned {previous} going to view {} and {from} coming back \
             (expected 0 and {})",
            view.id(),
            view.id()
        );
    }
    Ok(result)
}

/// Nanoseconds in a duration, as a float.
pub fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_lines_parse() {
        let text = "MemTotal:        2014532 kB\nMemAvailable:    1901234 kB\n";
        assert_eq!(parse_meminfo(text, "MemAvailable"), Some(1_901_234));
        assert_eq!(parse_meminfo(text, "Mem"), None);
        assert!(meminfo_kib("MemTotal").is_ok());
    }

    #[test]
    fn pcp_counts_add_up() {
        let zoneinfo = "Node 0, zone   Normal\n  pages free     1000\n  pagesets\n    cpu: 0\n              \
                        count:    57\n              high:     100\n    cpu: 1\n              count: 3\n";
        assert_eq!(pcp_pages(zoneinfo), 60);
        assert!(available_kib().is_ok());
    }

    #[test]
    fn regions_round_up_and_sum() -> std::result::Result<(), Failure> {
        let r = Region::touched(3 * page_size() + 1, 7)?;
        assert_eq!(r.pages(), 4);
        assert_eq!(r.len(), 4 * r.page());
        assert_eq!(r.read_pages(), r.expected_sum(7));
        r.write_pages(1, 2, 9);
        assert_ne!(r.read_pages(), r.expected_sum(7));
        Ok(())
    }
}
