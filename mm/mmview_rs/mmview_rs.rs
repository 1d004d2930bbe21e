// SPDX-License-Identifier: GPL-2.0

//! mmview: several address spaces ("views") in one process.
//!
//! This crate holds the policy of mmview: the decoding and checking of the
//! `mmview(2)` arguments, the dispatch to each operation, the view registry
//! (ids, states, the limit) and the lifecycle of views ([`family`]). The C
//! entry point (`mm/mmview.c`) calls [`mmview_rs_syscall`]; the mechanisms
//! (copying an address space, switching a thread's mm, page tables) are C
//! functions in `mm/mmview.c` and `kernel/fork.c`.
//!
//! Status: every operation of the contract works.

use kernel::bindings;
use kernel::error::code::{EINVAL, ENOMEM, ENOSPC, EPERM};
use kernel::error::{to_result, Error, Result};
use kernel::ffi::{c_long, c_ulong, c_void};

mod family;
mod mm;
mod op;
mod registry;

#[cfg(CONFIG_KUNIT)]
mod kunit;

pub use family::{
    mmview_rs_family_release, mmview_rs_replicate, mmview_rs_replicate_mremap, mmview_rs_view_idle,
};
use family::{take_if_unused, Family, View};
use mm::{Access, Mm, MmGuard};
use op::{Op, Request};
use registry::{Slot, State, ViewId, BASE_ID};

/// The `mmview(2)` system call.
///
/// Returns the operation's non-negative result, or a negative errno.
///
/// Called from the `SYSCALL_DEFINE3(mmview)` stub in `mm/mmview.c`, in process context
/// with no locks held.
#[no_mangle]
pub extern "C" fn mmview_rs_syscall(op: c_long, arg1: c_ulong, arg2: c_ulong) -> c_long {
    match Request::decode(op, arg1, arg2).and_then(dispatch) {
        Ok(ret) => ret,
        Err(err) => err.to_errno() as c_long,
    }
}

/// The current value of the `vm.mmview_max_views` sysctl: how many views a
/// process may hold (used by `MMVIEW_CREATE`).
fn max_views() -> usize {
    // SAFETY: `mmview_max_views()` reads one integer, in any context.
    let max = unsafe { bindings::mmview_max_views() };
    // The sysctl's range is 1..=65536.
    usize::try_from(max).unwrap_or(1)
}

/// Runs one decoded request for the calling thread.
fn dispatch(req: Request) -> Result<c_long> {
    let [arg1, arg2] = req.args;
    match req.op {
        Op::Create => create(),
        Op::Current => Ok(current_id() as c_long),
        Op::SwitchBase => switch_base(),
        Op::Delete => delete(arg1 as ViewId),
        Op::Migrate => migrate(arg1 as ViewId),
        Op::Unshare => designate(arg1, arg2, true),
        Op::Share => designate(arg1, arg2, false),
        Op::Stat => stat(arg1 as ViewId, arg2),
    }
}

/// The id of the calling thread's view (the base for a kernel thread).
fn current_id() -> ViewId {
    Mm::current().map_or(BASE_ID, Mm::view_id)
}

/// `MMVIEW_CREATE()`: a new view, a copy of the caller's view.
///
/// The first view forms the family (the caller's mm becomes its lock owner
/// and base); if the view cannot be made, the family is undone.
fn create() -> Result<c_long> {
    let limit = max_views();
    let slot = Slot::new()?;
    // Turning the view-mapping count on is idempotent and harmless for
    // processes without views.
    // SAFETY: no locks are held.
    unsafe { bindings::mmview_count_enable() };
    let mut guard = MmGuard::lock_current(Access::Write)?;
    let mm = guard.mm();
    let formed = mm.family().is_null();
    if formed {
        if limit < 2 {
            return Err(ENOSPC);
        }
        // SAFETY: `guard` holds `mm`'s mmap_lock for writing.
        to_result(unsafe { bindings::mmview_family_check_locked(mm.as_ptr()) })?;
        let raw = Family::new_boxed(mm)?;
        // SAFETY: as above; `raw` is a boxed `Family`, which C owns from now.
        if unsafe { bindings::mmview_family_create_locked(mm.as_ptr(), raw) }.is_null() {
            // SAFETY: C did not take `raw`.
            drop(unsafe { Family::from_raw(raw) });
            return Err(ENOMEM);
        }
    }
    let (ret, discard) = match new_view(&mut guard, slot, limit) {
        Ok(id) => (Ok(id as c_long), None),
        Err((err, discard)) => {
            if formed {
                undo_family(&guard);
            }
            (Err(err), discard)
        }
    };
    drop(guard);
    if let Some(view) = discard {
        // SAFETY: a half-built view from `mmview_dup_mm()`, now unlocked.
        unsafe { bindings::mmview_discard_mm(view.as_ptr()) };
    }
    ret
}

