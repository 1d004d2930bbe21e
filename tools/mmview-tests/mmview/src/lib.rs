//! Bindings for the `mmview(2)` system call.
//!
//! mmview gives the threads of one process several **views** of its address
//! space. The layout (which addresses are mapped, and how) is the same in every
//! view, but a range can be made *unshared*: each view then has its own
//! copy-on-write copy of it. [`create`] takes a snapshot of the calling thread's
//! view; a thread moves between views with [`migrate`]. A database can, for
//! example, unshare its buffer pool, create a view as a consistent snapshot and
//! let reader threads run in it while writers go on in the base view.
//!
//! A process starts with a single view, the base, whose id is [`ViewId::BASE`]
//! (0). Ids grow and are never reused within a process. [`stat`] tells the
//! figures of a view (its threads, resident memory, page tables and
//! copy-on-write faults).
//!
//! Every function returns the kernel's `errno` as an [`Error`]. On a kernel
//! built without `CONFIG_MMVIEW` every call fails with `ENOSYS`; [`is_available`]
//! tells whether the system call exists.
//!
//! ```no_run
//! # fn main() -> mmview::Result<()> {
//! let view = mmview::current()?;
//! println!("this thread runs in view {view}");
//! # Ok(())
//! # }
//! ```
//!
//! The contract this crate follows is the project's `mmview.md` specification;
//! the errors listed on each function are taken from it.

#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!("mmview is a Linux system call");

mod error;

use std::fmt;

pub use error::Error;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The system call number of `mmview` (the same on x86_64 and arm64).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub const SYS_MMVIEW: libc::c_long = 1000;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("mmview has a system call number on x86_64 and aarch64 only");

/// Op: create a view, a snapshot of the caller's view. Returns the new id.
pub const MMVIEW_CREATE: i64 = 0;
/// Op: delete view `arg1`. Returns 0.
pub const MMVIEW_DELETE: i64 = 1;
/// Op: id of the calling thread's view.
pub const MMVIEW_CURRENT: i64 = 2;
/// Op: move the calling thread to view `arg1`. Returns the previous id.
pub const MMVIEW_MIGRATE: i64 = 3;
/// Op: make the mappings in `[arg1, arg1 + arg2)` unshared. Returns 0.
pub const MMVIEW_UNSHARE: i64 = 4;
/// Op: make the mappings in `[arg1, arg1 + arg2)` shared again. Returns 0.
pub const MMVIEW_SHARE: i64 = 5;
/// Op: make the calling thread's view the base. Returns its id.
pub const MMVIEW_SWITCH_BASE: i64 = 6;
/// Op: the figures of view `arg1` into the [`Stat`] at address `arg2`, whose
/// `size` the caller sets. Returns 0.
pub const MMVIEW_STAT: i64 = 7;

/// [`Stat::state`] bit: the view was deleted, and threads still run in it.
pub const MMVIEW_STAT_DELETED: u64 = 1 << 0;
/// [`Stat::state`] bit: the view is the base.
pub const MMVIEW_STAT_BASE: u64 = 1 << 1;
/// The size of the first published version of [`Stat`], the least
/// [`Stat::size`] the kernel accepts.
pub const MMVIEW_STAT_SIZE_VER0: u64 = 56;

/// The id of a view of the calling process.
///
/// Ids are only meaningful inside the process that got them (and its forked
/// children, which start with a single view though).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct ViewId(u64);

impl ViewId {
    /// Id 0, the view every process starts with. After [`switch_base`]
    /// another view is the base and this id names an ordinary view.
    pub const BASE: ViewId = ViewId(0);

    /// Wraps a raw id as the kernel uses it.
    pub const fn from_raw(id: u64) -> Self {
        ViewId(id)
    }

    /// The raw id, as passed to the kernel.
    pub const fn as_raw(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ViewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ViewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ViewId({})", self.0)
    }
}

