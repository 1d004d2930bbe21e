// SPDX-License-Identifier: GPL-2.0

//! mmview: several address spaces ("views") in one process.
//!
//! This crate holds the policy of mmview: the decoding and checking of the
//! `mmview(2)` arguments and the dispatch to each operation. The C entry point
//! (`mm/mmview.c`) calls [`mmview_rs_syscall`].
//!
//! Status: views cannot be created yet (`MMVIEW_CREATE` fails with
//! `EOPNOTSUPP`), so every process has only its base, id 0. Every other
//! operation works as the contract says for such a process: `CURRENT`,
//! `MIGRATE` and `SWITCH_BASE` report the base, `DELETE` refuses it, and
//! `UNSHARE`/`SHARE` designate ranges.

use kernel::bindings;
use kernel::error::code::{EINVAL, EPERM};
use kernel::error::{to_result, Error, Result};
use kernel::ffi::{c_long, c_ulong};

mod mm;
mod op;
// Used by the views milestone; today only by the KUnit suite.
#[cfg_attr(not(CONFIG_KUNIT), allow(dead_code))]
mod registry;

#[cfg(CONFIG_KUNIT)]
mod kunit;

use op::{Op, Request};

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
#[cfg_attr(not(CONFIG_KUNIT), allow(dead_code))]
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
        Op::Create => Err(Error::from_errno(-(bindings::EOPNOTSUPP as i32))),
        Op::Current | Op::SwitchBase => Ok(current_id()),
        Op::Delete => delete(arg1),
        Op::Migrate => migrate(arg1),
        Op::Unshare => designate(arg1, arg2, true),
        Op::Share => designate(arg1, arg2, false),
    }
}

/// The id of the calling thread's view. Without views, every thread is in
/// the base.
fn current_id() -> c_long {
    registry::BASE_ID as c_long
}

/// `MMVIEW_DELETE(id)`: the base cannot be deleted, and no other view exists.
fn delete(id: c_ulong) -> Result<c_long> {
    if id as registry::ViewId == registry::BASE_ID {
        Err(EPERM)
    } else {
        Err(EINVAL)
    }
}

/// `MMVIEW_MIGRATE(id)`: migrating to the view one is in changes nothing and
/// returns its id; no other view exists.
fn migrate(id: c_ulong) -> Result<c_long> {
    if id as c_long == current_id() {
        Ok(current_id())
    } else {
        Err(EINVAL)
    }
}

/// `MMVIEW_UNSHARE(addr, len)` and `MMVIEW_SHARE(addr, len)`.
///
/// The argument rules are in [`op::user_range`]; the mm-side rules (holes,
/// hugetlb rounding, `EACCES` for `MAP_SHARED`, `ENOMEM`) are in
/// `mmview_designate_locked()`.
fn designate(addr: c_ulong, len: c_ulong, unshared: bool) -> Result<c_long> {
    let (start, end) = op::user_range(addr, len, mm::task_size() as c_ulong)?;
    let mm = mm::MmWriteGuard::lock_current()?;
    // Once views can be created, UNSHARE and SHARE fail with EPERM here, under
    // the family lock, when the process has more than one view.
    // The range is page aligned and within the user address space.
    // SAFETY: `mm` holds the mmap_lock of the caller's mm for writing.
    let ret = unsafe { bindings::mmview_designate_locked(mm.as_ptr(), start, end, unshared) };
    to_result(ret)?;
    Ok(0)
}