/// Copies the caller's view into a new view of its family, under `guard`
/// (held for writing), and registers it. On failure, returns the error and
/// a half-built mm to discard once the lock is dropped.
fn new_view(
    guard: &mut MmGuard,
    slot: Slot<View>,
    limit: usize,
) -> core::result::Result<ViewId, (Error, Option<Mm>)> {
    let mm = guard.mm();
    let family = Family::of_mut(guard).ok_or((EINVAL, None))?;
    family.registry.next_id(limit).map_err(|e| (e, None))?;
    let mut err = 0;
    // SAFETY: the family's lock is held for writing.
    let view = unsafe { bindings::mmview_dup_mm(mm.as_ptr(), &mut err) };
    // SAFETY: a new mm lives until its reference is put.
    let view = unsafe { Mm::from_raw(view) };
    let view = match (view, err) {
        (Some(view), 0) => view,
        (view, err) => return Err((Error::from_errno(err), view)),
    };
    // Cannot fail: `next_id` accepted the same limit under the same lock.
    let id = family
        .registry
        .insert(slot, View(view), limit)
        .map_err(|e| (e, Some(view)))?;
    // SAFETY: the family's lock is held for writing; `view` is new.
    unsafe { bindings::mmview_add_view_locked(view.as_ptr(), id) };
    Ok(id)
}

/// Undoes the family that [`create`] formed when its first view failed.
fn undo_family(guard: &MmGuard) {
    let fam = guard.mm().family();
    // The registry is the boxed `Family` that `create` gave it.
    // SAFETY: the family's lock is held for writing.
    let raw = unsafe { core::mem::replace(&mut (*fam).registry, core::ptr::null_mut()) };
    // SAFETY: as above; the caller's mm is the family's only member.
    unsafe { bindings::mmview_family_destroy_locked(guard.mm().as_ptr()) };
    if !raw.is_null() {
        // SAFETY: `raw` came from `Family::new_boxed`; C no longer sees it.
        drop(unsafe { Family::from_raw(raw) });
    }
}

/// `MMVIEW_DELETE(id)`: `id` can no longer be migrated to; it is freed now
/// if no thread is in it, else when the last one leaves.
fn delete(id: ViewId) -> Result<c_long> {
    let mut guard = MmGuard::lock_current(Access::Write)?;
    let Some(family) = Family::of_mut(&mut guard) else {
        return Err(if id == BASE_ID { EPERM } else { EINVAL });
    };
    family.registry.delete(id)?;
    let put = take_if_unused(family, id);
    drop(guard);
    if let Some(view) = put {
        view.put();
    }
    Ok(0)
}

/// `MMVIEW_MIGRATE(id)`: moves the calling thread to view `id` and returns
/// the id of the view it was in.
fn migrate(id: ViewId) -> Result<c_long> {
    let old_id = current_id();
    if id == old_id {
        return Ok(old_id as c_long);
    }
    let guard = MmGuard::lock_current(Access::Read)?;
    let family = Family::of(&guard).ok_or(EINVAL)?;
    let View(new) = *family.registry.get_live(id)?;
    // This takes the thread's reference on `new`.
    // SAFETY: `new` is a live view of the locked family, alive while locked.
    unsafe { bindings::mmview_task_enter(new.as_ptr()) };
    drop(guard);
    // SAFETY: the thread holds a reference on `new` (above).
    let old = unsafe { bindings::mmview_switch_mm(new.as_ptr()) };
    // SAFETY: `old` was the thread's mm; its reference passes to us here.
    unsafe {
        bindings::mmview_task_leave(old);
        bindings::mmput(old);
    }
    Ok(old_id as c_long)
}

/// `MMVIEW_SWITCH_BASE()`: makes the calling thread's view the base and
/// returns its id. `EINVAL` if that view was deleted.
fn switch_base() -> Result<c_long> {
    let mut guard = MmGuard::lock_current(Access::Write)?;
    let mm = guard.mm();
    let id = mm.view_id();
    let Some(family) = Family::of_mut(&mut guard) else {
        // Without views the caller is in the base.
        return Ok(id as c_long);
    };
    if family.registry.base_id() == id {
        return Ok(id as c_long);
    }
    // A deleted view cannot become the base.
    family.registry.get_live(id)?;
    // `mm` is the caller's mm, a member of the family other than the base.
    // SAFETY: the family's lock is held for writing.
    let ret = unsafe { bindings::mmview_switch_base_locked(mm.as_ptr()) };
    to_result(ret)?;
    family.registry.set_base(id)?;
    Ok(id as c_long)
}

