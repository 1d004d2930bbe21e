// SPDX-License-Identifier: GPL-2.0

//! Decoding and checking of the `mmview(2)` arguments.
//!
//! Every rule here is part of the contract: an unknown operation fails with
//! `EINVAL`, and so does a non-zero argument that the operation does not use
//! (so that it can be given a meaning later).

use kernel::error::{code::EINVAL, Result};
use kernel::ffi::{c_long, c_ulong};
use kernel::page::PAGE_SIZE;

/// An `mmview(2)` operation, with the values of `include/uapi/linux/mmview.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `MMVIEW_CREATE()`: make a view, a snapshot of the caller's view.
    Create,
    /// `MMVIEW_DELETE(id)`: delete a view.
    Delete,
    /// `MMVIEW_CURRENT()`: the id of the caller's view.
    Current,
    /// `MMVIEW_MIGRATE(id)`: move the caller to another view.
    Migrate,
    /// `MMVIEW_UNSHARE(addr, len)`: make a range copy-on-write between views.
    Unshare,
    /// `MMVIEW_SHARE(addr, len)`: make a range shared between views again.
    Share,
    /// `MMVIEW_SWITCH_BASE()`: make the caller's view the base.
    SwitchBase,
    /// `MMVIEW_STAT(id, buf)`: the figures of a view.
    Stat,
}

impl Op {
    /// Every operation, in the order of their values.
    #[cfg_attr(not(CONFIG_KUNIT), allow(dead_code))]
    pub(crate) const ALL: [Op; 8] = [
        Op::Create,
        Op::Delete,
        Op::Current,
        Op::Migrate,
        Op::Unshare,
        Op::Share,
        Op::SwitchBase,
        Op::Stat,
    ];

    /// Decodes the raw `op` argument; `EINVAL` for anything unknown, negative
    /// values included.
    pub(crate) fn from_raw(op: c_long) -> Result<Op> {
        Ok(match u32::try_from(op).map_err(|_| EINVAL)? {
            kernel::uapi::MMVIEW_CREATE => Op::Create,
            kernel::uapi::MMVIEW_DELETE => Op::Delete,
            kernel::uapi::MMVIEW_CURRENT => Op::Current,
            kernel::uapi::MMVIEW_MIGRATE => Op::Migrate,
            kernel::uapi::MMVIEW_UNSHARE => Op::Unshare,
            kernel::uapi::MMVIEW_SHARE => Op::Share,
            kernel::uapi::MMVIEW_SWITCH_BASE => Op::SwitchBase,
            kernel::uapi::MMVIEW_STAT => Op::Stat,
            _ => return Err(EINVAL),
        })
    }

    /// How many of the two arguments the operation uses; the others must be 0.
    pub(crate) fn nr_args(self) -> usize {
        match self {
            Op::Create | Op::Current | Op::SwitchBase => 0,
            Op::Delete | Op::Migrate => 1,
            Op::Unshare | Op::Share | Op::Stat => 2,
        }
    }
}

/// A decoded `mmview(2)` call whose unused arguments were checked to be 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// The operation.
    pub(crate) op: Op,
    /// The arguments; those the operation does not use are 0.
    pub(crate) args: [c_ulong; 2],
}

impl Request {
    /// Decodes and checks the raw system call arguments.
    pub(crate) fn decode(op: c_long, arg1: c_ulong, arg2: c_ulong) -> Result<Request> {
        let op = Op::from_raw(op)?;
        let args = [arg1, arg2];
        if args[op.nr_args()..].iter().any(|&a| a != 0) {
            return Err(EINVAL);
        }
        Ok(Request { op, args })
    }
}

/// Checks the `(addr, len)` of `MMVIEW_UNSHARE`/`MMVIEW_SHARE` and returns
/// the range `[start, end)` they name, `len` rounded up to the page size.
///
/// `EINVAL` unless `addr` is page aligned, `len` is non-zero, and the range
/// neither wraps nor ends above `limit`, the end of the user address space.
pub(crate) fn user_range(
    addr: c_ulong,
    len: c_ulong,
    limit: c_ulong,
) -> Result<(c_ulong, c_ulong)> {
    let page = PAGE_SIZE as c_ulong;
    if addr % page != 0 || len == 0 {
        return Err(EINVAL);
    }
    let len = len.checked_next_multiple_of(page).ok_or(EINVAL)?;
    let end = addr.checked_add(len).ok_or(EINVAL)?;
    if end > limit {
        return Err(EINVAL);
    }
    Ok((addr, end))
}
