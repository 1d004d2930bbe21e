// SPDX-License-Identifier: GPL-2.0

//! Safe access to address spaces and to the mmap_lock of a family.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::code::{EINTR, EINVAL};
use kernel::error::Result;

/// A reference to an `mm_struct`, as the calling thread's own mm or as a
/// member of a family that the caller keeps alive.
///
/// # Invariants
///
/// `ptr` points to a live `mm_struct` for as long as the value is used; who
/// keeps it alive is stated where the value is made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mm {
    ptr: NonNull<bindings::mm_struct>,
}

impl Mm {
    /// The calling thread's mm; `None` for a kernel thread.
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: reading `current->mm` has no requirements.
        let mm = unsafe { bindings::current_mm() };
        // INVARIANT: the thread's own mm stays alive while the thread runs.
        NonNull::new(mm).map(|ptr| Mm { ptr })
    }

    /// Wraps `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a live `mm_struct` for as long as the value is
    /// used.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::mm_struct) -> Option<Self> {
        // INVARIANT: by the safety requirements.
        NonNull::new(ptr).map(|ptr| Mm { ptr })
    }

    /// The raw pointer, for C.
    pub(crate) fn as_ptr(self) -> *mut bindings::mm_struct {
        self.ptr.as_ptr()
    }

    /// The view id of this mm in its family (0 outside a family).
    pub(crate) fn view_id(self) -> u64 {
        // The id is set before the mm is published and never changes.
        // SAFETY: by the type invariants the mm is alive.
        unsafe { bindings::mmview_mm_id(self.as_ptr()) }
    }

    /// How many tasks are in this view (not counted for the lock owner).
    pub(crate) fn tasks(self) -> i32 {
        // SAFETY: by the type invariants the mm is alive.
        unsafe { bindings::mmview_mm_tasks(self.as_ptr()) }
    }

    /// Whether a thread of the caller's thread group is in this view; `guard`
    /// holds the family's lock, so that no thread migrates into it meanwhile.
    pub(crate) fn in_use(self, guard: &MmGuard) -> bool {
        let _ = guard;
        // `guard` holds the family's mmap_lock, which `mmview_mm_in_use()`
        // needs.
        // SAFETY: by the type invariants the mm is alive; see above.
        unsafe { bindings::mmview_mm_in_use(self.as_ptr()) }
    }

    /// The family of this mm, or null.
    pub(crate) fn family(self) -> *mut bindings::mmview_family {
        // SAFETY: by the type invariants the mm is alive.
        unsafe { bindings::mmview_family(self.as_ptr()) }
    }
}

/// Whether a [`MmGuard`] holds the lock for reading or for writing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// The mmap_lock of an mm, held; for a member of a family that is the
/// family's lock (see `mmap_lock_mm()`), so holding it freezes the layout
/// of every view, and the family's registry.
///
/// # Invariants
///
/// `mm` is alive while the guard exists and its mmap_lock is held in mode
/// `access` by the thread that made the guard. The guard is neither `Send`
/// nor `Sync` (it holds a raw pointer), so the same thread unlocks it.
pub(crate) struct MmGuard {
    mm: Mm,
    access: Access,
}

impl MmGuard {
    /// Locks the calling thread's mm; `EINTR` if a fatal signal arrives
    /// while waiting, `EINVAL` for a kernel thread.
    pub(crate) fn lock_current(access: Access) -> Result<Self> {
        let mm = Mm::current().ok_or(EINVAL)?;
        // SAFETY: `mm` is the calling thread's mm (alive while it runs).
        let ret = unsafe {
            match access {
                Access::Read => bindings::mmap_read_lock_killable(mm.as_ptr()),
                Access::Write => bindings::mmap_write_lock_killable(mm.as_ptr()),
            }
        };
        if ret != 0 {
            return Err(EINTR);
        }
        // INVARIANT: the lock is held in mode `access`.
        Ok(MmGuard { mm, access })
    }

    /// Write-locks `mm`, uninterruptibly (for teardown paths).
    ///
    /// # Safety
    ///
    /// `mm` must stay alive until the guard is dropped, and the caller must
    /// not hold the lock already.
    pub(crate) unsafe fn lock_write(mm: Mm) -> Self {
        // SAFETY: `mm` is alive, by the safety requirements.
        unsafe { bindings::mmap_write_lock(mm.as_ptr()) };
        // INVARIANT: the lock is held for writing.
        MmGuard {
            mm,
            access: Access::Write,
        }
    }

    /// The locked mm.
    pub(crate) fn mm(&self) -> Mm {
        self.mm
    }

    /// Whether the lock is held for writing.
    pub(crate) fn is_write(&self) -> bool {
        self.access == Access::Write
    }
}

impl Drop for MmGuard {
    fn drop(&mut self) {
        // By the type invariants, this thread holds the lock in `access` mode.
        // SAFETY: the mm is alive and locked by this thread (see above).
        unsafe {
            match self.access {
                Access::Read => bindings::mmap_read_unlock(self.mm.as_ptr()),
                Access::Write => bindings::mmap_write_unlock(self.mm.as_ptr()),
            }
        }
    }
}

/// The end of the user address space of the calling thread (`TASK_SIZE`).
pub(crate) fn task_size() -> usize {
    // SAFETY: `task_size()` only reads the calling thread's flags.
    unsafe { bindings::task_size() }
}
