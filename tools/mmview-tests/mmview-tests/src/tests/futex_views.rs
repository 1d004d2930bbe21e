//! Futexes in unshared memory: each view's copy of the word is a futex of
//! its own, so a wake in one view does not reach a waiter in another (the
//! word in shared memory stays one futex for all views).
//!
//! The tests follow the memory rule of [`crate::util::view`]: every mapping
//! and thread is made before the first `MMVIEW_CREATE`, and unshared memory
//! is only touched through [`Region`].

use std::time::{Duration, Instant};

use mmview::ViewId;

use super::named_tests;
use crate::check::{check_all, diag, ensure, ensure_eq, Context, TestResult};
use crate::framework::Test;
use crate::util::mem::page_size;
use crate::util::procfs::read_file;
use crate::util::sys::errno_name;
use crate::util::view::{create, futex, prepare, run_together, Region, Rendezvous, ViewThread};

pub fn tests() -> Vec<Test> {
    named_tests![futex_unshared_per_view]
}

const BASE: ViewId = ViewId::BASE;

/// How long the waiter waits, and a waker looks for it asleep, before the
/// test gives up (a lost waiter, not a slow one).
const PATIENCE: Duration = Duration::from_secs(20);

/// Whether thread `tid` of this process is blocked in the futex system
/// call on `addr` (from /proc/self/task/<tid>/syscall: the number and the
/// first argument).
fn asleep_on(tid: libc::pid_t, addr: usize) -> TestResult<bool> {
    let text = read_file(format!("/proc/self/task/{tid}/syscall"))?;
    let mut fields = text.split_whitespace();
    let nr = fields.next().and_then(|f| f.parse::<libc::c_long>().ok());
    let arg0 = fields
        .next()
        .and_then(|f| usize::from_str_radix(f.trim_start_matches("0x"), 16).ok());
    Ok(nr == Some(libc::SYS_futex) && arg0 == Some(addr))
}

