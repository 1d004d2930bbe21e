// SPDX-License-Identifier: GPL-2.0

//! mmview: several address spaces ("views") in one process.
//!
//! This crate holds the policy of mmview: the decoding and checking of the
//! `mmview(2)` arguments and the dispatch to each operation. The C entry point
//! (`mm/mmview.c`) calls [`mmview_rs_syscall`].
//!
//! Status: `MMVIEW_CURRENT` is implemented (a process without views is always
//! in the base, id 0); every other operation checks its arguments and then
//! fails with `EOPNOTSUPP`.

use kernel::error::{Error, Result};
use kernel::ffi::{c_long, c_ulong};

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
    // SAFETY: `mmview_max_views()` reads one integer; it is callable in any
    // context.
    let max = unsafe { kernel::bindings::mmview_max_views() };
    // The sysctl's range is 1..=65536.
    usize::try_from(max).unwrap_or(1)
}

/// Runs one decoded request for the calling thread.
fn dispatch(req: Request) -> Result<c_long> {
    match req.op {
        // Without views, every thread is in the base.
        Op::Current => Ok(kernel::uapi::MMVIEW_BASE_ID as c_long),
        Op::Create | Op::Delete | Op::Migrate | Op::Unshare | Op::Share | Op::SwitchBase => {
            Err(Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32)))
        }
    }
}