/// The `MMVIEW_STAT_*` state of the view `id` of `family`.
fn view_state(family: &Family, id: ViewId) -> u64 {
    let mut state = 0;
    if family.registry.state(id) != Some(State::Live) {
        state |= kernel::uapi::MMVIEW_STAT_DELETED as u64;
    }
    if family.registry.base_id() == id {
        state |= kernel::uapi::MMVIEW_STAT_BASE as u64;
    }
    state
}

/// `MMVIEW_STAT(id, buf)`: the figures of view `id` (live, or deleted but
/// still used), copied to the caller's size-versioned struct at `buf`.
/// `EINVAL` for an unknown id or a struct smaller than the first version,
/// `E2BIG` for a larger struct with non-zero bytes past the kernel's,
/// `EFAULT`.
fn stat(id: ViewId, buf: c_ulong) -> Result<c_long> {
    let mut figures = bindings::mmview_stat::default();
    {
        let guard = MmGuard::lock_current(Access::Read)?;
        let mm = guard.mm();
        let (view, state) = if mm.family().is_null() {
            if id != BASE_ID {
                return Err(EINVAL);
            }
            (mm, kernel::uapi::MMVIEW_STAT_BASE as u64)
        } else {
            let family = Family::of(&guard).ok_or(EINVAL)?;
            let View(view) = *family.registry.get(id).ok_or(EINVAL)?;
            (view, view_state(family, id))
        };
        // `view` is alive while the family's lock is held, which the walk
        // of its page tables needs.
        // SAFETY: `guard` holds the family's mmap_lock for reading.
        unsafe {
            bindings::mmview_stat_fill(view.as_ptr(), state, bindings::get_current(), &mut figures)
        };
    }
    // No lock held: the copy may fault. `buf` is a user pointer, which the
    // copy checks.
    // SAFETY: `figures` is valid for reading; `buf` needs no validity.
    to_result(unsafe { bindings::mmview_stat_copy_out(buf as *mut c_void, &figures) })?;
    Ok(0)
}

/// C: the `MMVIEW_STAT_*` state of `mm`, a member of a family, for
/// `/proc/<pid>/mmviews`; deleted if the registry no longer holds it.
///
/// # Safety
///
/// The caller holds the family's mmap_lock and a reference on `mm`.
#[no_mangle]
pub unsafe extern "C" fn mmview_rs_view_state(mm: *mut bindings::mm_struct) -> u64 {
    // SAFETY: the caller holds a reference on `mm`.
    let Some(mm) = (unsafe { Mm::from_raw(mm) }) else {
        return 0;
    };
    // SAFETY: the caller holds the family's lock and a reference on `mm`.
    let Some(family) = (unsafe { family::locked_family(mm) }) else {
        return kernel::uapi::MMVIEW_STAT_DELETED as u64;
    };
    let id = mm.view_id();
    match family.registry.get(id) {
        Some(View(view)) if *view == mm => view_state(family, id),
        _ => kernel::uapi::MMVIEW_STAT_DELETED as u64,
    }
}

/// How many views of `family` count as views of the process: the live ones
/// and the deleted ones that a thread still uses. A deleted view leaves the
/// registry when its last thread leaves, but for the family's lock owner (the
/// process's original mm, an ordinary view after `MMVIEW_SWITCH_BASE`), which
/// stays until the family is released: it counts only while a thread is in it.
fn in_use(family: &Family, guard: &MmGuard) -> usize {
    family
        .registry
        .iter()
        .filter(|(_, state, view)| *state != State::Deleted || view.0.in_use(guard))
        .count()
}

/// `MMVIEW_UNSHARE(addr, len)` and `MMVIEW_SHARE(addr, len)`.
///
/// The argument rules are in [`op::user_range`]; the mm-side rules (holes,
/// hugetlb rounding, `EACCES` for `MAP_SHARED`, `ENOMEM`) are in
/// `mmview_designate_locked()`.
fn designate(addr: c_ulong, len: c_ulong, unshared: bool) -> Result<c_long> {
    let (start, end) = op::user_range(addr, len, mm::task_size() as c_ulong)?;
    let guard = MmGuard::lock_current(Access::Write)?;
    // Designations change only while the process has one view: the base
    // (deleted views that threads still use count).
    if !guard.mm().family().is_null() && Family::of(&guard).map_or(true, |f| in_use(f, &guard) > 1)
    {
        return Err(EPERM);
    }
    let mm = guard.mm().as_ptr();
    // The range is page aligned and within the user address space.
    // SAFETY: `guard` holds the mmap_lock of the caller's mm for writing.
    let ret = unsafe { bindings::mmview_designate_locked(mm, start, end, unshared) };
    to_result(ret)?;
    Ok(0)
}