/// The figures of one view, as [`stat`] returns them: the mirror of the
/// kernel's `struct mmview_stat` (`<linux/mmview.h>`).
///
/// The struct is size-versioned, as those of `clone3` and `openat2`: the
/// caller sets [`size`](Stat::size) to the size of the struct it knows
/// ([`Stat::new`] does), and a later kernel may append fields. The byte
/// counts are of pages mapped in the view (resident memory, the shared zero
/// page left out), by the designation of their mapping; they are a snapshot
/// that moves as the threads of the process run.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stat {
    /// In: the size of the caller's struct ([`MMVIEW_STAT_SIZE_VER0`] for
    /// this one). The kernel leaves it as it is.
    pub size: u64,
    /// [`MMVIEW_STAT_DELETED`] and [`MMVIEW_STAT_BASE`] bits; 0 for a live
    /// view that is not the base. See [`Stat::is_deleted`] and
    /// [`Stat::is_base`].
    pub state: u64,
    /// The threads of the process that run in the view.
    pub threads: u64,
    /// Bytes of pages mapped in the view's shared mappings (`MAP_SHARED`
    /// ones included).
    pub shared_bytes: u64,
    /// Bytes of pages mapped in the view's unshared mappings (its own
    /// copy-on-write copy).
    pub unshared_bytes: u64,
    /// Bytes of the view's page tables.
    pub pgtable_bytes: u64,
    /// Copy-on-write faults (writes to a page that had to be copied) taken
    /// in the view since it was made.
    pub cow_faults: u64,
}

const _: () = assert!(std::mem::size_of::<Stat>() as u64 == MMVIEW_STAT_SIZE_VER0);

impl Stat {
    /// A zeroed struct whose `size` is its own size, ready to pass to the
    /// kernel.
    pub const fn new() -> Self {
        Stat {
            size: std::mem::size_of::<Stat>() as u64,
            state: 0,
            threads: 0,
            shared_bytes: 0,
            unshared_bytes: 0,
            pgtable_bytes: 0,
            cow_faults: 0,
        }
    }

    /// Whether the view was deleted: it can no longer be migrated to, and
    /// it goes away when the last thread in it leaves.
    pub const fn is_deleted(&self) -> bool {
        self.state & MMVIEW_STAT_DELETED != 0
    }

    /// Whether the view is the base.
    pub const fn is_base(&self) -> bool {
        self.state & MMVIEW_STAT_BASE != 0
    }
}

impl Default for Stat {
    /// [`Stat::new`].
    fn default() -> Self {
        Stat::new()
    }
}

/// Issues `mmview(op, arg1, arg2)` and returns what the kernel returned: the
/// (non-negative) result, or `-errno` on failure.
///
/// This is the escape hatch for tests of the argument checks; use the typed
/// functions otherwise.
///
/// # Safety
///
/// The call can be [`MMVIEW_MIGRATE`], which changes the memory the calling
/// thread sees: the caller must uphold the contract of [`migrate`] whenever
/// `op` could be that op.
pub unsafe fn raw_mmview(op: i64, arg1: u64, arg2: u64) -> i64 {
    // SAFETY: the system call only reads its three integer arguments; the
    // caller vouches for the effect of a migration.
    let ret = unsafe { libc::syscall(SYS_MMVIEW, op, arg1, arg2) };
    if ret == -1 {
        -i64::from(Error::last_os_error().errno())
    } else {
        ret
    }
}

/// [`raw_mmview`] with the result as a `Result`.
///
/// # Safety
///
/// As for [`raw_mmview`].
unsafe fn call(op: i64, arg1: u64, arg2: u64) -> Result<u64> {
    // SAFETY: forwarded to the caller.
    let ret = unsafe { raw_mmview(op, arg1, arg2) };
    match u64::try_from(ret) {
        Ok(value) => Ok(value),
        Err(_) => Err(Error::from_errno(
            i32::try_from(-ret).unwrap_or(libc::EINVAL),
        )),
    }
}

/// Issues an op that cannot change the memory the caller sees.
fn call_safe(op: i64, arg1: u64, arg2: u64) -> Result<u64> {
    debug_assert_ne!(op, MMVIEW_MIGRATE);
    // SAFETY: `op` is not MMVIEW_MIGRATE, so no memory changes under the caller.
    unsafe { call(op, arg1, arg2) }
}

/// Whether the running kernel has the `mmview` system call (it was built
/// with `CONFIG_MMVIEW`).
pub fn is_available() -> bool {
    !matches!(current(), Err(e) if e.is(libc::ENOSYS))
}

/// Creates a view: a snapshot of the calling thread's current view, in which
/// every unshared range starts as a copy-on-write copy of the caller's. Shared
/// ranges stay shared. The caller does not move.
///
/// # Errors
///
/// - `ENOMEM`: out of memory.
/// - `ENOSPC`: the process already holds `vm.mmview_max_views` views (the base
///   and deleted views still in use count).
/// - `EOPNOTSUPP`: the process uses something views cannot serve yet (KSM
///   merging, userfaultfd, mmu notifiers, `CLONE_VM` children outside its
///   thread group); not in the contract.
/// - `ENOSYS`: the kernel has no mmview.
pub fn create() -> Result<ViewId> {
    call_safe(MMVIEW_CREATE, 0, 0).map(ViewId)
}

