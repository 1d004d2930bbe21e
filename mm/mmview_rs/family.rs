// SPDX-License-Identifier: GPL-2.0

//! The views of one process: the registry that the C `struct mmview_family`
//! points to, and the lifecycle rules.
//!
//! Lifecycle:
//! - the family holds one `mm_users` reference on every view in its
//!   registry (the base's is taken when the family forms, a view's is the
//!   one it was created with);
//! - a task holds a reference on the view it is in; MIGRATE moves it;
//! - a deleted view leaves the registry, and the family drops its
//!   reference, once no task is in it ([`view_idle`]);
//! - when the family's thread group exits or execs, the family drops every
//!   reference ([`family_release`]); views still referenced elsewhere (by
//!   `/proc` readers, say) go when those references go.
//!
//! The registry is used only with the family's mmap_lock held: for reading
//! to look views up, for writing to change it.

use core::ffi::c_void;

use kernel::alloc::flags::GFP_KERNEL;
use kernel::alloc::KBox;
use kernel::bindings;
use kernel::error::Result;

use crate::mm::{Mm, MmGuard};
use crate::registry::{Registry, State, ViewId};

/// A view in the registry: its mm, on which the family holds an `mm_users`
/// reference.
#[derive(Clone, Copy)]
pub(crate) struct View(pub(crate) Mm);

impl View {
    /// Drops the family's reference. Must not be called with the family's
    /// lock held: the last reference tears the mm down under that lock.
    pub(crate) fn put(self) {
        // SAFETY: the family's reference keeps the mm alive until here.
        unsafe { bindings::mmview_put_view(self.0.as_ptr()) };
    }
}

/// What the C family points to.
pub(crate) struct Family {
    /// The views, by id.
    pub(crate) registry: Registry<View>,
}

impl Family {
    /// A new family for `base`, boxed for C.
    pub(crate) fn new_boxed(base: Mm) -> Result<*mut c_void> {
        let family = KBox::new(
            Family {
                registry: Registry::new(View(base))?,
            },
            GFP_KERNEL,
        )?;
        Ok(KBox::into_raw(family).cast())
    }

    /// Frees a family made by [`Family::new_boxed`] and returns its views.
    ///
    /// # Safety
    ///
    /// `raw` must come from [`Family::new_boxed`] and no longer be
    /// reachable from C.
    pub(crate) unsafe fn from_raw(raw: *mut c_void) -> KBox<Family> {
        // SAFETY: by the safety requirements.
        unsafe { KBox::from_raw(raw.cast()) }
    }

    /// The family of the mm locked by `guard`, if it has one that has not
    /// been released; read-only.
    pub(crate) fn of(guard: &MmGuard) -> Option<&Family> {
        let fam = guard.mm().family();
        if fam.is_null() {
            return None;
        }
        // `registry` is read and written only under the family's lock.
        // SAFETY: a member keeps its family alive; `guard` holds the lock.
        let raw = unsafe { (*fam).registry };
        // A non-null `registry` is a `Family` boxed by `new_boxed`.
        // SAFETY: used under the lock held by `guard`, as long as the borrow.
        (!raw.is_null()).then(|| unsafe { &*raw.cast::<Family>() })
    }

    /// As [`Family::of`], for changes; `guard` must hold the lock for
    /// writing (else `None`).
    pub(crate) fn of_mut(guard: &mut MmGuard) -> Option<&mut Family> {
        if !guard.is_write() {
            return None;
        }
        let fam = guard.mm().family();
        if fam.is_null() {
            return None;
        }
        // SAFETY: as in `of`.
        let raw = unsafe { (*fam).registry };
        // The lock is held for writing and the borrow of `guard` is
        // exclusive, so no other reference exists.
        // SAFETY: as in `of`, and see above.
        (!raw.is_null()).then(|| unsafe { &mut *raw.cast::<Family>() })
    }
}

/// Takes the deleted view `id` out of `family` if no task is in it, and
/// returns it, for the caller to put once the lock is dropped.
///
/// The family's lock owner (the process's original mm, an ordinary view
/// after `MMVIEW_SWITCH_BASE`) is never taken out: its tasks are not
/// counted, so it stays, deleted, until the family is released.
pub(crate) fn take_if_unused(family: &mut Family, id: ViewId) -> Option<View> {
    let view = *family.registry.get(id)?;
    if family.registry.state(id) != Some(State::Deleted) || view.0.tasks() != 0 {
        return None;
    }
    let fam = view.0.family();
    // SAFETY: a member keeps its family alive; `owner` never changes.
    if !fam.is_null() && unsafe { (*fam).owner } == view.0.as_ptr() {
        return None;
    }
    family.registry.remove(id)
}

