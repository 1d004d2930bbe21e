// SPDX-License-Identifier: GPL-2.0

//! Safe access to the calling thread's address space.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::{code::EINTR, Result};

/// The calling thread's `mm_struct`, with its `mmap_lock` held for writing.
///
/// For a process with views, the lock is the family's (see
/// `mmap_lock_mm()`), so holding it freezes the layout of every view.
///
/// # Invariants
///
/// `mm` is the `mm` of the thread that made the guard, which holds a
/// reference on it while it runs, and its `mmap_lock` is write-locked by that
/// thread. The guard is neither `Send` nor `Sync` (it holds a raw pointer),
/// so it is dropped, and the lock released, by the same thread.
pub(crate) struct MmWriteGuard {
    mm: NonNull<bindings::mm_struct>,
}

impl MmWriteGuard {
    /// Write-locks the calling thread's address space. Fails with `EINTR`
    /// if a fatal signal arrives while waiting; `EINVAL` for a kernel thread.
    pub(crate) fn lock_current() -> Result<Self> {
        // SAFETY: reading `current->mm` has no requirements.
        let mm = unsafe { bindings::current_mm() };
        let mm = NonNull::new(mm).ok_or(kernel::error::code::EINVAL)?;
        // The thread's own mm stays alive while the thread runs.
        // SAFETY: `mm` is the calling thread's mm (see above).
        if unsafe { bindings::mmap_write_lock_killable(mm.as_ptr()) } != 0 {
            return Err(EINTR);
        }
        // INVARIANT: the lock is now held by this thread.
        Ok(MmWriteGuard { mm })
    }

    /// The locked `mm_struct`, for C functions that require its `mmap_lock`
    /// held for writing.
    pub(crate) fn as_ptr(&self) -> *mut bindings::mm_struct {
        self.mm.as_ptr()
    }
}

impl Drop for MmWriteGuard {
    fn drop(&mut self) {
        // SAFETY: by the type invariants, this thread holds the lock of a live mm.
        unsafe { bindings::mmap_write_unlock(self.mm.as_ptr()) };
    }
}

/// The end of the user address space of the calling thread (`TASK_SIZE`).
pub(crate) fn task_size() -> usize {
    // SAFETY: `task_size()` only reads the calling thread's flags.
    unsafe { bindings::task_size() }
}