/// Deletes a view. It can no longer be migrated to; threads still in it keep
/// running in it and its memory is freed when the last of them leaves. A
/// thread may delete its own current view.
///
/// # Errors
///
/// - `EPERM`: `view` is the base.
/// - `EINVAL`: no such view, or it is already deleted.
/// - `ENOSYS`: the kernel has no mmview.
pub fn delete(view: ViewId) -> Result<()> {
    call_safe(MMVIEW_DELETE, view.0, 0).map(drop)
}

/// The view the calling thread runs in. A new thread starts in its creator's
/// view; a process without other views is in [`ViewId::BASE`].
///
/// # Errors
///
/// None besides `ENOSYS` when the kernel has no mmview.
pub fn current() -> Result<ViewId> {
    call_safe(MMVIEW_CURRENT, 0, 0).map(ViewId)
}

/// Moves the calling thread (only it) to `view` and returns the view it was
/// in. Migrating to the current view changes nothing.
///
/// # Errors
///
/// - `EINVAL`: no such view, or it was deleted.
/// - `ENOSYS`: the kernel has no mmview.
///
/// # Safety
///
/// After the call, every *unshared* range reads as it is in `view`, including
/// the bytes under live references. The caller must make sure that
///
/// - the thread's stack, and all other memory the code running around the
///   call relies on (heap allocator state, thread-locals, locks, data behind
///   live references) either lies in shared ranges or is identical in both
///   views, and
/// - no reference held across the call points into unshared memory whose
///   contents differ between the two views.
///
/// In practice: keep stacks, the heap and locks shared, and touch unshared
/// memory only through raw pointers re-derived after migrating.
pub unsafe fn migrate(view: ViewId) -> Result<ViewId> {
    // SAFETY: the caller upholds the contract above.
    unsafe { call(MMVIEW_MIGRATE, view.0, 0) }.map(ViewId)
}

/// Makes every mapping in `[addr, addr + len)` unshared: views created later
/// get their own copy-on-write copy of it. Mappings are split at the range
/// ends, holes are skipped, and `len` is rounded up to the page size (the huge
/// page size for hugetlb mappings). The designation is kept across `fork()`.
///
/// Only the designation changes: with a single view, nobody sees different
/// memory afterwards, which is why this needs no `unsafe`.
///
/// # Errors
///
/// - `EPERM`: the process has more than one view (deleted views still in use
///   count).
/// - `EINVAL`: `addr` is not page aligned, `len` is 0, the range wraps or
///   leaves the user address space, or no mapping intersects it.
/// - `EACCES`: the range contains a `MAP_SHARED` mapping.
/// - `ENOMEM`: splitting would exceed `vm.max_map_count`.
/// - `ENOSYS`: the kernel has no mmview.
pub fn unshare<T>(addr: *const T, len: usize) -> Result<()> {
    call_safe(MMVIEW_UNSHARE, addr as usize as u64, len as u64).map(drop)
}

/// Makes every mapping in `[addr, addr + len)` shared again (the default):
/// all views see the same memory there. Same rules as [`unshare`].
///
/// # Errors
///
/// - `EPERM`: the process has more than one view (deleted views still in use
///   count).
/// - `EINVAL`: `addr` is not page aligned, `len` is 0, the range wraps or
///   leaves the user address space, or no mapping intersects it.
/// - `ENOMEM`: splitting would exceed `vm.max_map_count`.
/// - `ENOSYS`: the kernel has no mmview.
pub fn share<T>(addr: *const T, len: usize) -> Result<()> {
    call_safe(MMVIEW_SHARE, addr as usize as u64, len as u64).map(drop)
}

/// Makes the calling thread's view the base and returns its id. Ids do not
/// change; the old base becomes an ordinary view that can be deleted.
///
/// # Errors
///
/// - `ENOMEM`: out of memory.
/// - `EINVAL`: the calling thread's view was deleted (not in the contract).
/// - `EAGAIN`, `EINTR`: the old base's pages kept changing, or a fatal
///   signal arrived, while they were being copied (not in the contract).
/// - `ENOSYS`: the kernel has no mmview.
pub fn switch_base() -> Result<ViewId> {
    call_safe(MMVIEW_SWITCH_BASE, 0, 0).map(ViewId)
}