/// C: the last task left the view `mm` (MIGRATE away, exit, exec): free it
/// if it is deleted.
///
/// # Safety
///
/// Called with no mmap_lock held, by a task that still holds a reference
/// on `mm`.
#[no_mangle]
pub unsafe extern "C" fn mmview_rs_view_idle(mm: *mut bindings::mm_struct) {
    // SAFETY: the caller holds a reference on `mm`.
    let Some(mm) = (unsafe { Mm::from_raw(mm) }) else {
        return;
    };
    // SAFETY: `mm` is alive (above); the caller holds no mmap_lock.
    let mut guard = unsafe { MmGuard::lock_write(mm) };
    let put = Family::of_mut(&mut guard).and_then(|f| take_if_unused(f, mm.view_id()));
    drop(guard);
    if let Some(view) = put {
        view.put();
    }
}

/// C: the family's thread group has exited or is exec()ing: drop every view.
///
/// # Safety
///
/// Called with no mmap_lock held, by a task that still holds a reference
/// on a member of `fam`, which keeps `fam` alive.
#[no_mangle]
pub unsafe extern "C" fn mmview_rs_family_release(fam: *mut bindings::mmview_family) {
    // SAFETY: `fam` is alive (see above) and `owner` is fixed and pinned.
    let owner = unsafe { Mm::from_raw((*fam).owner) };
    let Some(owner) = owner else {
        return;
    };
    // SAFETY: the family pins its owner; the caller holds no mmap_lock.
    let guard = unsafe { MmGuard::lock_write(owner) };
    // SAFETY: the family's lock is held for writing.
    let raw = unsafe { core::mem::replace(&mut (*fam).registry, core::ptr::null_mut()) };
    drop(guard);
    if raw.is_null() {
        return;
    }
    // SAFETY: `raw` came from `Family::new_boxed` and C no longer sees it.
    let family = unsafe { Family::from_raw(raw) };
    for (_, _, view) in family.registry.iter() {
        view.put();
    }
}

/// The family of `mm`, read-only, for the replication driver.
///
/// # Safety
///
/// The caller holds the family's mmap_lock and a reference on `mm` for as
/// long as it uses the result.
pub(crate) unsafe fn locked_family<'a>(mm: Mm) -> Option<&'a Family> {
    let fam = mm.family();
    if fam.is_null() {
        return None;
    }
    // The registry is used under the family's lock, which the caller holds.
    // SAFETY: `mm` keeps `fam` alive.
    let raw = unsafe { (*fam).registry };
    // A non-null registry is a boxed `Family`, changed only under the lock
    // held for writing, which nobody else can hold now; only read here.
    // SAFETY: see above.
    (!raw.is_null()).then(|| unsafe { &*raw.cast::<Family>() })
}

/// The members of `family` other than `mm`, in id order (the same order on
/// every call while the lock is held).
fn others(family: &Family, mm: Mm) -> impl Iterator<Item = Mm> + '_ {
    family
        .registry
        .iter()
        .map(|(_, _, view)| view.0)
        .filter(move |view| *view != mm)
}

/// How many times a replication step that failed with `ENOMEM` is made.
const REPLICATE_TRIES: usize = 4;

/// Makes `view` like `mm` over `[start, end)` for the replication `op`; 0 or
/// a negative errno.
///
/// # Safety
///
/// `view` and `mm` are live members of one family whose mmap_lock the
/// caller holds (for writing, but for `MMVIEW_REPLICATE_ZAP`).
unsafe fn replicate_one(
    op: u32,
    view: Mm,
    mm: Mm,
    start: kernel::ffi::c_ulong,
    end: kernel::ffi::c_ulong,
) -> kernel::ffi::c_int {
    let (dst, src) = (view.as_ptr(), mm.as_ptr());
    // In every arm, `dst` and `src` are live members and the family's lock
    // is held as `op` needs, by the function's safety requirements.
    match op {
        // SAFETY: see above.
        bindings::MMVIEW_REPLICATE_MUNMAP => unsafe {
            bindings::mmview_try_munmap_one(dst, start, end)
        },
        // SAFETY: see above.
        bindings::MMVIEW_REPLICATE_CLONE => unsafe {
            bindings::mmview_clone_range(dst, src, start, end)
        },
        // SAFETY: see above.
        bindings::MMVIEW_REPLICATE_PROTECT => unsafe {
            bindings::mmview_protect_one(dst, src, start, end)
        },
        // SAFETY: see above (held for reading is enough for a zap).
        bindings::MMVIEW_REPLICATE_ZAP => unsafe { bindings::mmview_zap_one(dst, start, end) },
        // SAFETY: see above.
        bindings::MMVIEW_REPLICATE_EXPAND => unsafe {
            bindings::mmview_expand_one(dst, start, end)
        },
        // SAFETY: see above.
        bindings::MMVIEW_REPLICATE_BRK => unsafe { bindings::mmview_brk_one(dst, src) },
        // SAFETY: see above.
        bindings::MMVIEW_REPLICATE_ATTR => unsafe {
            bindings::mmview_attr_one(dst, src, start, end)
        },
        // SAFETY: see above.
        bindings::MMVIEW_REPLICATE_MLOCK => unsafe {
            bindings::mmview_mlock_one(dst, src, start, end)
        },
        _ => -(bindings::EINVAL as kernel::ffi::c_int),
    }
}