/// Waits until thread `tid` sleeps in the futex system call on `addr`.
fn wait_asleep(tid: libc::pid_t, addr: usize) -> TestResult {
    let start = Instant::now();
    while !asleep_on(tid, addr)? {
        ensure!(
            start.elapsed() < PATIENCE,
            "the waiter never slept in FUTEX_WAIT on {addr:#x} (within {} s)",
            PATIENCE.as_secs()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// What one round of [`futex_round`] saw.
#[derive(Debug)]
struct Round {
    /// FUTEX_WAIT of the waiter: 0 when woken, or the errno.
    waited: Result<i64, i32>,
    /// FUTEX_WAKE in the other view: how many it woke.
    woken_elsewhere: Result<i64, i32>,
    /// Whether the waiter still slept after that wake.
    still_asleep: bool,
    /// FUTEX_WAKE in the waiter's view: how many it woke.
    woken_here: Result<i64, i32>,
}

/// What each thread of [`futex_round`] reports.
enum Report {
    Waited(Result<i64, i32>),
    WokenElsewhere(Result<i64, i32>),
    WokenHere(bool, Result<i64, i32>),
}

/// One round: `waiter` (view 1) sleeps in FUTEX_WAIT(`op_flags`) on the
/// word at `offset` of `region`; once it sleeps, `elsewhere` (view 2) wakes
/// the word, then `here` (view 1 too) looks whether the waiter still sleeps
/// and wakes the word.
fn futex_round(
    region: &Region,
    offset: usize,
    op_flags: libc::c_int,
    waiter: &ViewThread,
    elsewhere: &ViewThread,
    here: &ViewThread,
) -> TestResult<Round> {
    let addr = region.addr() + offset;
    let tid = waiter.tid();
    let timeout = libc::timespec {
        tv_sec: PATIENCE.as_secs() as libc::time_t,
        tv_nsec: 0,
    };
    let wake = || {
        futex(
            region.atomic_u32(offset),
            libc::FUTEX_WAKE | op_flags,
            i32::MAX as u32,
            None,
        )
    };
    let after_elsewhere = Rendezvous::new(2);
    let reports = run_together(&[waiter, elsewhere, here], |i| match i {
        0 => {
            // The calling view's copy of the word.
            let value = region.load(offset) as u32;
            let flags = libc::FUTEX_WAIT | op_flags;
            Ok(Report::Waited(futex(
                region.atomic_u32(offset),
                flags,
                value,
                Some(&timeout),
            )))
        }
        1 => {
            let woken = wait_asleep(tid, addr).map(|()| wake());
            after_elsewhere.wait();
            Ok(Report::WokenElsewhere(woken?))
        }
        _ => {
            after_elsewhere.wait();
            let still = asleep_on(tid, addr);
            let woken = wake();
            Ok(Report::WokenHere(still?, woken))
        }
    })?;
    let mut round = Round {
        waited: Err(0),
        woken_elsewhere: Err(0),
        still_asleep: false,
        woken_here: Err(0),
    };
    for report in reports {
        match report {
            Report::Waited(r) => round.waited = r,
            Report::WokenElsewhere(r) => round.woken_elsewhere = r,
            Report::WokenHere(still, r) => {
                round.still_asleep = still;
                round.woken_here = r;
            }
        }
    }
    Ok(round)
}

/// A result of futex() as text.
fn describe(result: Result<i64, i32>) -> String {
    match result {
        Ok(n) => format!("returned {n}"),
        Err(e) => errno_name(e),
    }
}

/// A futex word in an unshared range: a thread in view 1 waits on its
/// copy (FUTEX_WAIT, private and not); FUTEX_WAKE on the same address in
/// view 2 wakes no one (returns 0) and the waiter sleeps on; FUTEX_WAKE in
/// view 1 then wakes it (returns 1, and its wait returns 0). A word in a
/// shared range stays one futex: the wake from view 2 wakes the waiter in
/// view 1.
fn futex_unshared_per_view() -> TestResult {
    prepare()?;
    let page = page_size();
    let unshared = Region::anon(page)?;
    unshared.store(0, 0);
    unshared.store(8, 0);
    unshared.unshare()?;
    let shared = Region::anon(page)?;
    shared.verify_zero(0, page)?;
    let waiter = ViewThread::spawn("waiter-in-view-1")?;
    let here = ViewThread::spawn("waker-in-view-1")?;
    let elsewhere = ViewThread::spawn("waker-in-view-2")?;
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    // SAFETY: the memory rule.
    unsafe {
        waiter.migrate_from(v1, BASE)?;
        here.migrate_from(v1, BASE)?;
        elsewhere.migrate_from(v2, BASE)?;
    }
    // View 1's copy holds 7, view 2's stays 0: the words differ, the
    // address is the same.
    waiter.run(|| {
        unshared.store(0, 7);
        unshared.store(8, 7);
        Ok(())
    })?;
    let mut results = Vec::new();
    for (offset, flags, name) in [
        (0, libc::FUTEX_PRIVATE_FLAG, "FUTEX_WAIT_PRIVATE"),
        (8, 0, "FUTEX_WAIT (not private)"),
    ] {
        let r = futex_round(&unshared, offset, flags, &waiter, &elsewhere, &here)
            .with_context(|| format!("unshared word, {name}"))?;
        diag!("unshared word, {name}: {r:?}");
        results.push((|| {
            ensure_eq!(
                r.woken_elsewhere,
                Ok(0),
                "unshared word, {name}: FUTEX_WAKE in view 2 of the address view 1's thread \
                 waits on (its own copy): threads woken"
            );
            ensure!(
                r.still_asleep,
                "unshared word, {name}: the waiter in view 1 no longer slept after the wake in \
                 view 2"
            );
            ensure_eq!(
                r.woken_here,
                Ok(1),
                "unshared word, {name}: FUTEX_WAKE in view 1 then: threads woken"
            );
            ensure!(
                r.waited == Ok(0),
                "unshared word, {name}: the waiter's FUTEX_WAIT {} (expected 0: woken)",
                describe(r.waited)
            );
            Ok(())
        })());
    }
    let r = futex_round(
        &shared,
        0,
        libc::FUTEX_PRIVATE_FLAG,
        &waiter,
        &elsewhere,
        &here,
    )
    .context("shared word")?;
    diag!("shared word, FUTEX_WAIT_PRIVATE: {r:?}");
    results.push((|| {
        ensure_eq!(
            r.woken_elsewhere,
            Ok(1),
            "shared word: FUTEX_WAKE in view 2 of the word view 1's thread waits on: threads woken"
        );
        ensure!(
            r.waited == Ok(0),
            "shared word: the waiter's FUTEX_WAIT {} (expected 0: woken from view 2)",
            describe(r.waited)
        );
        Ok(())
    })());
    check_all(results)
}