/// The figures of `view`: its state (deleted, base), the threads in it,
/// the resident bytes of its shared and of its unshared mappings, its
/// page-table bytes and the copy-on-write faults taken in it since it was
/// made. Works in a process without views too, for [`ViewId::BASE`].
/// `/proc/<pid>/mmviews` has the same figures for every view of a process.
///
/// # Errors
///
/// - `EINVAL`: no such view: it never existed, or it was deleted and its
///   last thread has left. (A deleted view that threads still run in is
///   reported, with [`Stat::is_deleted`].)
/// - `ENOSYS`: the kernel has no mmview. (An mmview kernel older than this
///   op fails with `EINVAL`, as for any unknown op.)
///
/// The kernel's other errors, about the buffer (`EINVAL` for a `size`
/// below [`MMVIEW_STAT_SIZE_VER0`], `E2BIG` for a larger struct with
/// non-zero bytes past the kernel's, `EFAULT` for a bad pointer), cannot
/// happen here: this function passes a [`Stat::new`] of its own. Use
/// [`raw_mmview`] to exercise them.
pub fn stat(view: ViewId) -> Result<Stat> {
    let mut buf = Stat::new();
    let addr = std::ptr::addr_of_mut!(buf) as usize as u64;
    call_safe(MMVIEW_STAT, view.0, addr)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_values_match_the_spec() {
        let ops = [
            MMVIEW_CREATE,
            MMVIEW_DELETE,
            MMVIEW_CURRENT,
            MMVIEW_MIGRATE,
            MMVIEW_UNSHARE,
            MMVIEW_SHARE,
            MMVIEW_SWITCH_BASE,
            MMVIEW_STAT,
        ];
        assert_eq!(ops, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(SYS_MMVIEW, 1000);
    }

    #[test]
    fn view_id_round_trips() {
        assert_eq!(ViewId::BASE.as_raw(), 0);
        let id = ViewId::from_raw(42);
        assert_eq!(id.as_raw(), 42);
        assert_eq!(id.to_string(), "42");
        assert_eq!(format!("{id:?}"), "ViewId(42)");
        assert!(ViewId::BASE < id);
    }

    /// Valid on any kernel: the host usually has no mmview (ENOSYS), a guest
    /// kernel with it puts a fresh process in the base view.
    #[test]
    fn current_is_base_or_enosys() {
        match current() {
            Ok(id) => {
                assert_eq!(id, ViewId::BASE);
                assert!(is_available());
            }
            Err(e) => {
                assert!(e.is(libc::ENOSYS), "unexpected {e}");
                assert!(!is_available());
            }
        }
    }

    /// An unknown op fails on every kernel: EINVAL with mmview, ENOSYS without.
    #[test]
    fn raw_reports_negative_errno() {
        // SAFETY: op 8 is not MMVIEW_MIGRATE.
        let ret = unsafe { raw_mmview(8, 0, 0) };
        assert!(
            ret == -i64::from(libc::EINVAL) || ret == -i64::from(libc::ENOSYS),
            "{ret}"
        );
    }

    #[test]
    fn stat_mirrors_the_kernel_struct() {
        assert_eq!(std::mem::size_of::<Stat>(), 56);
        assert_eq!(std::mem::align_of::<Stat>(), 8);
        assert_eq!(std::mem::offset_of!(Stat, size), 0);
        assert_eq!(std::mem::offset_of!(Stat, state), 8);
        assert_eq!(std::mem::offset_of!(Stat, threads), 16);
        assert_eq!(std::mem::offset_of!(Stat, shared_bytes), 24);
        assert_eq!(std::mem::offset_of!(Stat, unshared_bytes), 32);
        assert_eq!(std::mem::offset_of!(Stat, pgtable_bytes), 40);
        assert_eq!(std::mem::offset_of!(Stat, cow_faults), 48);
        assert_eq!(Stat::new().size, MMVIEW_STAT_SIZE_VER0);
        assert_eq!(Stat::default(), Stat::new());
        assert_eq!((MMVIEW_STAT_DELETED, MMVIEW_STAT_BASE), (1, 2));
    }

    #[test]
    fn stat_state_helpers() {
        let mut s = Stat::new();
        assert!(!s.is_deleted() && !s.is_base());
        s.state = MMVIEW_STAT_BASE;
        assert!(s.is_base() && !s.is_deleted());
        s.state = MMVIEW_STAT_DELETED;
        assert!(s.is_deleted() && !s.is_base());
    }

    /// Valid on any kernel: ENOSYS without mmview, the base of a process
    /// without views with it.
    #[test]
    fn stat_of_base_or_enosys() {
        match stat(ViewId::BASE) {
            Ok(s) => {
                assert!(s.is_base() && !s.is_deleted(), "{s:?}");
                assert!(s.threads >= 1, "{s:?}");
            }
            Err(e) => assert!(e.is(libc::ENOSYS) || e.is(libc::EINVAL), "unexpected {e}"),
        }
    }
}
