//! The system call without views: MMVIEW_CURRENT, the argument rules, and
//! the ops of a process that has only its base (views: `views`).

use mmview::{
    ViewId, MMVIEW_CREATE, MMVIEW_CURRENT, MMVIEW_DELETE, MMVIEW_MIGRATE, MMVIEW_SWITCH_BASE,
};

use super::named_tests;
use crate::check::{check_all, ensure_eq, fail, Context, TestResult};
use crate::framework::Test;
use crate::util::mem::{fill_pattern, page_size, verify_pattern, Mapping};
use crate::util::sys::{expect_errno, expect_raw_errno};
use crate::util::thread::run_concurrently;

pub fn tests() -> Vec<Test> {
    named_tests![
        current_main_thread,
        current_from_threads,
        unknown_ops_einval,
        unused_args_einval,
        base_only_ops,
    ]
}

/// The tests for a kernel built without `CONFIG_MMVIEW`.
pub fn config_off_tests() -> Vec<Test> {
    named_tests![config_off_enosys]
}

/// With `CONFIG_MMVIEW=n` every call, valid or not, fails with ENOSYS.
fn config_off_enosys() -> TestResult {
    let mut calls: Vec<(i64, u64, u64)> = (MMVIEW_CREATE..=MMVIEW_SWITCH_BASE)
        .flat_map(|op| [(op, 0, 0), (op, 1, 0), (op, 0x1000, 0x1000)])
        .collect();
    calls.extend([(7, 0, 0), (-1, 0, 0), (i64::MAX, 1, 1)]);
    check_all(
        calls
            .into_iter()
            .map(|(op, a1, a2)| expect_raw_errno(op, a1, a2, libc::ENOSYS)),
    )?;
    ensure_eq!(mmview::is_available(), false, "mmview::is_available()");
    Ok(())
}

/// A process without views is in the base view, id 0.
fn current_main_thread() -> TestResult {
    ensure_eq!(
        mmview::current().context("MMVIEW_CURRENT")?,
        ViewId::BASE,
        "MMVIEW_CURRENT"
    );
    // SAFETY: MMVIEW_CURRENT changes nothing.
    let raw = unsafe { mmview::raw_mmview(MMVIEW_CURRENT, 0, 0) };
    ensure_eq!(raw, 0, "raw MMVIEW_CURRENT return value");
    Ok(())
}

/// Every thread of a process without views is in view 0, also under
/// concurrent calls.
fn current_from_threads() -> TestResult {
    const THREADS: usize = 8;
    const CALLS: usize = 20_000;
    let results = run_concurrently(THREADS, |_| {
        (0..CALLS)
            .map(|call| (call, mmview::current()))
            .find(|(_, result)| *result != Ok(ViewId::BASE))
    })?;
    for (thread, wrong) in results.into_iter().enumerate() {
        if let Some((call, result)) = wrong {
            fail!("thread {thread}, call {call}: MMVIEW_CURRENT gave {result:?}, expected view 0");
        }
    }
    Ok(())
}

/// Ops outside 0..=7 fail with EINVAL, including values that only differ
/// from a valid op in the upper 32 bits.
fn unknown_ops_einval() -> TestResult {
    let ops = [
        8,
        9,
        1000,
        -1,
        i64::MIN,
        i64::MAX,
        1 << 32,
        (1 << 32) | MMVIEW_CURRENT,
    ];
    check_all(ops.map(|op| expect_raw_errno(op, 0, 0, libc::EINVAL)))
}

/// Arguments an op does not use must be 0. (MMVIEW_UNSHARE, MMVIEW_SHARE
/// and MMVIEW_STAT use both.)
fn unused_args_einval() -> TestResult {
    let high = 1u64 << 63;
    let cases = [
        (MMVIEW_CURRENT, 1, 0),
        (MMVIEW_CURRENT, 0, 1),
        (MMVIEW_CURRENT, high, 0),
        (MMVIEW_CURRENT, u64::MAX, u64::MAX),
        (MMVIEW_CREATE, 1, 0),
        (MMVIEW_CREATE, 0, 1),
        (MMVIEW_CREATE, 0, high),
        (MMVIEW_DELETE, 1, 1),
        (MMVIEW_DELETE, 1, 1 << 32),
        (MMVIEW_MIGRATE, 1, 1),
        (MMVIEW_MIGRATE, 0, high),
        (MMVIEW_SWITCH_BASE, 1, 0),
        (MMVIEW_SWITCH_BASE, 0, 1),
        (MMVIEW_SWITCH_BASE, high, high),
    ];
    check_all(cases.map(|(op, arg1, arg2)| expect_raw_errno(op, arg1, arg2, libc::EINVAL)))?;
    ensure_eq!(
        mmview::current()?,
        ViewId::BASE,
        "MMVIEW_CURRENT after the refused calls"
    );
    Ok(())
}

/// In a process that has only its base: MIGRATE to the base returns 0 and
/// changes nothing, to anything else EINVAL; DELETE of the base is EPERM,
/// of anything else EINVAL; SWITCH_BASE returns the base.
fn base_only_ops() -> TestResult {
    const SEED: u64 = 0x6d6d_7669_6577;
    let mut map = Mapping::anon(page_size())?;
    fill_pattern(map.as_mut_slice(), SEED);
    let ids = [1, 2, 1000, u64::MAX].map(ViewId::from_raw);
    // SAFETY: migrating to the view the thread is in changes nothing; the
    // other ids do not exist, so those calls cannot move the thread.
    let to_base = unsafe { mmview::migrate(ViewId::BASE) };
    ensure_eq!(to_base, Ok(ViewId::BASE), "MMVIEW_MIGRATE(0) from the base");
    check_all(ids.map(|id| {
        // SAFETY: as above.
        let got = unsafe { mmview::migrate(id) };
        expect_errno(got, libc::EINVAL, &format!("MMVIEW_MIGRATE({id})"))
    }))?;
    expect_errno(
        mmview::delete(ViewId::BASE),
        libc::EPERM,
        "MMVIEW_DELETE(0)",
    )?;
    check_all(ids.map(|id| {
        expect_errno(
            mmview::delete(id),
            libc::EINVAL,
            &format!("MMVIEW_DELETE({id})"),
        )
    }))?;
    ensure_eq!(
        mmview::switch_base(),
        Ok(ViewId::BASE),
        "MMVIEW_SWITCH_BASE"
    );
    ensure_eq!(
        mmview::current()?,
        ViewId::BASE,
        "MMVIEW_CURRENT afterwards"
    );
    verify_pattern(map.as_slice(), SEED).context("memory after the calls")
}