/// C: replays a layout change that `mm` made on every other member of its
/// family: `MMVIEW_REPLICATE_MUNMAP` unmaps `[start, end)`,
/// `MMVIEW_REPLICATE_CLONE` replaces it by clones of `mm`'s mappings,
/// `MMVIEW_REPLICATE_PROTECT` gives it `mm`'s protection,
/// `MMVIEW_REPLICATE_ZAP` drops its shared pages (`MADV_DONTNEED`),
/// `MMVIEW_REPLICATE_EXPAND` grows the stack ending at `end` down to
/// `start`, `MMVIEW_REPLICATE_BRK` copies `mm`'s program break,
/// `MMVIEW_REPLICATE_ATTR` gives it `mm`'s madvise()/mseal() attributes,
/// `MMVIEW_REPLICATE_MLOCK` its mlock flags.
///
/// A step that fails with `ENOMEM` is tried again, up to
/// [`REPLICATE_TRIES`] times. Every member is visited even after a failed
/// munmap (each one's pages in the range are dropped then, as its data must
/// go); a failed clone, protect or attribute change stops at once (for a
/// clone, the caller unmaps the range everywhere). Returns 0 or the first
/// error, as a negative errno.
///
/// # Safety
///
/// The caller holds the family's mmap_lock (for writing; for reading is
/// enough for `MMVIEW_REPLICATE_ZAP`, which changes no layout) and a
/// reference on `mm`, a member of a family.
#[no_mangle]
pub unsafe extern "C" fn mmview_rs_replicate(
    mm: *mut bindings::mm_struct,
    op: kernel::ffi::c_int,
    start: kernel::ffi::c_ulong,
    end: kernel::ffi::c_ulong,
) -> kernel::ffi::c_int {
    // SAFETY: the caller holds a reference on `mm`.
    let Some(mm) = (unsafe { Mm::from_raw(mm) }) else {
        return 0;
    };
    // SAFETY: the caller holds the family's lock and a reference on `mm`.
    let Some(family) = (unsafe { locked_family(mm) }) else {
        return 0;
    };
    let op = op as u32;
    let mut first_err = 0;
    for view in others(family, mm) {
        // Every step makes `view` like `mm` over the range, so it can be
        // tried again: an allocation that failed once (a split, a maple
        // tree node) rarely fails again, and a member left behind would
        // differ from the others for good.
        let mut err = 0;
        for _ in 0..REPLICATE_TRIES {
            // `view` and `mm` are live members of the family, whose lock
            // the caller holds as `op` needs.
            // SAFETY: see above.
            err = unsafe { replicate_one(op, view, mm, start, end) };
            if err != -(bindings::ENOMEM as kernel::ffi::c_int) {
                break;
            }
        }
        if err != 0 && op == bindings::MMVIEW_REPLICATE_MUNMAP {
            // The mappings stay, but their pages must go: the member sees no
            // stale data (a view's shared memory faults on the base, which
            // has no mapping there).
            // SAFETY: as above.
            unsafe { bindings::mmview_zap_all_one(view.as_ptr(), start, end) };
        }
        if err != 0 && first_err == 0 {
            first_err = err;
            if op != bindings::MMVIEW_REPLICATE_MUNMAP {
                break;
            }
        }
    }
    first_err
}

/// C: replays on every other member of `mm`'s family, in id order, the move
/// `m` that `mremap()` made in `mm`. If a member cannot move (it is left
/// unchanged), the members moved before it are moved back and its error is
/// returned; the caller then moves its own mapping back. With `undo`, moves
/// every other member back instead (a later step of the call failed).
///
/// # Safety
///
/// The caller holds the family's mmap_lock for writing and a reference on
/// `mm`, a member of a family; `m` is valid for reading.
#[no_mangle]
pub unsafe extern "C" fn mmview_rs_replicate_mremap(
    mm: *mut bindings::mm_struct,
    m: *const bindings::mmview_mremap,
    undo: bool,
) -> kernel::ffi::c_int {
    // SAFETY: the caller holds a reference on `mm`.
    let Some(mm) = (unsafe { Mm::from_raw(mm) }) else {
        return 0;
    };
    // SAFETY: the caller holds the family's lock and a reference on `mm`.
    let Some(family) = (unsafe { locked_family(mm) }) else {
        return 0;
    };
    let undo_first = |n: usize| {
        for view in others(family, mm).take(n) {
            // `view` is a live member that made the move; the lock is held
            // for writing and `m` is valid.
            // SAFETY: see above.
            unsafe { bindings::mmview_mremap_undo_one(view.as_ptr(), m) };
        }
    };
    if undo {
        undo_first(usize::MAX);
        return 0;
    }
    for (moved, view) in others(family, mm).enumerate() {
        // `view` and `mm` are live members, the lock is held for writing
        // and `m` is valid.
        // SAFETY: see above.
        let err = unsafe { bindings::mmview_mremap_one(view.as_ptr(), mm.as_ptr(), m) };
        if err != 0 {
            undo_first(moved);
            return err;
        }
    }
    0
}
