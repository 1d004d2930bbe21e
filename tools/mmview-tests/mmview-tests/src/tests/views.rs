//! Views: ids, per-thread views, deletion, memory shared between views and
//! unshared (copy-on-write) memory, futexes and locks across views, the
//! limit on views, and the release of views at exit, exec and fork.
//!
//! The layout of the address space stays fixed while views exist (see
//! [`crate::util::view`]): every mapping and thread a test uses is made
//! before its first `MMVIEW_CREATE`, nothing is unmapped afterwards, and
//! unshared memory is only touched through [`Region`]. That is the safety
//! argument of every `mmview::migrate` below ("the memory rule").

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use mmview::ViewId;

use super::named_tests;
use crate::check::{check_all, diag, ensure, ensure_eq, fail, Context, Failure, TestResult};
use crate::framework::Test;
use crate::util::mem::{fill_pattern, page_size, pattern, verify_pattern};
use crate::util::process::{fork, pipe, Child, Receiver, Sender};
use crate::util::procfs::{
    drop_caches, free_kib, meminfo, read_file, set_temporarily, smaps_entries, thread_perms,
    thread_smaps_entries, write_file, MemoryCgroup,
};
use crate::util::sys::{errno_name, expect_errno, userfaultfd_open, userfaultfd_register};
use crate::util::view::{
    create, expect_current, futex, migrate_from, prepare, run_together, thread_smaps_kib,
    threads_in_new_views, Region, Rendezvous, ViewThread,
};

pub fn tests() -> Vec<Test> {
    named_tests![
        views_ids,
        views_current_per_thread,
        views_delete_errors,
        views_delete_own_view,
        views_shared_anon_sync,
        views_shared_file_private,
        views_map_shared,
        views_concurrent_atomic_counter,
        views_futex_across_views,
        views_condvar_across_views,
        views_unshared_snapshot,
        views_create_from_view,
        views_many_distinct,
        views_designate_eperm,
        views_enospc_at_limit,
        views_memory_returns,
        views_exit_releases,
        views_exec_releases,
        views_fork_from_base,
        views_fork_keeps_view_mappings,
        views_layout_mmap_munmap,
        views_layout_mprotect,
        views_layout_dontneed,
        views_layout_brk,
        views_layout_mremap,
        views_layout_mremap_move,
        views_layout_mremap_undone,
        views_layout_madvise_mseal,
        views_refuse_ksm_userfaultfd,
        views_layout_stack_growth,
        views_base_reuses_page_views_map,
        views_swap_out_and_back,
        views_migrate_pages,
        views_switch_base,
        views_thread_created_in_view,
        views_stress_fork,
    ]
}

const BASE: ViewId = ViewId::BASE;
const MIB: usize = 1 << 20;

/// The view with raw id `raw`.
fn id(raw: u64) -> ViewId {
    ViewId::from_raw(raw)
}

/// `MMVIEW_MIGRATE(view)` that must fail with `errno`.
fn expect_migrate_errno(view: ViewId, errno: i32, what: &str) -> TestResult {
    // SAFETY: the call must fail and change nothing; should the kernel move
    // the thread anyway, the test follows the memory rule, so nothing
    // changes under it either (and the test fails).
    let got = unsafe { mmview::migrate(view) };
    expect_errno(got, errno, what)
}

/// A file in /tmp with `contents`, open for reading and writing, already
/// unlinked.
fn temp_file(name: &str, contents: &[u8]) -> TestResult<File> {
    let path = format!("/tmp/mmview-views-{}-{name}", std::process::id());
    std::fs::write(&path, contents).with_context(|| format!("writing {path}"))?;
    let file = File::options()
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {path}"))?;
    std::fs::remove_file(&path).with_context(|| format!("removing {path}"))?;
    Ok(file)
}

/// Checks with `pread` that `file` holds the pattern `seed` in its first
/// `buf.len()` bytes (`buf` is allocated by the caller, before the views).
fn verify_file(file: &File, buf: &mut [u8], seed: u64, what: &str) -> TestResult {
    file.read_exact_at(buf, 0)
        .with_context(|| format!("pread of {what}"))?;
    verify_pattern(buf, seed).with_context(|| format!("{what}, read with pread"))
}

/// The ids 1, 2, 3 in order; a deleted id is never reused; CREATE does
/// not move the caller.
fn views_ids() -> TestResult {
    prepare()?;
    for want in 1..=3 {
        let got = create(&format!("#{want}"))?;
        ensure_eq!(got, id(want), "id of view #{want}");
    }
    expect_current(BASE, "the main thread after three CREATEs")?;
    mmview::delete(id(2)).context("MMVIEW_DELETE(2)")?;
    ensure_eq!(
        create("after deleting view 2")?,
        id(4),
        "id of the view created after deleting view 2 (ids are never reused)"
    );
    // SAFETY: MMVIEW_CREATE does not move the caller.
    let raw = unsafe { mmview::raw_mmview(mmview::MMVIEW_CREATE, 0, 0) };
    ensure_eq!(raw, 5, "raw return value of the fifth MMVIEW_CREATE");
    expect_current(BASE, "the main thread")?;
    // SAFETY: MMVIEW_CURRENT changes nothing.
    let raw = unsafe { mmview::raw_mmview(mmview::MMVIEW_CURRENT, 0, 0) };
    ensure_eq!(raw, 0, "raw MMVIEW_CURRENT of the main thread");
    Ok(())
}

/// Each thread has its own view; MIGRATE returns the previous one, and
/// migrating to the current view returns it and changes nothing.
fn views_current_per_thread() -> TestResult {
    const CALLS: usize = 10_000;
    prepare()?;
    let a = ViewThread::spawn("a")?;
    let b = ViewThread::spawn("b")?;
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    // SAFETY: the memory rule (and this test has no unshared memory).
    unsafe {
        a.migrate_from(v1, BASE)?;
        b.migrate_from(v2, BASE)?;
    }
    let expected = [v1, v2];
    run_together(&[&a, &b], |i| {
        for call in 0..CALLS {
            let got = mmview::current().context("MMVIEW_CURRENT")?;
            ensure_eq!(got, expected[i], "MMVIEW_CURRENT, call {call}");
        }
        Ok(())
    })?;
    expect_current(BASE, "the main thread while a and b are in views")?;

    // SAFETY: as above.
    unsafe { a.migrate_from(v1, v1) }.context("migrating to the current view")?;
    ensure_eq!(a.current()?, v1, "view of a after migrating to it again");
    // SAFETY: as above.
    unsafe { a.migrate_from(v2, v1)? };
    ensure_eq!(a.current()?, v2, "view of a after moving to view 2");
    ensure_eq!(b.current()?, v2, "view of b");
    // SAFETY: as above.
    unsafe { b.migrate_from(BASE, v2)? };
    ensure_eq!(b.current()?, BASE, "view of b after moving to the base");
    ensure_eq!(a.current()?, v2, "view of a after b moved");

    // The main thread too.
    // SAFETY: the memory rule.
    unsafe {
        migrate_from(v1, BASE, "the main thread")?;
        expect_current(v1, "the main thread in view 1")?;
        migrate_from(v1, v1, "the main thread, to its own view")?;
        migrate_from(BASE, v1, "the main thread, back")?;
    }
    expect_current(BASE, "the main thread, back in the base")?;
    ensure_eq!(a.current()?, v2, "view of a at the end");
    Ok(())
}

/// DELETE(0) is EPERM; unknown and deleted ids are EINVAL for DELETE and
/// MIGRATE; refused calls change nothing.
fn views_delete_errors() -> TestResult {
    prepare()?;
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    check_all([
        expect_errno(mmview::delete(BASE), libc::EPERM, "DELETE(0)"),
        expect_errno(
            mmview::delete(id(3)),
            libc::EINVAL,
            "DELETE(3), the next id, not created yet",
        ),
        expect_errno(mmview::delete(id(99)), libc::EINVAL, "DELETE(99)"),
        expect_errno(mmview::delete(id(u64::MAX)), libc::EINVAL, "DELETE(2^64-1)"),
    ])?;
    mmview::delete(v1).context("MMVIEW_DELETE(1)")?;
    check_all([
        expect_errno(mmview::delete(v1), libc::EINVAL, "second DELETE(1)"),
        expect_migrate_errno(v1, libc::EINVAL, "MIGRATE to the deleted view 1"),
        expect_migrate_errno(id(3), libc::EINVAL, "MIGRATE(3), not created yet"),
        expect_migrate_errno(id(99), libc::EINVAL, "MIGRATE(99)"),
    ])?;
    expect_current(BASE, "the main thread after the refused calls")?;

    // View 2 is untouched; DELETE(0) is EPERM from a view too.
    // SAFETY: the memory rule (no unshared memory here).
    unsafe { migrate_from(v2, BASE, "the main thread")? };
    let from_view = expect_errno(mmview::delete(BASE), libc::EPERM, "DELETE(0) in view 2");
    // SAFETY: as above.
    unsafe { migrate_from(BASE, v2, "the main thread, back")? };
    from_view?;
    ensure_eq!(
        create("after the refused calls")?,
        id(3),
        "id after the refused DELETE(3)"
    );
    Ok(())
}

/// A thread deletes its own view and goes on in it (shared and unshared
/// memory, CURRENT); so does a thread whose view another thread deletes.
/// Leaving works; the deleted ids stay dead.
fn views_delete_own_view() -> TestResult {
    const S0: u64 = 0x5300;
    const S1: u64 = 0x5301;
    const U0: u64 = 0x5500;
    const U1: u64 = 0x5501;
    const U2: u64 = 0x5502;
    const U3: u64 = 0x5503;
    prepare()?;
    let page = page_size();
    let shared = Region::anon(4 * page)?;
    shared.fill_all(S0);
    let unshared = Region::anon(4 * page)?;
    unshared.fill_all(U0);
    unshared.unshare()?;
    let w = ViewThread::spawn("w")?;
    let x = ViewThread::spawn("x")?;
    let v = create("view 1")?;
    let v2 = create("view 2")?;

    // SAFETY: the memory rule (also for the migrations below).
    unsafe { w.migrate_from(v, BASE)? };
    w.run(|| {
        unshared.verify_all(U0).context("snapshot in view 1")?;
        unshared.fill_all(U1);
        mmview::delete(v).context("MMVIEW_DELETE of its own view")?;
        expect_current(v, "a thread that deleted its view")?;
        unshared
            .verify_all(U1)
            .context("unshared data after deleting the view")?;
        shared.fill_all(S1);
        unshared.fill(0, page, U2);
        unshared.verify(0, page, U2).context("page 0 rewritten")?;
        unshared.verify(page, 3 * page, U1).context("pages 1-3")
    })
    .context("thread w in the view it deleted")?;
    shared
        .verify_all(S1)
        .context("base: shared data written in the deleted view")?;
    unshared.verify_all(U0).context("base: unshared data")?;
    expect_migrate_errno(
        v,
        libc::EINVAL,
        "MIGRATE of the main thread to deleted view 1",
    )?;
    expect_errno(mmview::delete(v), libc::EINVAL, "DELETE of deleted view 1")?;

    // View 2 is deleted by another thread while x is in it.
    // SAFETY: the memory rule.
    unsafe { x.migrate_from(v2, BASE)? };
    x.run(|| {
        unshared.fill_all(U3);
        Ok(())
    })?;
    mmview::delete(v2).context("MMVIEW_DELETE of view 2 with thread x in it")?;
    x.run(|| {
        expect_current(v2, "a thread whose view was deleted")?;
        unshared.verify_all(U3).context("unshared data")?;
        shared.verify_all(S1).context("shared data")
    })
    .context("thread x in deleted view 2")?;
    w.run(|| {
        unshared.verify(0, page, U2)?;
        unshared.verify(page, 3 * page, U1)?;
        shared.verify_all(S1)
    })
    .context("thread w, still in deleted view 1")?;

    // Leaving.
    // SAFETY: the memory rule.
    unsafe { w.migrate_from(BASE, v)? };
    w.run(|| {
        expect_current(BASE, "w after leaving")?;
        unshared.verify_all(U0).context("base data")?;
        expect_migrate_errno(v, libc::EINVAL, "MIGRATE back to the deleted view it left")
    })
    .context("thread w in the base")?;
    // SAFETY: the memory rule.
    unsafe { x.migrate_from(BASE, v2)? };
    x.run(|| expect_migrate_errno(v2, libc::EINVAL, "MIGRATE back to deleted view 2"))?;
    ensure_eq!(create("after the deletions")?, id(3), "next id");
    Ok(())
}

/// Private anonymous memory is shared by default: a store in any view is
/// seen in every other, also on pages first touched in a view after
/// CREATE, and on pages a view read (as zeros) before another wrote them.
fn views_shared_anon_sync() -> TestResult {
    const P0: u64 = 0xa000;
    const P1: u64 = 0xa001;
    const P2: u64 = 0xa002;
    const P3: u64 = 0xa003;
    prepare()?;
    let q = 16 * page_size();
    let region = Region::anon(4 * q)?;
    // Quarter 0 is written before CREATE, quarters 1-3 are not touched.
    region.fill(0, q, P0);
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    // SAFETY: the memory rule.
    unsafe {
        a.migrate_from(v1, BASE)?;
        b.migrate_from(v2, BASE)?;
    }

    b.run(|| region.verify_zero(2 * q, q))
        .context("view 2: quarter 2 (never written) before anything else")?;
    a.run(|| {
        region.verify(0, q, P0).context("quarter 0")?;
        region.verify_zero(q, q).context("quarter 1")?;
        region.fill(0, 2 * q, P1);
        Ok(())
    })
    .context("view 1")?;
    region
        .verify(0, 2 * q, P1)
        .context("base: quarters 0-1 written in view 1")?;
    b.run(|| region.verify(0, 2 * q, P1))
        .context("view 2: quarters 0-1 written in view 1")?;

    // Quarter 2 was read in view 2, quarter 3 never touched anywhere.
    region.fill(2 * q, 2 * q, P2);
    a.run(|| region.verify(2 * q, 2 * q, P2))
        .context("view 1: quarters 2-3 written in the base")?;
    b.run(|| region.verify(2 * q, 2 * q, P2))
        .context("view 2: quarters 2-3 written in the base (quarter 2 read as zeros before)")?;

    b.run(|| {
        region.fill_all(P3);
        Ok(())
    })?;
    region
        .verify_all(P3)
        .context("base: everything written in view 2")?;
    a.run(|| region.verify_all(P3))
        .context("view 1: everything written in view 2")?;
    Ok(())
}

/// A private file mapping is shared by default: views read the file's
/// data, a store in one view (a private copy of the page) is seen in all,
/// and the file never changes.
fn views_shared_file_private() -> TestResult {
    const F: u64 = 0xf11e;
    const W1: u64 = 0xf001;
    const W2: u64 = 0xf002;
    const W3: u64 = 0xf003;
    prepare()?;
    let page = page_size();
    let len = 4 * page;
    let file = temp_file("private", &pattern(len, F))?;
    let region = Region::file(&file, len, libc::MAP_PRIVATE)?;
    let mut readback = vec![0u8; len];
    // Page 0 is mapped in the base before CREATE, pages 1-3 are not.
    region.read_pages(0, page);
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    // SAFETY: the memory rule.
    unsafe {
        a.migrate_from(v1, BASE)?;
        b.migrate_from(v2, BASE)?;
    }

    a.run(|| {
        region.verify_all(F).context("the file's data")?;
        region.fill(0, 2 * page, W1);
        Ok(())
    })
    .context("view 1")?;
    region
        .verify(0, 2 * page, W1)
        .context("base: pages 0-1 written in view 1")?;
    region
        .verify(2 * page, 2 * page, F)
        .context("base: pages 2-3 (file data)")?;
    // Page 2 is mapped from the file in view 1 now; view 2 writes it.
    b.run(|| {
        region.verify(0, 2 * page, W1).context("pages 0-1")?;
        region.verify(2 * page, 2 * page, F).context("pages 2-3")?;
        region.fill(2 * page, page, W2);
        Ok(())
    })
    .context("view 2")?;
    a.run(|| region.verify(2 * page, page, W2))
        .context("view 1: page 2 written in view 2 after view 1 read it")?;
    region
        .verify(2 * page, page, W2)
        .context("base: page 2 written in view 2")?;
    region.fill(3 * page, page, W3);
    a.run(|| region.verify(3 * page, page, W3))
        .context("view 1: page 3 written in the base")?;
    b.run(|| region.verify(3 * page, page, W3))
        .context("view 2: page 3 written in the base")?;
    verify_file(&file, &mut readback, F, "the file after the stores")
}

/// MAP_SHARED mappings (a file, anonymous shared memory, a memfd) are one
/// object in every view: stores in a view are seen in the base and through
/// the file, and the other way round.
fn views_map_shared() -> TestResult {
    const FILE: u64 = 0x5f00;
    const A: [u64; 3] = [0x5a01, 0x5a02, 0x5a03];
    const B: [u64; 3] = [0x5b01, 0x5b02, 0x5b03];
    const C: [u64; 3] = [0x5c01, 0x5c02, 0x5c03];
    prepare()?;
    let len = 4 * page_size();
    let file = temp_file("shared", &pattern(len, FILE))?;
    let file_map = Region::file(&file, len, libc::MAP_SHARED)?;
    let anon = Region::anon_shared(len)?;
    // SAFETY: memfd_create reads the NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"mmview-views".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        fail!("memfd_create: {}", std::io::Error::last_os_error());
    }
    // SAFETY: memfd_create just returned this descriptor; nothing else owns it.
    let memfd = unsafe { File::from_raw_fd(fd) };
    memfd
        .set_len(len as u64)
        .context("ftruncate of the memfd")?;
    let memfd_map = Region::file(&memfd, len, libc::MAP_SHARED)?;
    let maps = [file_map, anon, memfd_map];
    let names = [
        "the shared file mapping",
        "the shared anonymous mapping",
        "the memfd",
    ];
    let mut buf = vec![0u8; len];
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    // SAFETY: the memory rule.
    unsafe {
        a.migrate_from(v1, BASE)?;
        b.migrate_from(v2, BASE)?;
    }

    a.run(|| {
        file_map.verify_all(FILE).context("the file's data")?;
        anon.verify_zero(0, len).context("the anonymous mapping")?;
        memfd_map.verify_zero(0, len).context("the memfd")?;
        for (map, seed) in maps.iter().zip(A) {
            map.fill_all(seed);
        }
        Ok(())
    })
    .context("view 1")?;
    for ((map, seed), name) in maps.iter().zip(A).zip(names) {
        map.verify_all(seed)
            .with_context(|| format!("base: {name} written in view 1"))?;
    }
    b.run(|| {
        for ((map, seed), name) in maps.iter().zip(A).zip(names) {
            map.verify_all(seed).context(name)?;
        }
        Ok(())
    })
    .context("view 2: written in view 1")?;
    verify_file(&file, &mut buf, A[0], "the file written in view 1")?;
    verify_file(&memfd, &mut buf, A[2], "the memfd written in view 1")?;

    for (map, seed) in maps.iter().zip(B) {
        map.fill_all(seed);
    }
    a.run(|| {
        for ((map, seed), name) in maps.iter().zip(B).zip(names) {
            map.verify_all(seed).context(name)?;
        }
        Ok(())
    })
    .context("view 1: written in the base")?;
    verify_file(&file, &mut buf, B[0], "the file written in the base")?;
    verify_file(&memfd, &mut buf, B[2], "the memfd written in the base")?;

    for (f, seed) in [(&file, C[0]), (&memfd, C[2])] {
        fill_pattern(&mut buf, seed);
        f.write_all_at(&buf, 0).context("pwrite")?;
    }
    let written = [(file_map, C[0], names[0]), (memfd_map, C[2], names[2])];
    for thread in [&a, &b] {
        thread
            .run(|| {
                for (map, seed, name) in written {
                    map.verify_all(seed).context(name)?;
                }
                Ok(())
            })
            .with_context(|| format!("thread {}: data written with pwrite", thread.name()))?;
    }
    for (map, seed, name) in written {
        map.verify_all(seed)
            .with_context(|| format!("base: {name} written with pwrite"))?;
    }
    Ok(())
}

/// Threads in three views (half of them moving between the views as they
/// go) increment one counter in shared private memory and one in a
/// MAP_SHARED mapping; no increment is lost.
fn views_concurrent_atomic_counter() -> TestResult {
    const THREADS: usize = 9;
    const ROUNDS: usize = 20;
    const PER_ROUND: u64 = 2_500;
    prepare()?;
    let private = Region::anon(page_size())?;
    let anon_shared = Region::anon_shared(page_size())?;
    private.store(0, 0);
    anon_shared.store(0, 0);
    let threads = ViewThread::spawn_many("adder", THREADS)?;
    let refs: Vec<&ViewThread> = threads.iter().collect();
    let views = [BASE, create("view 1")?, create("view 2")?];
    let start = Rendezvous::new(THREADS);
    let finish = Rendezvous::new(THREADS);

    let totals = run_together(&refs, |i| {
        let mut at = i % views.len();
        // SAFETY: the memory rule.
        unsafe { migrate_from(views[at], BASE, "the adder")? };
        let counters = [private.atomic_u64(0), anon_shared.atomic_u64(0)];
        start.wait();
        for round in 0..ROUNDS {
            for _ in 0..PER_ROUND {
                for counter in counters {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            if i % 2 == 1 {
                let next = (at + 1) % views.len();
                // SAFETY: as above.
                unsafe { migrate_from(views[next], views[at], "the adder") }
                    .with_context(|| format!("after round {round}"))?;
                at = next;
            }
        }
        expect_current(views[at], "the adder at the end")?;
        finish.wait();
        Ok(counters.map(|c| (views[at], c.load(Ordering::SeqCst))))
    })?;
    let want = THREADS as u64 * ROUNDS as u64 * PER_ROUND;
    for (thread, seen) in totals.iter().enumerate() {
        for (kind, (view, total)) in ["private", "MAP_SHARED"].iter().zip(seen) {
            ensure_eq!(
                *total,
                want,
                "the {kind} counter read by adder-{thread} in view {view}"
            );
        }
    }
    ensure_eq!(
        private.atomic_u64(0).load(Ordering::SeqCst),
        want,
        "the private counter read in the base"
    );
    Ok(())
}

/// How long a waiter waits, and a waker looks for it, before failing.
const FUTEX_PATIENCE: Duration = Duration::from_secs(5);

/// One futex handoff: `waiter` sleeps in FUTEX_WAIT on `word` (value 0),
/// `waker` wakes it with the value unchanged (the wake must find it: that
/// proves the two views agree on the futex), then sets 1 and wakes again.
fn futex_handoff(
    word: &AtomicU32,
    waiter: &ViewThread,
    waker: &ViewThread,
    private: bool,
) -> TestResult {
    let flag = if private { libc::FUTEX_PRIVATE_FLAG } else { 0 };
    let (wait_op, wake_op) = (libc::FUTEX_WAIT | flag, libc::FUTEX_WAKE | flag);
    word.store(0, Ordering::SeqCst);
    run_together(&[waiter, waker], |i| {
        if i == 0 {
            let timeout = libc::timespec {
                tv_sec: FUTEX_PATIENCE.as_secs() as libc::time_t,
                tv_nsec: 0,
            };
            let mut woken = 0u32;
            while word.load(Ordering::SeqCst) == 0 {
                match futex(word, wait_op, 0, Some(&timeout)) {
                    Ok(_) => woken += 1,
                    Err(libc::EAGAIN | libc::EINTR) => {}
                    Err(libc::ETIMEDOUT) => fail!(
                        "FUTEX_WAIT not woken in {} s ({woken} wake-ups before)",
                        FUTEX_PATIENCE.as_secs()
                    ),
                    Err(e) => fail!("FUTEX_WAIT: {}", errno_name(e)),
                }
            }
            ensure!(woken > 0, "FUTEX_WAIT never returned because of a wake-up");
            return Ok(());
        }
        let start = Instant::now();
        loop {
            match futex(word, wake_op, 1, None) {
                Ok(1) => break,
                Ok(0) => {}
                Ok(n) => fail!("FUTEX_WAKE(1) woke {n} waiters"),
                Err(e) => fail!("FUTEX_WAKE: {}", errno_name(e)),
            }
            if start.elapsed() > FUTEX_PATIENCE {
                word.store(1, Ordering::SeqCst);
                let _ = futex(word, wake_op, i32::MAX as u32, None);
                fail!(
                    "FUTEX_WAKE found no waiter in {} s",
                    FUTEX_PATIENCE.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        word.store(1, Ordering::SeqCst);
        match futex(word, wake_op, 1, None) {
            Ok(0 | 1) => Ok(()),
            Ok(n) => fail!("the second FUTEX_WAKE(1) woke {n} waiters"),
            Err(e) => fail!("the second FUTEX_WAKE: {}", errno_name(e)),
        }
    })
    .map(drop)
}

/// FUTEX_WAIT in one view is woken by FUTEX_WAKE in another, private and
/// not, on a word in private anonymous memory (shared between views) and
/// in a MAP_SHARED mapping, in both directions.
fn views_futex_across_views() -> TestResult {
    prepare()?;
    let words = [
        ("private anonymous memory", Region::anon(page_size())?),
        ("MAP_SHARED memory", Region::anon_shared(page_size())?),
    ];
    for (_, region) in &words {
        region.store(0, 0);
    }
    let in_v1 = ViewThread::spawn("in-view-1")?;
    let in_base = ViewThread::spawn("in-base")?;
    let in_v2 = ViewThread::spawn("in-view-2")?;
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    // SAFETY: the memory rule.
    unsafe {
        in_v1.migrate_from(v1, BASE)?;
        in_v2.migrate_from(v2, BASE)?;
    }
    for (memory, region) in &words {
        for private in [true, false] {
            let kind = if private { "private" } else { "shared" };
            for (waiter, waker, what) in [
                (&in_v1, &in_base, "waiter in view 1, waker in the base"),
                (&in_base, &in_v2, "waiter in the base, waker in view 2"),
            ] {
                futex_handoff(region.atomic_u32(0), waiter, waker, private)
                    .with_context(|| format!("{kind} futex in {memory}, {what}"))?;
            }
        }
    }
    Ok(())
}

/// Watches `progress` until `done` reaches `workers`. If it stays still
/// for [`FUTEX_PATIENCE`] twice over, a wake-up between views was lost and
/// a thread sleeps for good (in `Mutex::lock`, which has no timeout): the
/// stuck threads use the test's stack, so they cannot be abandoned; the
/// watchdog reports and ends the test child instead of letting it hang.
fn watchdog(done: &AtomicU32, workers: u32, progress: &AtomicU64, what: &str) -> TestResult {
    let patience = 2 * FUTEX_PATIENCE;
    let mut last = progress.load(Ordering::SeqCst);
    let mut since = Instant::now();
    while done.load(Ordering::SeqCst) < workers {
        std::thread::sleep(Duration::from_millis(10));
        let now = progress.load(Ordering::SeqCst);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > patience {
            diag!(
                "{what}: no progress in {} s, at step {now}: a thread sleeps for good (a \
                 wake-up between views was lost); ending the test",
                patience.as_secs()
            );
            // SAFETY: ends the test child, the only way out (see above).
            unsafe { libc::_exit(1) };
        }
    }
    Ok(())
}

/// A std Mutex and Condvar (futexes on the heap) hand a turn back and forth
/// between threads in two views.
fn views_condvar_across_views() -> TestResult {
    const ROUNDS: u64 = 1_000;
    prepare()?;
    let turn = Mutex::new(0u64);
    let changed = Condvar::new();
    let progress = AtomicU64::new(0);
    let done = AtomicU32::new(0);
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let watcher = ViewThread::spawn("watchdog")?;
    let views = [create("view 1")?, create("view 2")?];
    // SAFETY: the memory rule.
    unsafe {
        a.migrate_from(views[0], BASE)?;
        b.migrate_from(views[1], BASE)?;
    }
    let take_turns = |me: u64| -> TestResult {
        for round in 0..ROUNDS {
            let mut guard = turn.lock().unwrap_or_else(|e| e.into_inner());
            while *guard % 2 != me {
                let (next, waited) = changed
                    .wait_timeout(guard, FUTEX_PATIENCE)
                    .unwrap_or_else(|e| e.into_inner());
                guard = next;
                ensure!(
                    !waited.timed_out() || *guard % 2 == me,
                    "round {round}: no turn in {} s (turn {})",
                    FUTEX_PATIENCE.as_secs(),
                    *guard
                );
            }
            *guard += 1;
            drop(guard);
            progress.fetch_add(1, Ordering::SeqCst);
            changed.notify_all();
        }
        Ok(())
    };
    run_together(&[&a, &b, &watcher], |i| {
        if i == 2 {
            return watchdog(&done, 2, &progress, "Mutex/Condvar handoff");
        }
        let result = take_turns(i as u64);
        done.fetch_add(1, Ordering::SeqCst);
        result?;
        expect_current(views[i], "the thread at the end")
    })?;
    let turns = *turn.lock().unwrap_or_else(|e| e.into_inner());
    ensure_eq!(turns, 2 * ROUNDS, "turns taken");
    Ok(())
}

/// CREATE snapshots the caller's view: the new view keeps the unshared data
/// of that moment (zeros where nothing was written yet) while the base
/// changes, and its own stores stay its own. A later view snapshots the
/// base as it is then.
fn views_unshared_snapshot() -> TestResult {
    const P0: u64 = 0x5000;
    const P1: u64 = 0x5001;
    const P1B: u64 = 0x501b;
    const P2: u64 = 0x5002;
    const P3: u64 = 0x5003;
    const P4: u64 = 0x5004;
    prepare()?;
    let page = page_size();
    let region = Region::anon(16 * page)?;
    // Pages 0-7 written before CREATE, pages 8-15 never touched.
    region.fill(0, 8 * page, P0);
    region.unshare()?;
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let v1 = create("view 1")?;

    region.fill(0, 8 * page, P1);
    region.fill(12 * page, 4 * page, P1B);
    // SAFETY: the memory rule.
    unsafe { a.migrate_from(v1, BASE)? };
    a.run(|| {
        region
            .verify(0, 8 * page, P0)
            .context("pages 0-7: the data at CREATE")?;
        region
            .verify_zero(8 * page, 8 * page)
            .context("pages 8-15: never written before CREATE")?;
        region.fill_all(P2);
        Ok(())
    })
    .context("view 1")?;
    let base_at_v2 = || -> TestResult {
        region.verify(0, 8 * page, P1)?;
        region.verify_zero(8 * page, 4 * page)?;
        region.verify(12 * page, 4 * page, P1B)
    };
    base_at_v2().context("base after view 1 wrote its copy")?;
    a.run(|| region.verify_all(P2))
        .context("view 1: its own data")?;

    let v2 = create("view 2, from the base")?;
    region.fill_all(P3);
    // SAFETY: the memory rule.
    unsafe { b.migrate_from(v2, BASE)? };
    b.run(base_at_v2)
        .context("view 2: the base at its CREATE")?;
    a.run(|| region.verify_all(P2))
        .context("view 1 after view 2 was created")?;
    b.run(|| {
        region.fill(0, page, P4);
        Ok(())
    })?;
    b.run(|| {
        region.verify(0, page, P4)?;
        region.verify(page, 7 * page, P1)
    })
    .context("view 2 after writing page 0")?;
    a.run(|| region.verify_all(P2))
        .context("view 1 at the end")?;
    region.verify_all(P3).context("base at the end")
}

/// CREATE in a view snapshots that view, not the base.
fn views_create_from_view() -> TestResult {
    const P0: u64 = 0xc000;
    const P0B: u64 = 0xc00b;
    const P1: u64 = 0xc001;
    const P2: u64 = 0xc002;
    const P3: u64 = 0xc003;
    prepare()?;
    let region = Region::anon(8 * page_size())?;
    region.fill_all(P0);
    region.unshare()?;
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let v1 = create("view 1")?;
    // SAFETY: the memory rule.
    unsafe { a.migrate_from(v1, BASE)? };
    a.run(|| {
        region.fill_all(P1);
        Ok(())
    })?;
    region.fill_all(P0B);
    let v2 = a
        .run(|| {
            let v2 = mmview::create().context("MMVIEW_CREATE in view 1")?;
            expect_current(v1, "the thread that created view 2")?;
            region.verify_all(P1).context("view 1 after CREATE")?;
            Ok(v2)
        })
        .context("view 1")?;
    ensure_eq!(v2, id(2), "id of the view created in view 1");
    // SAFETY: the memory rule.
    unsafe { b.migrate_from(v2, BASE)? };
    b.run(|| region.verify_all(P1))
        .context("view 2: the data of view 1 at CREATE (not the base's)")?;
    a.run(|| {
        region.fill_all(P2);
        Ok(())
    })?;
    b.run(|| {
        region.verify_all(P1).context("after view 1 wrote again")?;
        region.fill_all(P3);
        Ok(())
    })
    .context("view 2")?;
    a.run(|| region.verify_all(P2)).context("view 1")?;
    region.verify_all(P0B).context("base")
}

/// 64 views, each created from the base and written with its own data,
/// keep it; so does the base. One thread moves from view to view.
fn views_many_distinct() -> TestResult {
    const VIEWS: usize = 64;
    const BASE_SEED: u64 = 0xba5e;
    let seed = |i: usize| 0x10_000 + i as u64;
    prepare()?;
    let region = Region::anon(4 * page_size())?;
    region.fill_all(BASE_SEED);
    region.unshare()?;
    let w = ViewThread::spawn("visitor")?;
    let mut ids: Vec<ViewId> = Vec::with_capacity(VIEWS);
    let mut at = BASE;
    for i in 0..VIEWS {
        let v = create(&format!("#{i}"))?;
        ensure!(
            ids.last().is_none_or(|&last| last < v),
            "view #{i} got id {v}, not above {ids:?}"
        );
        ids.push(v);
        // SAFETY: the memory rule.
        unsafe { w.migrate_from(v, at)? };
        at = v;
        w.run(|| {
            region
                .verify_all(BASE_SEED)
                .context("snapshot of the base")?;
            region.fill_all(seed(i));
            Ok(())
        })
        .with_context(|| format!("view {v}"))?;
    }
    for (i, &v) in ids.iter().enumerate().rev() {
        // SAFETY: the memory rule.
        unsafe { w.migrate_from(v, at)? };
        at = v;
        w.run(|| region.verify_all(seed(i)))
            .with_context(|| format!("view {v}, revisited"))?;
    }
    // SAFETY: the memory rule.
    unsafe { w.migrate_from(BASE, at)? };
    w.run(|| region.verify_all(BASE_SEED))
        .context("the base, seen by the visitor")?;
    region.verify_all(BASE_SEED).context("the base")
}

/// Whether every mapping over `region` has the `vu` (unshared) flag, or
/// none has.
fn unshared_flag(region: &Region) -> TestResult<Option<bool>> {
    let entries = smaps_entries(region.addr(), region.addr() + region.len())?;
    let flags: Vec<bool> = entries.iter().map(|e| e.has_flag("vu")).collect();
    Ok(match flags.as_slice() {
        [] => None,
        [first, rest @ ..] if rest.iter().all(|f| f == first) => Some(*first),
        _ => None,
    })
}

/// UNSHARE and SHARE are EPERM while the process has more than one view,
/// deleted views still in use counting; with one view again they work, and
/// the designation holds for views created afterwards.
fn views_designate_eperm() -> TestResult {
    const P0: u64 = 0xd000;
    const P1: u64 = 0xd001;
    prepare()?;
    let region = Region::anon(4 * page_size())?;
    region.fill_all(P0);
    let (ptr, len) = (region.addr() as *const u8, region.len());
    let w = ViewThread::spawn("w")?;
    let refused = |what: &str| -> TestResult {
        check_all([
            expect_errno(
                mmview::unshare(ptr, len),
                libc::EPERM,
                &format!("UNSHARE {what}"),
            ),
            expect_errno(
                mmview::share(ptr, len),
                libc::EPERM,
                &format!("SHARE {what}"),
            ),
        ])
    };

    let v1 = create("view 1")?;
    refused("with view 1")?;
    ensure_eq!(
        unshared_flag(&region)?,
        Some(false),
        "designation after the refused UNSHARE"
    );
    mmview::delete(v1).context("MMVIEW_DELETE(1)")?;
    mmview::unshare(ptr, len).context("MMVIEW_UNSHARE after deleting the only view")?;
    mmview::share(ptr, len).context("MMVIEW_SHARE after deleting the only view")?;

    let v2 = create("view 2")?;
    // SAFETY: the memory rule.
    unsafe { w.migrate_from(v2, BASE)? };
    mmview::delete(v2).context("MMVIEW_DELETE(2) with a thread in it")?;
    refused("while a thread is in deleted view 2")?;
    // SAFETY: the memory rule.
    unsafe { w.migrate_from(BASE, v2)? };
    mmview::unshare(ptr, len).context("MMVIEW_UNSHARE after the thread left deleted view 2")?;
    ensure_eq!(
        unshared_flag(&region)?,
        Some(true),
        "designation after UNSHARE"
    );

    // The designation holds for the next view.
    let v3 = create("view 3")?;
    region.fill_all(P1);
    // SAFETY: the memory rule.
    unsafe { w.migrate_from(v3, BASE)? };
    w.run(|| region.verify_all(P0))
        .context("view 3: its snapshot of the range unshared before its CREATE")?;
    refused("with view 3")?;
    region.verify_all(P1).context("base")
}

/// CREATE fails with ENOSPC when the process holds vm.mmview_max_views
/// views, the base and deleted views still in use counting; after a view
/// is released it works again, with new ids.
fn views_enospc_at_limit() -> TestResult {
    prepare()?;
    let w = ViewThread::spawn("w")?;
    let _limit = set_temporarily("/proc/sys/vm/mmview_max_views", "4")?;
    let mut last = BASE;
    let mut create_above = |what: &str| -> TestResult<ViewId> {
        let v = create(what)?;
        ensure!(v > last, "CREATE ({what}) returned {v}, not above {last}");
        last = v;
        Ok(v)
    };
    let v1 = create_above("view 1 of 3")?;
    let v2 = create_above("view 2 of 3")?;
    create_above("view 3 of 3")?;
    expect_errno(
        mmview::create(),
        libc::ENOSPC,
        "CREATE with base + 3 views at limit 4",
    )?;
    mmview::delete(v1).context("MMVIEW_DELETE(1)")?;
    create_above("after deleting an unused view")?;
    expect_errno(mmview::create(), libc::ENOSPC, "CREATE at the limit again")?;

    // SAFETY: the memory rule (no unshared memory here).
    unsafe { w.migrate_from(v2, BASE)? };
    mmview::delete(v2).context("MMVIEW_DELETE(2) with a thread in it")?;
    expect_errno(
        mmview::create(),
        libc::ENOSPC,
        "CREATE while a thread is in deleted view 2",
    )?;
    // SAFETY: as above.
    unsafe { w.migrate_from(BASE, v2)? };
    create_above("after the last thread left deleted view 2")?;
    expect_errno(
        mmview::create(),
        libc::ENOSPC,
        "CREATE at the limit once more",
    )?;
    Ok(())
}

/// How long memory may take to come back (deferred frees) before a test
/// calls it lost.
const SETTLE: Duration = Duration::from_secs(10);

/// Fails unless free memory (see [`free_kib`]) is back to `before_kib`
/// within 2 MiB plus 1% of the `touched` bytes, waiting up to [`SETTLE`]
/// for deferred frees.
fn expect_memory_returned(before_kib: u64, touched: usize, what: &str) -> TestResult {
    // KASAN keeps freed slab objects in a quarantine of up to 1/32 of the
    // memory before it frees them: allow for it on such a kernel (the
    // normal kernel, with the tight bound, is the leak check).
    let quarantine_kib = if kernel_has_kasan()? {
        meminfo("MemTotal")? / 32
    } else {
        0
    };
    let allowed_kib = 2048 + (touched / 1024 / 100) as u64 + quarantine_kib;
    let start = Instant::now();
    loop {
        drop_caches()?;
        let now = free_kib()?;
        let lost = before_kib.saturating_sub(now);
        if lost <= allowed_kib {
            diag!(
                "{what}: {before_kib} kB free before, {now} kB after (at most {allowed_kib} kB \
                 may be missing)"
            );
            return Ok(());
        }
        if start.elapsed() >= SETTLE {
            fail!(
                "{what}: {lost} kB of memory not returned after {} s ({before_kib} kB free \
                 before, {now} kB now, at most {allowed_kib} kB may be missing)",
                SETTLE.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether the running kernel has KASAN (it says so in its log).
fn kernel_has_kasan() -> TestResult<bool> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut kmsg = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .context("opening /dev/kmsg")?;
    let mut record = vec![0u8; 8192];
    loop {
        match kmsg.read(&mut record) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                if String::from_utf8_lossy(&record[..n]).contains("KernelAddressSanitizer") {
                    return Ok(true);
                }
            }
            // EPIPE: a record was overwritten while reading; go on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e).context("reading /dev/kmsg"),
        }
    }
}

/// 1000 cycles of CREATE, a thread copying unshared and writing shared
/// memory in the view, DELETE (half of them while the thread is still in
/// the view) give all their memory back.
fn views_memory_returns() -> TestResult {
    const WARMUP: usize = 50;
    const CYCLES: usize = 1000;
    const U0: u64 = 0xe000;
    const S0: u64 = 0xe500;
    prepare()?;
    let len = 16 * page_size();
    let unshared = Region::anon(len)?;
    unshared.fill_all(U0);
    unshared.unshare()?;
    let shared = Region::anon(len)?;
    shared.fill_all(S0);
    let w = ViewThread::spawn("w")?;
    let cycle = |i: usize| -> TestResult {
        let seed = 0xe_0000 + i as u64;
        let v = create("cycle")?;
        // SAFETY: the memory rule.
        unsafe { w.migrate_from(v, BASE)? };
        w.run(|| {
            unshared.verify_all(U0).context("snapshot")?;
            unshared.fill_all(seed);
            shared.fill_all(seed);
            Ok(())
        })?;
        if i.is_multiple_of(2) {
            // SAFETY: as above.
            unsafe { w.migrate_from(BASE, v)? };
            mmview::delete(v).context("MMVIEW_DELETE")?;
        } else {
            mmview::delete(v).context("MMVIEW_DELETE with the thread in the view")?;
            w.run(|| unshared.verify_all(seed))
                .context("the deleted view")?;
            // SAFETY: as above.
            unsafe { w.migrate_from(BASE, v)? };
        }
        shared.verify_all(seed).context("base: shared data")
    };
    for i in 0..WARMUP {
        cycle(i).with_context(|| format!("warm-up cycle {i}"))?;
    }
    drop_caches()?;
    let before = free_kib()?;
    for i in WARMUP..WARMUP + CYCLES {
        cycle(i).with_context(|| format!("cycle {i}"))?;
    }
    unshared.verify_all(U0).context("base: unshared data")?;
    expect_memory_returned(before, CYCLES * len, "1000 CREATE/DELETE cycles")
}

/// Unshared data per process in [`populate_views`].
const DATA: usize = 8 * MIB;
/// Views [`populate_views`] creates.
const POPULATED_VIEWS: usize = 20;
/// Threads [`populate_views`] puts into views.
const HOLDERS: usize = 4;
/// Bytes [`populate_views`] writes: the base data, copies in the views,
/// the shared data.
const POPULATED: usize = DATA + HOLDERS * DATA + (POPULATED_VIEWS - HOLDERS) * MIB + MIB;

/// In a forked child: 20 views, 4 threads in views with all of 8 MiB of
/// unshared data copied, 1 MiB copied by the main thread in each other
/// view, two views deleted (one with a thread in it). With `exec`, a thread
/// in a view then execs `/proc/self/exe --help` (output to /dev/null),
/// which exits 0.
fn populate_views(exec: bool) -> TestResult {
    prepare()?;
    let data = Region::anon(DATA)?;
    data.fill_all(0xdada);
    data.unshare()?;
    let shared = Region::anon(MIB)?;
    let holders = ViewThread::spawn_many("holder", HOLDERS)?;
    let devnull = File::options()
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    let mut views = Vec::with_capacity(POPULATED_VIEWS);
    for i in 0..POPULATED_VIEWS {
        views.push(create(&format!("#{i}"))?);
    }
    for (i, holder) in holders.iter().enumerate() {
        // SAFETY: the memory rule.
        unsafe { holder.migrate_from(views[i], BASE)? };
        holder.run(|| {
            data.fill_all(0xd00 + i as u64);
            shared.fill_all(0x5d00 + i as u64);
            Ok(())
        })?;
    }
    for (i, &v) in views.iter().enumerate().skip(HOLDERS) {
        // SAFETY: the memory rule; the main thread's stack was grown by
        // prepare() and is shared.
        unsafe { migrate_from(v, BASE, "the main thread")? };
        data.fill(0, MIB, 0xd000 + i as u64);
        // SAFETY: as above.
        unsafe { migrate_from(BASE, v, "the main thread")? };
    }
    mmview::delete(views[0]).context("MMVIEW_DELETE of a view with a thread")?;
    mmview::delete(views[HOLDERS]).context("MMVIEW_DELETE of a view without")?;
    if !exec {
        return Ok(());
    }
    let null = devnull.as_raw_fd();
    holders[1].run(move || -> TestResult {
        let argv = [
            c"mmview-tests".as_ptr(),
            c"--help".as_ptr(),
            std::ptr::null(),
        ];
        // SAFETY: plain system calls with valid, NUL-terminated strings
        // and a null-terminated argv; execv only returns on failure.
        unsafe {
            libc::dup2(null, libc::STDOUT_FILENO);
            libc::dup2(null, libc::STDERR_FILENO);
            libc::execv(c"/proc/self/exe".as_ptr(), argv.as_ptr());
        }
        fail!(
            "execv(/proc/self/exe --help) in view {}: {}",
            views[1],
            std::io::Error::last_os_error()
        )
    })
}

/// Runs [`populate_views`] in a forked child and checks that all its
/// memory comes back after it exits (or execs and exits).
fn populate_in_child(exec: bool, what: &str) -> TestResult {
    drop_caches()?;
    let before = free_kib()?;
    // SAFETY: the test child is single-threaded here, so the forked child
    // may do anything; it reports failures as diagnostics.
    let child = unsafe {
        fork(|| match populate_views(exec) {
            Ok(()) => 0,
            Err(failure) => {
                diag!("the child: {failure}");
                1
            }
        })
    }?;
    child.expect_success(what, |code| {
        format!("the child exited with status {code} (see the diagnostics)")
    })?;
    expect_memory_returned(before, POPULATED, what)
}

/// A process exiting with 20 views (threads in some, two deleted) gives
/// back all their memory.
fn views_exit_releases() -> TestResult {
    populate_in_child(false, "exit of a process with 20 views")
}

/// A thread in a view calling execve releases every view of the process.
fn views_exec_releases() -> TestResult {
    populate_in_child(true, "execve in a view of a process with 20 views")
}

/// What the exit code of the child of [`views_fork_from_base`] means.
fn fork_child_failure(code: i32) -> String {
    let what = match code {
        10 => "it is not in view 0",
        11 => "its shared range does not hold the base's data",
        12 => "its unshared range does not hold the base's data",
        13 => "MIGRATE to a view of the parent did not fail with EINVAL",
        14 => "MMVIEW_SHARE failed (it should have one view)",
        15 => "it could not report to the parent",
        16 => "the parent did not let it go on",
        17 => "its shared range changed after the parent's stores",
        18 => "its unshared range changed after the parent's stores",
        _ => return format!("the child exited with status {code}"),
    };
    format!("the child exited with status {code}: {what}")
}

/// What the child of [`views_fork_from_base`] checks.
struct ForkedMemory {
    shared: Region,
    unshared: Region,
    parent_view: ViewId,
}

impl ForkedMemory {
    const S1: u64 = 0xf1;
    const U0: u64 = 0xf3;
    const C1: u64 = 0xf8;
    const C2: u64 = 0xf9;

    /// The child's side: checks, stores, reports, waits for the parent's
    /// stores, checks again. The exit code (see [`fork_child_failure`]).
    /// Allocates nothing.
    fn check(&self, report: &Sender, proceed: &Receiver) -> i32 {
        let (shared, unshared) = (&self.shared, &self.unshared);
        let len = unshared.len();
        if mmview::current() != Ok(BASE) {
            return 10;
        }
        if !shared.matches(0, len, Self::S1) {
            return 11;
        }
        if !unshared.matches(0, len, Self::U0) {
            return 12;
        }
        // SAFETY: must fail (the parent's views are not the child's); the
        // child follows the memory rule anyway.
        let moved = unsafe { mmview::migrate(self.parent_view) };
        if !matches!(moved, Err(e) if e.is(libc::EINVAL)) {
            return 13;
        }
        if mmview::share(unshared.addr() as *const u8, len).is_err() {
            return 14;
        }
        shared.fill_all(Self::C1);
        unshared.fill_all(Self::C2);
        if !report.send(1) {
            return 15;
        }
        if proceed.recv() != Some(1) {
            return 16;
        }
        if !shared.matches(0, len, Self::C1) {
            return 17;
        }
        if !unshared.matches(0, len, Self::C2) {
            return 18;
        }
        0
    }
}

/// fork() by the base thread while threads are in views: the child has
/// one view, a copy of the base (shared and unshared data), and its stores
/// and the parent's (in the base and in views) stay apart.
fn views_fork_from_base() -> TestResult {
    const S0: u64 = 0xf0;
    const S1: u64 = ForkedMemory::S1;
    const P1: u64 = 0xf2;
    const U0: u64 = ForkedMemory::U0;
    const U1: u64 = 0xf4;
    const U2: u64 = 0xf5;
    const U3: u64 = 0xf6;
    const U4: u64 = 0xf7;
    prepare()?;
    let len = 4 * page_size();
    let shared = Region::anon(len)?;
    shared.fill_all(S0);
    let unshared = Region::anon(len)?;
    unshared.fill_all(U0);
    unshared.unshare()?;
    let (from_child, child_tx) = pipe()?;
    let (child_rx, to_child) = pipe()?;
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    // SAFETY: the memory rule.
    unsafe {
        a.migrate_from(v1, BASE)?;
        b.migrate_from(v2, BASE)?;
    }
    a.run(|| {
        unshared.fill_all(U1);
        Ok(())
    })?;
    b.run(|| {
        unshared.fill_all(U2);
        shared.fill_all(S1);
        Ok(())
    })?;

    // SAFETY: the child only reads and writes memory through Region (no
    // allocation, no lock) and uses the pipes and mmview.
    let child = unsafe {
        fork(|| {
            let mine = ForkedMemory {
                shared,
                unshared,
                parent_view: v1,
            };
            mine.check(&child_tx, &child_rx)
        })
    }?;
    drop(child_tx);
    drop(child_rx);
    if from_child.recv() != Some(1) {
        child.expect_success("the forked child", fork_child_failure)?;
        fail!("the forked child exited without reporting");
    }
    let checks = check_all([
        shared
            .verify_all(S1)
            .context("base: shared data after the child's stores"),
        unshared
            .verify_all(U0)
            .context("base: unshared data after the child's stores"),
        a.run(|| {
            unshared.verify_all(U1)?;
            shared.verify_all(S1)
        })
        .context("view 1 after the child's stores"),
        b.run(|| unshared.verify_all(U2))
            .context("view 2 after the child's stores"),
    ]);
    // The parent writes, in a view and in the base, before the child checks.
    let writes = a.run(|| {
        shared.fill_all(P1);
        unshared.fill_all(U3);
        Ok(())
    });
    unshared.fill_all(U4);
    let released = to_child.send(1);
    child.expect_success("the forked child", fork_child_failure)?;
    checks?;
    writes?;
    ensure!(released, "could not let the child go on");
    check_all([
        shared
            .verify_all(P1)
            .context("base: shared data written in view 1 after the fork"),
        unshared.verify_all(U4).context("base: unshared data"),
        a.run(|| unshared.verify_all(U3)).context("view 1"),
        b.run(|| {
            unshared.verify_all(U2)?;
            shared.verify_all(P1)
        })
        .context("view 2"),
    ])
}

/// fork() write-protects the views' mappings of shared memory instead of
/// dropping them: views that had written shared memory keep it resident,
/// and their stores after the fork (the first ones, before the child has
/// written anything) stay out of the child, which still sees the data of
/// the fork; the base and the other view see them.
fn views_fork_keeps_view_mappings() -> TestResult {
    const S0: u64 = 0xe0;
    const S1: u64 = 0xe1;
    const S2: u64 = 0xe2;
    const P1: u64 = 0xe3;
    const P2: u64 = 0xe4;
    prepare()?;
    let page = page_size();
    let len = 8 * page;
    let shared = Region::anon(len)?;
    shared.fill_all(S0);
    let (from_child, child_tx) = pipe()?;
    let (child_rx, to_child) = pipe()?;
    let (a, b) = two_views()?;
    a.run(|| {
        shared.fill(0, len / 2, S1);
        Ok(())
    })?;
    b.run(|| {
        shared.fill(len / 2, len / 2, S2);
        Ok(())
    })?;
    let rss = || -> TestResult<[u64; 2]> {
        Ok([
            a.run(|| thread_smaps_kib(&shared, "Rss"))?,
            b.run(|| thread_smaps_kib(&shared, "Rss"))?,
        ])
    };
    // Each view maps at least the half it wrote.
    let before = rss()?;
    let half = (len / 2 / 1024) as u64;
    ensure!(
        before.iter().all(|&kib| kib >= half),
        "resident kB of views 1 and 2 before the fork: {before:?}, expected at least {half}"
    );

    // SAFETY: the child only reads memory through Region and uses the pipes.
    let child = unsafe {
        fork(|| {
            if proceed_after(&child_tx, &child_rx).is_none() {
                return 15;
            }
            if !shared.matches(0, len / 2, S1) || !shared.matches(len / 2, len / 2, S2) {
                return 17;
            }
            0
        })
    }?;
    drop(child_tx);
    drop(child_rx);
    if from_child.recv() != Some(1) {
        child.expect_success("the forked child", fork_child_failure)?;
        fail!("the forked child exited without reporting");
    }
    let after = rss();
    let writes = a
        .run(|| {
            shared.fill(0, len / 2, P1);
            Ok(())
        })
        .and_then(|()| {
            b.run(|| {
                shared.fill(len / 2, len / 2, P2);
                Ok(())
            })
        });
    let released = to_child.send(1);
    child.expect_success("the forked child", fork_child_failure)?;
    let after = after?;
    ensure!(
        after == before,
        "resident kB of views 1 and 2 over the shared range: {before:?} before the fork, \
         {after:?} after"
    );
    writes?;
    ensure!(released, "could not let the child go on");
    let stored = || -> TestResult {
        shared.verify(0, len / 2, P1)?;
        shared.verify(len / 2, len / 2, P2)
    };
    check_all([
        stored().context("base: stores of the views after the fork"),
        a.run(stored).context("view 1"),
        b.run(stored).context("view 2"),
    ])
}

/// The child's side of a handshake: reports that it runs, then waits for
/// the parent's go. `None` if either end is gone.
fn proceed_after(report: &Sender, proceed: &Receiver) -> Option<()> {
    (report.send(1) && proceed.recv() == Some(1)).then_some(())
}

/// Two views, 1 and 2, and a thread in each (`in-view-1`, `in-view-2`),
/// created once the caller has mapped what it needs.
fn two_views() -> TestResult<(ViewThread, ViewThread)> {
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    Ok((a, b))
}

/// Whether the calling thread's address space (its view) maps any of
/// `[start, end)`.
fn thread_maps(start: usize, end: usize) -> TestResult<bool> {
    Ok(!thread_smaps_entries(start, end)?.is_empty())
}

/// mmap() and munmap() while views exist take effect in every view: a
/// private mapping made in view 1 is there, with the same data, in the base
/// and in view 2; a MAP_SHARED anonymous mapping made in the base is one
/// object in every view; a mapping unmapped in view 2 is gone from all.
fn views_layout_mmap_munmap() -> TestResult {
    const P1: u64 = 0x1a1a;
    const P2: u64 = 0x2b2b;
    const P3: u64 = 0x3c3c;
    prepare()?;
    let page = page_size();
    let (a, b) = two_views()?;

    let private = a.run(|| Region::anon(8 * page)).context("mmap in view 1")?;
    let (start, end) = (private.addr(), private.addr() + private.len());
    ensure!(
        thread_maps(start, end)?,
        "the base has no mapping that view 1 made"
    );
    ensure!(
        b.run(|| thread_maps(start, end))?,
        "view 2 has no mapping that view 1 made"
    );
    a.run(|| {
        private.fill_all(P1);
        Ok(())
    })?;
    private.verify_all(P1).context("base: data view 1 stored")?;
    b.run(|| private.verify_all(P1))
        .context("view 2: data view 1 stored")?;
    b.run(|| {
        private.fill(0, page, P2);
        Ok(())
    })?;
    a.run(|| private.verify(0, page, P2))
        .context("view 1: a store of view 2")?;
    private
        .verify(0, page, P2)
        .context("base: a store of view 2")?;

    let shm = Region::anon_shared(4 * page).context("MAP_SHARED|MAP_ANONYMOUS in the base")?;
    b.run(|| {
        shm.fill_all(P3);
        Ok(())
    })?;
    shm.verify_all(P3)
        .context("base: MAP_SHARED data stored in view 2")?;
    a.run(|| shm.verify_all(P3))
        .context("view 1: MAP_SHARED data stored in view 2")?;

    b.run(|| {
        // SAFETY: nothing refers to the region any more but its address.
        if unsafe { libc::munmap(start as *mut libc::c_void, end - start) } != 0 {
            fail!("munmap in view 2: {}", std::io::Error::last_os_error());
        }
        Ok(())
    })?;
    ensure!(
        !b.run(|| thread_maps(start, end))?,
        "view 2 still maps what it unmapped"
    );
    ensure!(
        !thread_maps(start, end)?,
        "the base still maps what view 2 unmapped"
    );
    ensure!(
        !a.run(|| thread_maps(start, end))?,
        "view 1 still maps what view 2 unmapped"
    );
    Ok(())
}

/// A thread started inside a view (its stack mapped after CREATE) starts
/// in that view, runs, sees shared memory, and exits cleanly; its stack
/// is unmapped in every view.
fn views_thread_created_in_view() -> TestResult {
    const P: u64 = 0x7e7e;
    prepare()?;
    let shared = Region::anon(4 * page_size())?;
    let a = ViewThread::spawn("in-view-1")?;
    let v1 = create("view 1")?;
    // SAFETY: the memory rule.
    unsafe { a.migrate_from(v1, BASE)? };
    let seen = a.run(|| {
        let shared = &shared;
        std::thread::scope(|scope| {
            scope
                .spawn(|| -> TestResult<ViewId> {
                    shared.fill_all(P);
                    mmview::current().context("MMVIEW_CURRENT in the new thread")
                })
                .join()
                .map_err(|_| crate::check::Failure::new("the new thread panicked"))?
        })
    })?;
    ensure_eq!(seen, v1, "the view of a thread created in view 1");
    shared
        .verify_all(P)
        .context("base: data the new thread stored")
}

/// mprotect() of a shared range in a view changes it in every view (the
/// data stays); of an unshared range, in the calling view only; a range
/// mixing both is EACCES.
fn views_layout_mprotect() -> TestResult {
    const P: u64 = 0x9090;
    prepare()?;
    let page = page_size();
    let shared = Region::anon(4 * page)?;
    shared.fill_all(P);
    let unshared = Region::anon(4 * page)?;
    unshared.fill_all(P);
    unshared.unshare()?;
    let (a, b) = two_views()?;
    let protect = |r: &Region, off: usize, len: usize, prot: libc::c_int| -> TestResult {
        // SAFETY: changes the protection of our own mapping only.
        if unsafe { libc::mprotect((r.addr() + off) as *mut libc::c_void, len, prot) } != 0 {
            fail!("mprotect: {}", std::io::Error::last_os_error());
        }
        Ok(())
    };
    // Shared: pages 1-2 read-only, from view 1.
    a.run(|| protect(&shared, page, 2 * page, libc::PROT_READ))?;
    for (who, perms) in [
        ("base", thread_perms(shared.addr() + page)?),
        ("view 1", a.run(|| thread_perms(shared.addr() + page))?),
        ("view 2", b.run(|| thread_perms(shared.addr() + page))?),
    ] {
        ensure_eq!(
            perms.as_str(),
            "r--p",
            "{who}: a shared page view 1 made read-only"
        );
    }
    ensure_eq!(
        b.run(|| thread_perms(shared.addr()))?.as_str(),
        "rw-p",
        "view 2: the page before the range"
    );
    b.run(|| shared.verify_all(P))
        .context("view 2: data after mprotect")?;
    shared.verify_all(P).context("base: data after mprotect")?;
    // Unshared: read-only in view 2 only.
    b.run(|| protect(&unshared, 0, 4 * page, libc::PROT_READ))?;
    ensure_eq!(
        b.run(|| thread_perms(unshared.addr()))?.as_str(),
        "r--p",
        "view 2: its unshared copy, made read-only"
    );
    ensure_eq!(
        thread_perms(unshared.addr())?.as_str(),
        "rw-p",
        "base: an unshared range view 2 made read-only"
    );
    ensure_eq!(
        a.run(|| thread_perms(unshared.addr()))?.as_str(),
        "rw-p",
        "view 1: an unshared range view 2 made read-only"
    );
    a.run(|| {
        unshared.fill_all(P + 1);
        Ok(())
    })?;
    b.run(|| unshared.verify_all(P))
        .context("view 2: its read-only copy")?;
    // Mixed: EACCES, nothing changed.
    let (lo, hi) = if shared.addr() < unshared.addr() {
        (shared.addr(), unshared.addr() + unshared.len())
    } else {
        (unshared.addr(), shared.addr() + shared.len())
    };
    // SAFETY: fails (EACCES) without changing anything, checked below.
    let ret = unsafe { libc::mprotect(lo as *mut libc::c_void, hi - lo, libc::PROT_READ) };
    ensure!(
        ret != 0,
        "mprotect over shared and unshared memory succeeded"
    );
    ensure_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::EACCES),
        "errno of mprotect over shared and unshared memory"
    );
    ensure_eq!(
        thread_perms(shared.addr())?.as_str(),
        "rw-p",
        "base after the EACCES"
    );
    Ok(())
}

/// madvise(MADV_DONTNEED) of a shared range in a view drops the pages in
/// every view (all read zeros afterwards); of an unshared range, only the
/// calling view's copy.
fn views_layout_dontneed() -> TestResult {
    const P: u64 = 0xd0d0;
    prepare()?;
    let page = page_size();
    let shared = Region::anon(4 * page)?;
    shared.fill_all(P);
    let unshared = Region::anon(4 * page)?;
    unshared.fill_all(P);
    unshared.unshare()?;
    let (a, b) = two_views()?;
    // View 2 maps the shared pages before view 1 drops them.
    b.run(|| shared.verify_all(P)).context("view 2 before")?;
    let dontneed = |r: &Region, off: usize, len: usize| -> TestResult {
        // SAFETY: drops the pages of our own anonymous mapping.
        if unsafe {
            libc::madvise(
                (r.addr() + off) as *mut libc::c_void,
                len,
                libc::MADV_DONTNEED,
            )
        } != 0
        {
            fail!(
                "madvise(MADV_DONTNEED): {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    };
    a.run(|| dontneed(&shared, 0, 2 * page))?;
    shared
        .verify_zero(0, 2 * page)
        .context("base: shared pages view 1 dropped")?;
    b.run(|| shared.verify_zero(0, 2 * page))
        .context("view 2: shared pages view 1 dropped")?;
    a.run(|| shared.verify_zero(0, 2 * page))
        .context("view 1: shared pages it dropped")?;
    shared
        .verify(2 * page, 2 * page, P)
        .context("base: the shared pages kept")?;
    b.run(|| shared.verify(2 * page, 2 * page, P))
        .context("view 2: the shared pages kept")?;

    a.run(|| dontneed(&unshared, 0, 4 * page))?;
    a.run(|| unshared.verify_zero(0, 4 * page))
        .context("view 1: its dropped unshared copy")?;
    unshared
        .verify_all(P)
        .context("base: an unshared range view 1 dropped")?;
    b.run(|| unshared.verify_all(P))
        .context("view 2: an unshared range view 1 dropped")
}

/// brk() while views exist: the heap a view grows is there, shared, in the
/// base and the other views; shrinking it in the base removes it from all.
fn views_layout_brk() -> TestResult {
    const P: u64 = 0xb4b4;
    prepare()?;
    let page = page_size();
    let len = 16 * page;
    let (a, b) = two_views()?;
    let old = a.run(|| {
        // SAFETY: moves the break beyond malloc's heap (prepare() keeps
        // malloc from moving it) and moves it back below.
        let old = unsafe { libc::sbrk(len as libc::intptr_t) };
        if old as isize == -1 {
            fail!(
                "sbrk(+{len}) in view 1: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(old as usize)
    })?;
    let heap = old.next_multiple_of(page);
    let end = old + len;
    let region = Region::at(heap, end - heap);
    a.run(|| {
        region.fill_all(P);
        Ok(())
    })?;
    region
        .verify_all(P)
        .context("base: heap grown and written in view 1")?;
    b.run(|| region.verify_all(P))
        .context("view 2: heap grown and written in view 1")?;
    // SAFETY: as above.
    if unsafe { libc::sbrk(-(len as libc::intptr_t)) } as isize == -1 {
        fail!(
            "sbrk(-{len}) in the base: {}",
            std::io::Error::last_os_error()
        );
    }
    ensure!(
        !thread_maps(heap, end)?,
        "the base still maps the heap it shrank"
    );
    ensure!(
        !a.run(|| thread_maps(heap, end))?,
        "view 1 still maps the heap the base shrank"
    );
    ensure!(
        !b.run(|| thread_maps(heap, end))?,
        "view 2 still maps the heap the base shrank"
    );
    // SAFETY: reads the break only.
    let now = a.run(|| Ok(unsafe { libc::sbrk(0) } as usize))?;
    ensure_eq!(
        now,
        old,
        "the break seen from view 1 after the base shrank it"
    );
    Ok(())
}

/// Recurses `depth` times with a 64 KiB frame each, then runs `f` on the
/// deepest frame's buffer.
#[inline(never)]
fn deep_stack(depth: usize, f: &mut dyn FnMut(&mut [u8]) -> TestResult) -> TestResult {
    let mut frame = [0u8; 64 * 1024];
    std::hint::black_box(&mut frame);
    if depth == 0 {
        return f(&mut frame);
    }
    let r = deep_stack(depth - 1, f);
    std::hint::black_box(&mut frame);
    r
}

/// The main thread's stack grows while it runs in a view: the grown part
/// is there, shared, in the base (another thread reads what the deepest
/// frame holds).
fn views_layout_stack_growth() -> TestResult {
    prepare()?;
    let reader = ViewThread::spawn("reader-in-base")?;
    let v1 = create("view 1")?;
    // SAFETY: the memory rule; the main thread's stack is shared.
    unsafe { migrate_from(v1, BASE, "the main thread")? };
    // 3 MiB below: beyond the 1 MiB prepare() grew before CREATE.
    let result = deep_stack(48, &mut |buf: &mut [u8]| {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        let (addr, len) = (buf.as_ptr() as usize, buf.len());
        ensure!(
            thread_maps(addr, addr + len)?,
            "view 1 does not map its own stack"
        );
        reader.run(|| {
            ensure!(
                thread_maps(addr, addr + len)?,
                "the base has no mapping of view 1's grown stack"
            );
            // SAFETY: the buffer is alive (its frame is waiting for us) and
            // only read.
            let seen = unsafe { std::slice::from_raw_parts(addr as *const u8, len) };
            match seen
                .iter()
                .enumerate()
                .find(|&(i, &b)| b != (i % 251) as u8)
            {
                Some((i, b)) => fail!("base: byte {i} of the grown stack is {b}"),
                None => Ok(()),
            }
        })
    });
    // SAFETY: back to the base, whose memory is the same.
    unsafe { migrate_from(BASE, v1, "the main thread")? };
    result
}

/// The page frames that the calling thread's view maps over `region`
/// (`None` for a page not present), from /proc/thread-self/pagemap.
fn thread_pfns(region: &Region) -> TestResult<Vec<Option<u64>>> {
    let pagemap =
        File::open("/proc/thread-self/pagemap").context("opening /proc/thread-self/pagemap")?;
    let page = page_size();
    let mut raw = vec![0u8; region.len() / page * 8];
    pagemap
        .read_exact_at(&mut raw, (region.addr() / page * 8) as u64)
        .context("reading /proc/thread-self/pagemap")?;
    Ok(raw
        .chunks_exact(8)
        .map(|e| {
            let mut word = [0u8; 8];
            word.copy_from_slice(e);
            let entry = u64::from_ne_bytes(word);
            (entry & (1 << 63) != 0).then_some(entry & ((1 << 55) - 1))
        })
        .collect())
}

/// The per-page count of view mappings at work: after a fork()ed child is
/// gone, a page the base and a view both map is no longer shared with
/// anyone else, so the base's next store reuses it (same frame) instead of
/// copying it, and the view sees the store.
fn views_base_reuses_page_views_map() -> TestResult {
    const P0: u64 = 0x4e00;
    const P1: u64 = 0x4e01;
    prepare()?;
    let page = page_size();
    let region = Region::anon(page)?;
    region.fill_all(P0);
    let a = ViewThread::spawn("in-view-1")?;
    let v1 = create("view 1")?;
    // SAFETY: the memory rule.
    unsafe { a.migrate_from(v1, BASE)? };
    a.run(|| region.verify_all(P0))
        .context("view 1 maps the page")?;
    let before = thread_pfns(&region)?[0].context("the base's page is not present")?;
    ensure!(
        before != 0,
        "/proc/thread-self/pagemap hides frame numbers (not root?)"
    );
    // A child shares the page copy-on-write until it exits.
    // SAFETY: the child only exits.
    let child = unsafe { fork(|| 0) }?;
    child.expect_success("the forked child", |code| format!("exited with {code}"))?;
    a.run(|| region.verify_all(P0))
        .context("view 1 after the fork")?;
    region.fill_all(P1);
    let after = thread_pfns(&region)?[0].context("the base's page is not present")?;
    ensure_eq!(
        after,
        before,
        "the base's frame after its store (a copy was made)"
    );
    a.run(|| region.verify_all(P1))
        .context("view 1: the base's store")
}

/// SWITCH_BASE from a view: it returns the view's id and makes it the
/// base; no data is lost (pages only the old base had, pages the view had
/// written), memory stays shared both ways, unshared copies stay apart,
/// ids do not change, the old base can now be deleted (its thread keeps
/// running in it) and the new base cannot.
fn views_switch_base() -> TestResult {
    const S0: u64 = 0x5b00;
    const S1: u64 = 0x5b01;
    const S2: u64 = 0x5b02;
    const U0: u64 = 0x5b10;
    const U1: u64 = 0x5b11;
    prepare()?;
    let page = page_size();
    let shared = Region::anon(16 * page)?;
    shared.fill_all(S0);
    let unshared = Region::anon(4 * page)?;
    unshared.fill_all(U0);
    unshared.unshare()?;
    let a = ViewThread::spawn("in-view-1")?;
    let v1 = create("view 1")?;
    // SAFETY: the memory rule.
    unsafe { a.migrate_from(v1, BASE)? };
    a.run(|| {
        shared.fill(0, 4 * page, S1);
        unshared.fill_all(U1);
        Ok(())
    })?;
    let got = a.run(|| mmview::switch_base().context("MMVIEW_SWITCH_BASE in view 1"))?;
    ensure_eq!(got, v1, "MMVIEW_SWITCH_BASE returns the caller's view");
    ensure_eq!(a.current()?, v1, "view 1's thread after SWITCH_BASE");
    ensure_eq!(mmview::current()?, BASE, "the old base's thread keeps id 0");
    a.run(|| {
        shared.verify(0, 4 * page, S1)?;
        shared.verify(4 * page, 12 * page, S0)?;
        unshared.verify_all(U1)
    })
    .context("the new base (view 1)")?;
    shared
        .verify(0, 4 * page, S1)
        .context("old base: pages view 1 wrote")?;
    shared
        .verify(4 * page, 12 * page, S0)
        .context("old base: pages it wrote")?;
    unshared
        .verify_all(U0)
        .context("old base: its unshared copy")?;
    shared.fill(8 * page, 4 * page, S2);
    a.run(|| shared.verify(8 * page, 4 * page, S2))
        .context("new base: a store of the old base")?;
    expect_errno(
        mmview::delete(v1),
        libc::EPERM,
        "MMVIEW_DELETE of the new base",
    )?;
    mmview::delete(BASE).context("MMVIEW_DELETE of the old base")?;
    ensure_eq!(mmview::current()?, BASE, "a thread in the deleted old base");
    shared
        .verify(8 * page, 4 * page, S2)
        .context("the deleted old base's memory")?;
    let v2 = a.run(|| create("view 2, from the new base"))?;
    ensure!(v2 > v1, "view 2's id {v2:?} is not above view 1's {v1:?}");
    // SAFETY: the memory rule.
    unsafe { migrate_from(v2, BASE, "the main thread")? };
    unshared
        .verify_all(U1)
        .context("view 2: the new base's unshared data")?;
    shared
        .verify(8 * page, 4 * page, S2)
        .context("view 2: shared data")?;
    expect_errno(
        // SAFETY: fails, the thread does not move.
        unsafe { mmview::migrate(BASE) },
        libc::EINVAL,
        "MMVIEW_MIGRATE to the deleted old base",
    )?;
    // SAFETY: the memory rule.
    unsafe { migrate_from(v1, v2, "the main thread") }
}

/// View slots of [`views_stress_fork`]: the base and three views.
const STRESS_VIEWS: usize = 4;
/// Worker threads per view slot.
const STRESS_PER_VIEW: usize = 2;
/// Worker threads in all.
const STRESS_WORKERS: usize = STRESS_VIEWS * STRESS_PER_VIEW;
/// Shared words each worker owns.
const STRESS_WORDS: usize = 8;
/// Children the forker forks, one after the other.
const STRESS_FORKS: usize = 20;
/// Iterations the forker lets every worker do per step (three steps per
/// child, one at the end).
const STRESS_STEP: u32 = 16;
/// Iterations of every worker.
const STRESS_ITERS: u32 = (3 * STRESS_FORKS as u32 + 1) * STRESS_STEP;

/// The memory of [`views_stress_fork`]. Both regions are three pages: two
/// of data, then a scratch page that only forked children write.
///
/// - `shared`: worker `w` owns [`STRESS_WORDS`] words, one per cache line,
///   alternating between the two data pages (so every owner writes both
///   pages and every page has eight owners in four views); it stores the
///   iteration number `n` into them in order. All other data words stay 0.
/// - `unshared`: in every view, the two threads of the view own alternate
///   cache lines of the data pages and store [`Stress::tag`]`(slot, k, n)`
///   into word `k`, in order.
#[derive(Clone, Copy)]
struct Stress {
    shared: Region,
    unshared: Region,
    page: usize,
}

impl Stress {
    const SHARED_SCRATCH: u64 = 0x5c5c_0001;
    const UNSHARED_SCRATCH: u64 = 0x5c5c_0002;
    /// Children store patterns `CHILD_SCRATCH + 2 * child` (shared) and
    /// `+ 1` (unshared) into the scratch pages.
    const CHILD_SCRATCH: u64 = 0xc41d_0000;
    const TAG: u64 = 0xa5;
    const CHILD_TAG: u64 = 0xc1;

    /// Offset in `shared` of word `j` of worker `w`.
    fn shared_word(&self, w: usize, j: usize) -> usize {
        (j % 2) * self.page + ((w * STRESS_WORDS + j) / 2) * 64
    }

    /// The offset of the scratch page (in both regions).
    fn scratch(&self) -> usize {
        2 * self.page
    }

    /// Words of data in `unshared`.
    fn unshared_words(&self) -> usize {
        2 * self.page / 8
    }

    /// The unshared data words thread `t` of a view owns, in the order it
    /// stores them.
    fn owned(&self, t: usize) -> impl Iterator<Item = usize> {
        (0..self.unshared_words()).filter(move |k| (k / 8) % STRESS_PER_VIEW == t)
    }

    /// What view slot `slot` stores in unshared word `k` at iteration `n`.
    fn tag(slot: usize, k: usize, n: u32) -> u64 {
        Self::TAG << 56 | (slot as u64) << 48 | (k as u64 & 0xffff) << 32 | u64::from(n)
    }

    /// The iteration in `value`, if it is a tag of view slot `slot` for
    /// word `k`.
    fn untag(value: u64, slot: usize, k: usize) -> Option<u32> {
        (value & !0xffff_ffff == Self::tag(slot, k, 0)).then_some(value as u32)
    }

    /// The words children store (never a worker's value).
    fn child_word(tag: u64, child: usize, k: usize) -> u64 {
        tag << 56 | (child as u64 & 0xff) << 48 | (k as u64 & 0xffff) << 32 | 0xc41d
    }

    fn load(&self, region: &Region, offset: usize) -> u64 {
        region.atomic_u64(offset).load(Ordering::Relaxed)
    }

    /// The owners' shared words, read in the order given.
    fn read_shared(&self) -> [[u64; STRESS_WORDS]; STRESS_WORKERS] {
        let mut words = [[0; STRESS_WORDS]; STRESS_WORKERS];
        for (w, owned) in words.iter_mut().enumerate() {
            for (j, word) in owned.iter_mut().enumerate() {
                *word = self
                    .shared
                    .atomic_u64(self.shared_word(w, j))
                    .load(Ordering::Acquire);
            }
        }
        words
    }

    /// Whether both scratch pages hold what they held before the views.
    fn scratch_untouched(&self) -> bool {
        let (at, len) = (self.scratch(), self.page);
        self.shared.matches(at, len, Self::SHARED_SCRATCH)
            && self.unshared.matches(at, len, Self::UNSHARED_SCRATCH)
    }

    /// [`Stress::scratch_untouched`] with a reason.
    fn verify_scratch(&self) -> TestResult {
        let (at, len) = (self.scratch(), self.page);
        self.shared
            .verify(at, len, Self::SHARED_SCRATCH)
            .context("the shared scratch page (only children write it)")?;
        self.unshared
            .verify(at, len, Self::UNSHARED_SCRATCH)
            .context("the unshared scratch page (only children write it)")
    }

    /// Checks, in the calling thread's view (slot `slot`), that every byte
    /// is as the end of the run leaves it: each owner's shared words hold
    /// `iters`, the other shared data words 0; the view's unshared copy
    /// holds the tags of iteration `iters`; the scratch pages are
    /// untouched.
    fn verify_final(&self, slot: usize, iters: u32) -> TestResult {
        let mut want = vec![0u64; 2 * self.page / 8];
        for w in 0..STRESS_WORKERS {
            for j in 0..STRESS_WORDS {
                want[self.shared_word(w, j) / 8] = u64::from(iters);
            }
        }
        let wrong = |region: &Region, want: &dyn Fn(usize) -> u64, what: &str| -> TestResult {
            let mut first = None;
            let mut count = 0;
            for k in 0..2 * self.page / 8 {
                let got = region.load(k * 8);
                if got != want(k) {
                    count += 1;
                    first.get_or_insert((k * 8, got, want(k)));
                }
            }
            match first {
                None => Ok(()),
                Some((at, got, want)) => fail!(
                    "{what}: {count} wrong words; first at offset {at:#x}: {got:#018x}, \
                     expected {want:#018x}"
                ),
            }
        };
        wrong(&self.shared, &|k| want[k], "shared data")?;
        wrong(
            &self.unshared,
            &|k| Self::tag(slot, k, iters),
            "the view's unshared data",
        )?;
        self.verify_scratch()
    }
}

/// What the threads of [`views_stress_fork`] coordinate with (in shared
/// memory, of course).
struct StressControl {
    /// Workers may do iterations up to this one.
    allowance: AtomicU32,
    /// Set when a thread failed: everybody stops.
    abort: AtomicU32,
    /// The last iteration each worker completed.
    progress: [AtomicU32; STRESS_WORKERS],
}

/// The longest a thread of [`views_stress_fork`] sleeps before it looks at
/// the control words again (a lost wake-up only costs this).
const STRESS_POLL: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 2_000_000,
};

impl StressControl {
    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Acquire) != 0
    }

    fn wake(&self) {
        let _ = futex(
            &self.allowance,
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX as u32,
            None,
        );
    }

    /// Waits until iteration `n` is allowed; false if the run was aborted.
    fn wait_allowance(&self, n: u32) -> bool {
        loop {
            if self.aborted() {
                return false;
            }
            let allowed = self.allowance.load(Ordering::Acquire);
            if allowed >= n {
                return true;
            }
            let _ = futex(
                &self.allowance,
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                allowed,
                Some(&STRESS_POLL),
            );
        }
    }

    /// Allows iterations up to `n`.
    fn allow(&self, n: u32) {
        self.allowance.store(n, Ordering::Release);
        self.wake();
    }

    /// Allows iterations up to `n` and waits until every worker did them;
    /// false if the run was aborted.
    fn let_run(&self, n: u32) -> bool {
        self.allow(n);
        for progress in &self.progress {
            while progress.load(Ordering::Acquire) < n {
                if self.aborted() {
                    return false;
                }
                // SAFETY: nanosleep reads the timespec and writes nothing
                // (no remainder pointer).
                unsafe { libc::nanosleep(&STRESS_POLL, std::ptr::null_mut()) };
            }
        }
        true
    }
}

/// Aborts the run when dropped armed (a failure or a panic); with
/// `release_all` (the forker's), also allows all iterations, so that the
/// workers finish (or stop, if aborted) whatever way the forker ends.
struct StressGuard<'a> {
    control: &'a StressControl,
    armed: bool,
    release_all: bool,
}

impl Drop for StressGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.control.abort.store(1, Ordering::Release);
        }
        if self.release_all {
            self.control
                .allowance
                .store(STRESS_ITERS, Ordering::Release);
        }
        self.control.wake();
    }
}

/// One worker of [`views_stress_fork`], in the view of slot `w / 2`: does
/// its iterations as the forker allows them; the last one it did.
fn stress_worker(
    st: &Stress,
    control: &StressControl,
    w: usize,
    start: &Rendezvous,
) -> TestResult<u32> {
    let mut guard = StressGuard {
        control,
        armed: true,
        release_all: false,
    };
    let (slot, t) = (w / STRESS_PER_VIEW, w % STRESS_PER_VIEW);
    for k in st.owned(t) {
        st.unshared
            .atomic_u64(k * 8)
            .store(Stress::tag(slot, k, 0), Ordering::Release);
    }
    start.wait();
    let mut last = [[0u64; STRESS_WORDS]; STRESS_WORKERS];
    for n in 1..=STRESS_ITERS {
        if !control.wait_allowance(n) {
            guard.armed = false;
            return Ok(n - 1);
        }
        stress_write(st, w, n).with_context(|| format!("iteration {n}, before writing"))?;
        control.progress[w].store(n, Ordering::Release);
        stress_read(st, control, w, &mut last)
            .with_context(|| format!("iteration {n}, reading the others' data"))?;
        if n % 4 == 0 {
            st.verify_scratch()
                .with_context(|| format!("iteration {n}"))?;
        }
    }
    guard.armed = false;
    Ok(STRESS_ITERS)
}

/// Iteration `n` of worker `w`: checks that its words still hold what it
/// stored at `n - 1` (nobody else stores there, here or in any view of
/// this process), then stores `n`.
fn stress_write(st: &Stress, w: usize, n: u32) -> TestResult {
    let (slot, t) = (w / STRESS_PER_VIEW, w % STRESS_PER_VIEW);
    for j in 0..STRESS_WORDS {
        let got = st.load(&st.shared, st.shared_word(w, j));
        ensure!(
            got == u64::from(n - 1),
            "its shared word {j} holds {got:#x}, it stored {}",
            n - 1
        );
    }
    for k in st.owned(t) {
        let got = st.load(&st.unshared, k * 8);
        let want = Stress::tag(slot, k, n - 1);
        ensure!(
            got == want,
            "its unshared word {k} holds {got:#018x}, it stored {want:#018x}"
        );
    }
    for j in 0..STRESS_WORDS {
        st.shared
            .atomic_u64(st.shared_word(w, j))
            .store(u64::from(n), Ordering::Release);
    }
    for k in st.owned(t) {
        st.unshared
            .atomic_u64(k * 8)
            .store(Stress::tag(slot, k, n), Ordering::Release);
    }
    Ok(())
}

/// Worker `w` reads the others' shared words (never behind what their
/// owner completed, never going backwards, written in order) and its
/// partner's unshared words (tags of its own view, never behind what the
/// partner completed).
fn stress_read(
    st: &Stress,
    control: &StressControl,
    w: usize,
    last: &mut [[u64; STRESS_WORDS]; STRESS_WORKERS],
) -> TestResult {
    let max = u64::from(STRESS_ITERS);
    for o in (0..STRESS_WORKERS).filter(|&o| o != w) {
        let done = u64::from(control.progress[o].load(Ordering::Acquire));
        let word = |j: usize| {
            st.shared
                .atomic_u64(st.shared_word(o, j))
                .load(Ordering::Acquire)
        };
        let lastj = word(STRESS_WORDS - 1);
        ensure!(
            (done..=max).contains(&lastj),
            "worker {o}'s last shared word holds {lastj:#x}; it completed iteration {done}"
        );
        for (j, seen) in last[o].iter_mut().enumerate() {
            let got = if j == STRESS_WORDS - 1 {
                lastj
            } else {
                word(j)
            };
            ensure!(
                got <= max && got >= lastj && got >= *seen,
                "worker {o}'s shared word {j} holds {got:#x}: earlier it held {:#x}, its \
                 last word (stored after it) {lastj:#x}",
                *seen
            );
            *seen = got;
        }
    }
    let (slot, t) = (w / STRESS_PER_VIEW, w % STRESS_PER_VIEW);
    let partner = slot * STRESS_PER_VIEW + (t + 1) % STRESS_PER_VIEW;
    let done = control.progress[partner].load(Ordering::Acquire);
    for k in st.owned((t + 1) % STRESS_PER_VIEW) {
        let got = st.load(&st.unshared, k * 8);
        match Stress::untag(got, slot, k) {
            Some(n) if (done..=STRESS_ITERS).contains(&n) => {}
            Some(n) => fail!(
                "unshared word {k} of worker {partner} is at iteration {n}; the worker \
                 completed iteration {done}"
            ),
            None => fail!(
                "unshared word {k} of worker {partner} holds {got:#018x}, not a tag of \
                 this view (slot {slot}): {}",
                describe_tag(got)
            ),
        }
    }
    Ok(())
}

/// Whose value an unshared word seems to hold.
fn describe_tag(value: u64) -> String {
    match value >> 56 {
        Stress::TAG => format!(
            "a tag of view slot {} for word {} at iteration {}",
            (value >> 48) & 0xff,
            (value >> 32) & 0xffff,
            value as u32
        ),
        Stress::CHILD_TAG => format!("a store of forked child {}", (value >> 48) & 0xff),
        _ => "nobody's".into(),
    }
}

/// The forker of [`views_stress_fork`]: forks [`STRESS_FORKS`] children one
/// after the other, in the view slots in turn, and paces the workers so
/// that they store before, during and after each fork and while each
/// child checks.
fn stress_forker(
    st: &Stress,
    control: &StressControl,
    views: &[ViewId; STRESS_VIEWS],
    start: &Rendezvous,
) -> TestResult<u32> {
    let mut guard = StressGuard {
        control,
        armed: true,
        release_all: true,
    };
    start.wait();
    let mut at = BASE;
    for i in 0..STRESS_FORKS {
        let slot = i % STRESS_VIEWS;
        // SAFETY: the memory rule.
        unsafe { migrate_from(views[slot], at, "the forker")? };
        at = views[slot];
        let what = format!("child {i}, forked in view {at}");
        let step = 3 * i as u32 * STRESS_STEP;
        control.allow(step + STRESS_STEP);
        let snapshot = st.read_shared();
        let (from_child, child_tx) = pipe()?;
        let (child_rx, to_child) = pipe()?;
        let mine = StressChild {
            st: *st,
            slot,
            index: i,
            snapshot,
        };
        // SAFETY: the child only reads and writes memory (Region, arrays
        // on its stack), uses the pipes and MMVIEW_CURRENT: no allocation,
        // no lock.
        let child = unsafe { fork(|| mine.run(&child_tx, &child_rx)) }?;
        drop(child_tx);
        drop(child_rx);
        if from_child.recv() != Some(1) {
            return stress_child_lost(child, &what);
        }
        // The workers store after the fork (the allowance is raised after
        // it) while the child holds its copy.
        if !control.let_run(step + 2 * STRESS_STEP) {
            guard.armed = false;
            return Ok(0);
        }
        ensure!(to_child.send(1), "{what}: could not let it go on");
        if from_child.recv() != Some(2) {
            return stress_child_lost(child, &what);
        }
        // The child stored into its copy; the workers go on.
        if !control.let_run(step + 3 * STRESS_STEP) {
            guard.armed = false;
            return Ok(0);
        }
        st.verify_scratch()
            .with_context(|| format!("{what}: view {at} after the child's stores"))?;
        ensure!(to_child.send(2), "{what}: could not let it finish");
        child.expect_success(&what, stress_child_failure)?;
        st.verify_scratch()
            .with_context(|| format!("{what}: view {at} after the child exited"))?;
    }
    // SAFETY: the memory rule.
    unsafe { migrate_from(BASE, at, "the forker")? };
    guard.armed = false;
    Ok(0)
}

/// A child that stopped talking: its exit status says why.
fn stress_child_lost(child: Child, what: &str) -> TestResult<u32> {
    child.expect_success(what, stress_child_failure)?;
    fail!("{what} exited with status 0 without finishing the exchange")
}

/// What the exit code of a child of [`views_stress_fork`] means.
fn stress_child_failure(code: i32) -> String {
    let what = match code {
        20 => "it is not in view 0",
        21 => "a shared word is below the value the parent read just before the fork",
        22 => "a shared word holds no worker's value",
        23 => "a worker's shared words are not a copy of one moment (not stored in order)",
        24 => "unshared data is not the forking view's",
        25 => "a worker's unshared words are not a copy of one moment (not stored in order)",
        26 => "a scratch page does not hold its initial pattern",
        27 => "it could not report to the parent",
        28 => "the parent did not let it go on",
        29 => "its copy of the shared words changed while the parent's threads stored",
        30 => "its copy of the unshared data changed while the parent's threads stored",
        31 => "its own stores did not stay (the parent's threads stored over them)",
        _ => return format!("the child exited with status {code}"),
    };
    format!("the child exited with status {code}: {what}")
}

/// A child of [`views_stress_fork`]: a copy of the forking thread's view.
/// Allocates nothing.
struct StressChild {
    st: Stress,
    /// The view slot it was forked in.
    slot: usize,
    index: usize,
    /// The shared words as the forker read them just before the fork.
    snapshot: [[u64; STRESS_WORDS]; STRESS_WORKERS],
}

impl StressChild {
    /// Checks its copy, reports, waits while the parent's threads store,
    /// checks that the copy did not change, stores into all of it,
    /// reports, waits again and checks its stores. The exit code (see
    /// [`stress_child_failure`]).
    fn run(&self, report: &Sender, proceed: &Receiver) -> i32 {
        if mmview::current() != Ok(BASE) {
            return 20;
        }
        let words = self.st.read_shared();
        if let Err(code) = self.check_copy(&words) {
            return code;
        }
        let unshared = self.unshared_sum();
        if !report.send(1) {
            return 27;
        }
        if proceed.recv() != Some(1) {
            return 28;
        }
        if self.st.read_shared() != words {
            return 29;
        }
        if self.unshared_sum() != unshared {
            return 30;
        }
        if !self.st.scratch_untouched() {
            return 26;
        }
        self.store_everywhere();
        if !report.send(2) {
            return 27;
        }
        if proceed.recv() != Some(2) {
            return 28;
        }
        if !self.stores_stayed() {
            return 31;
        }
        0
    }

    /// The checks of a fresh copy, on the shared words `words` read in it.
    fn check_copy(&self, words: &[[u64; STRESS_WORDS]; STRESS_WORKERS]) -> Result<(), i32> {
        let max = u64::from(STRESS_ITERS);
        for (got, before) in words.iter().zip(&self.snapshot) {
            if got.iter().any(|&v| v > max) {
                return Err(22);
            }
            if got.iter().zip(before).any(|(v, b)| v < b) {
                return Err(21);
            }
            // Stored in order: a copy of one moment holds n+1 in a prefix
            // of the words and n in the rest.
            if got.windows(2).any(|p| p[1] > p[0]) || got[0] > got[STRESS_WORDS - 1] + 1 {
                return Err(23);
            }
        }
        for t in 0..STRESS_PER_VIEW {
            let mut first = None;
            let mut previous = u32::MAX;
            for k in self.st.owned(t) {
                let Some(n) = Stress::untag(self.st.unshared.load(k * 8), self.slot, k) else {
                    return Err(24);
                };
                if n > STRESS_ITERS {
                    return Err(24);
                }
                if n > previous {
                    return Err(25);
                }
                previous = n;
                first.get_or_insert(n);
            }
            if first.is_some_and(|first| first > previous + 1) {
                return Err(25);
            }
        }
        if !self.st.scratch_untouched() {
            return Err(26);
        }
        Ok(())
    }

    /// A checksum of the unshared data pages.
    fn unshared_sum(&self) -> u64 {
        (0..self.st.unshared_words()).fold(0xcbf2_9ce4_8422_2325u64, |sum, k| {
            let mixed = (sum ^ self.st.unshared.load(k * 8)).wrapping_mul(0x0000_0100_0000_01b3);
            mixed ^ (mixed >> 29)
        })
    }

    /// The pattern seeds of its scratch pages.
    fn scratch_seeds(&self) -> (u64, u64) {
        let seed = Stress::CHILD_SCRATCH + 2 * self.index as u64;
        (seed, seed + 1)
    }

    /// Stores its own values into every data word and scratch page of both
    /// regions.
    fn store_everywhere(&self) {
        let st = &self.st;
        for k in 0..2 * st.page / 8 {
            st.shared
                .store(k * 8, Stress::child_word(Stress::CHILD_TAG, self.index, k));
            st.unshared
                .store(k * 8, Stress::child_word(Stress::CHILD_TAG, self.index, k));
        }
        let (shared_seed, unshared_seed) = self.scratch_seeds();
        st.shared.fill(st.scratch(), st.page, shared_seed);
        st.unshared.fill(st.scratch(), st.page, unshared_seed);
    }

    /// Whether everything [`StressChild::store_everywhere`] stored is there.
    fn stores_stayed(&self) -> bool {
        let st = &self.st;
        let words = (0..2 * st.page / 8).all(|k| {
            let want = Stress::child_word(Stress::CHILD_TAG, self.index, k);
            st.shared.load(k * 8) == want && st.unshared.load(k * 8) == want
        });
        let (shared_seed, unshared_seed) = self.scratch_seeds();
        words
            && st.shared.matches(st.scratch(), st.page, shared_seed)
            && st.unshared.matches(st.scratch(), st.page, unshared_seed)
    }
}

/// Two threads in each of the base and three views store, concurrently,
/// increasing numbers into their own words of shared memory and tags of
/// their view into their view's copy of unshared memory, and check the
/// others' (never behind, never backwards, never another view's or a
/// child's), while another thread forks 20 children one after the other,
/// from each view in turn. Each child checks that it has a copy of one
/// moment of the forking view that no longer changes, stores into all of
/// it, and checks that its stores stay; the parent's threads check that
/// they never see them. At the end, every byte of both regions is checked
/// in every view. No timing: the forker paces the workers.
fn views_stress_fork() -> TestResult {
    prepare()?;
    let page = page_size();
    let st = Stress {
        shared: Region::anon(3 * page)?,
        unshared: Region::anon(3 * page)?,
        page,
    };
    st.shared.fill(st.scratch(), page, Stress::SHARED_SCRATCH);
    st.unshared
        .fill(st.scratch(), page, Stress::UNSHARED_SCRATCH);
    st.unshared.unshare()?;
    let control = StressControl {
        allowance: AtomicU32::new(0),
        abort: AtomicU32::new(0),
        progress: std::array::from_fn(|_| AtomicU32::new(0)),
    };
    let start = Rendezvous::new(STRESS_WORKERS + 1);
    let workers = ViewThread::spawn_many("worker", STRESS_WORKERS)?;
    let forker = ViewThread::spawn("forker")?;
    let views = [
        BASE,
        create("view 1")?,
        create("view 2")?,
        create("view 3")?,
    ];
    for (w, worker) in workers.iter().enumerate() {
        // SAFETY: the memory rule.
        unsafe { worker.migrate_from(views[w / STRESS_PER_VIEW], BASE)? };
    }
    let mut threads: Vec<&ViewThread> = workers.iter().collect();
    threads.push(&forker);

    let done = run_together(&threads, |i| {
        if i < STRESS_WORKERS {
            stress_worker(&st, &control, i, &start)
        } else {
            stress_forker(&st, &control, &views, &start)
        }
    })?;
    ensure!(!control.aborted(), "the run was aborted without a failure");
    for (w, &n) in done.iter().take(STRESS_WORKERS).enumerate() {
        ensure_eq!(n, STRESS_ITERS, "iterations of worker {w}");
    }
    let worker_refs: Vec<&ViewThread> = workers.iter().collect();
    run_together(&worker_refs, |w| {
        let slot = w / STRESS_PER_VIEW;
        expect_current(views[slot], "the worker at the end")?;
        st.verify_final(slot, STRESS_ITERS)
            .with_context(|| format!("at the end, in view {}", views[slot]))
    })?;
    st.verify_final(0, STRESS_ITERS)
        .context("at the end, the main thread in the base")
}

/// mremap() while views exist: growing a mapping in place (from a view)
/// grows it in every view, shared; shrinking it (from the base) shrinks it
/// in every view; a move is refused with ENOMEM (not replicated yet), and
/// nothing changes then.
fn views_layout_mremap() -> TestResult {
    const P: u64 = 0x3e3e;
    const Q: u64 = 0x3e3f;
    prepare()?;
    let page = page_size();
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let wall = Region::anon(page)?;
    // Four pages with four free ones after them (nothing is mapped from
    // here to the first CREATE, so nothing can take the free ones).
    let region = Region::anon(8 * page)?;
    // SAFETY: unmaps the upper half of our own fresh mapping.
    if unsafe { libc::munmap((region.addr() + 4 * page) as *mut libc::c_void, 4 * page) } != 0 {
        fail!("munmap: {}", std::io::Error::last_os_error());
    }
    let small = Region::at(region.addr(), 4 * page);
    small.fill_all(P);
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    // SAFETY: the memory rule.
    unsafe { a.migrate_from(v1, BASE)? };
    // SAFETY: the memory rule.
    unsafe { b.migrate_from(v2, BASE)? };
    let got = a.run(|| Ok(remap(region.addr(), 4 * page, 8 * page, 0, 0)))?;
    ensure_eq!(got, Ok(region.addr()), "mremap growing in place in view 1");
    ensure!(
        thread_maps(region.addr() + 7 * page, region.addr() + 8 * page)?,
        "the base did not grow"
    );
    ensure!(
        b.run(|| thread_maps(region.addr() + 7 * page, region.addr() + 8 * page))?,
        "view 2 did not grow"
    );
    b.run(|| {
        region.fill(4 * page, 4 * page, Q);
        Ok(())
    })?;
    region
        .verify(4 * page, 4 * page, Q)
        .context("base: the grown part, written in view 2")?;
    a.run(|| region.verify(0, 4 * page, P))
        .context("view 1: the old part")?;
    a.run(|| region.verify(4 * page, 4 * page, Q))
        .context("view 1: the grown part")?;

    let got = remap(region.addr(), 8 * page, 2 * page, 0, 0);
    ensure_eq!(got, Ok(region.addr()), "mremap shrinking in the base");
    for (who, maps) in [
        (
            "base",
            thread_maps(region.addr() + 2 * page, region.addr() + 8 * page)?,
        ),
        (
            "view 1",
            a.run(|| thread_maps(region.addr() + 2 * page, region.addr() + 8 * page))?,
        ),
        (
            "view 2",
            b.run(|| thread_maps(region.addr() + 2 * page, region.addr() + 8 * page))?,
        ),
    ] {
        ensure!(!maps, "{who} still maps what the base's mremap cut off");
    }
    // A move to a fixed address over another mapping, shrinking on the
    // way, made in view 2: the target's old content is gone and the moved
    // data is there in every view; the old range is gone everywhere.
    wall.fill_all(Q);
    // `wall` is ours and no longer used.
    let got = b.run(|| {
        Ok(remap(
            region.addr(),
            2 * page,
            page,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            wall.addr(),
        ))
    })?;
    ensure_eq!(got, Ok(wall.addr()), "mremap(MREMAP_FIXED) in view 2");
    let moved = || -> TestResult {
        ensure!(
            !thread_maps(region.addr(), region.addr() + 2 * page)?,
            "the old range is still mapped"
        );
        wall.verify(0, page, P)
            .context("the target: the first page of the old range")
    };
    moved().context("base")?;
    a.run(moved).context("view 1")?;
    b.run(moved).context("view 2")?;
    a.run(|| {
        wall.fill_all(Q);
        Ok(())
    })?;
    wall.verify_all(Q)
        .context("base: a store of view 1 after the move")?;
    b.run(|| wall.verify_all(Q))
        .context("view 2: a store of view 1 after the move")
}

/// `mremap(addr, old_len, new_len, flags)` in the calling thread; the new
/// address or the errno.
fn remap(
    addr: usize,
    old_len: usize,
    new_len: usize,
    flags: libc::c_int,
    new_addr: usize,
) -> Result<usize, i32> {
    // SAFETY: the callers move or resize mappings of their own that nothing
    // references but by address.
    let r = unsafe {
        libc::mremap(
            addr as *mut libc::c_void,
            old_len,
            new_len,
            flags,
            new_addr as *mut libc::c_void,
        )
    };
    if r == libc::MAP_FAILED {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r as usize)
    }
}

/// Checks, in the calling thread's view, that `[old, old + old_len)` is
/// unmapped and `[new, new + new_len)` is mapped.
fn expect_moved(old: usize, old_len: usize, new: usize, new_len: usize) -> TestResult {
    ensure!(
        !thread_maps(old, old + old_len)?,
        "the old range {old:#x} is still mapped"
    );
    let entries = thread_smaps_entries(new, new + new_len)?;
    let covered: usize = entries
        .iter()
        .map(|e| e.end.min(new + new_len) - e.start.max(new))
        .sum();
    ensure_eq!(covered, new_len, "bytes mapped at the new address {new:#x}");
    Ok(())
}

/// The start and length of the vDSO, from /proc/self/maps.
fn vdso_range() -> TestResult<(usize, usize)> {
    let maps = read_file("/proc/self/maps")?;
    for line in maps.lines().filter(|l| l.ends_with("[vdso]")) {
        let range = line.split(' ').next().unwrap_or("");
        if let Some((s, e)) = range.split_once('-') {
            let s = usize::from_str_radix(s, 16).map_err(|e| Failure::new(e.to_string()))?;
            let e = usize::from_str_radix(e, 16).map_err(|e| Failure::new(e.to_string()))?;
            return Ok((s, e - s));
        }
    }
    fail!("no [vdso] in /proc/self/maps")
}

/// mremap() that moves a mapping moves it in every view: a shared private
/// mapping grown and moved by view 1 (same data everywhere, still shared,
/// also in the grown part); an unshared mapping moved by the base to a
/// fixed address (every view keeps its own data there, still unshared);
/// MREMAP_DONTUNMAP in view 2 (data moved everywhere, the old range empty
/// and shared again); a second mapping of a MAP_SHARED object (old_len 0).
/// The vDSO, whose place the kernel tracks per address space, cannot move
/// (EINVAL) in a process with views.
fn views_layout_mremap_move() -> TestResult {
    const S: u64 = 0x5a5a;
    const S2: u64 = 0x5a5b;
    const U0: u64 = 0x6000;
    const UB: u64 = 0x600b;
    const U1: u64 = 0x6001;
    const U2: u64 = 0x6002;
    const X: u64 = 0x7777;
    const D: u64 = 0x4d4d;
    const D2: u64 = 0x4d4e;
    const M: u64 = 0x3030;
    const M2: u64 = 0x3031;
    prepare()?;
    let page = page_size();
    // 4 shared pages, then a PROT_NONE page so that growing must move.
    let shared = Region::anon(5 * page)?;
    // SAFETY: changes the protection of the last page of our own mapping,
    // which is never touched.
    if unsafe {
        libc::mprotect(
            (shared.addr() + 4 * page) as *mut libc::c_void,
            page,
            libc::PROT_NONE,
        )
    } != 0
    {
        fail!("mprotect: {}", std::io::Error::last_os_error());
    }
    shared.fill(0, 4 * page, S);
    let unshared = Region::anon(4 * page)?;
    unshared.fill_all(U0);
    unshared.unshare()?;
    let target = Region::anon(4 * page)?;
    target.fill_all(X);
    let dontunmap = Region::anon(2 * page)?;
    dontunmap.fill_all(D);
    let object = Region::anon_shared(2 * page)?;
    object.fill_all(M);
    let (a, b) = two_views()?;
    unshared.fill_all(UB);
    a.run(|| {
        unshared.fill_all(U1);
        Ok(())
    })?;
    b.run(|| {
        unshared.fill_all(U2);
        Ok(())
    })?;

    // Grow-and-move of a shared mapping, in view 1.
    let got = a.run(|| {
        Ok(remap(
            shared.addr(),
            4 * page,
            8 * page,
            libc::MREMAP_MAYMOVE,
            0,
        ))
    })?;
    let new = match got {
        Ok(n) if n != shared.addr() => n,
        other => fail!("mremap(MREMAP_MAYMOVE) growing in view 1: {other:?}"),
    };
    let grown = Region::at(new, 8 * page);
    let check = || -> TestResult {
        expect_moved(shared.addr(), 4 * page, new, 8 * page)?;
        grown.verify(0, 4 * page, S)?;
        grown.verify_zero(4 * page, 4 * page)
    };
    check().context("base after the move")?;
    a.run(check).context("view 1 after its move")?;
    b.run(check).context("view 2 after the move")?;
    b.run(|| {
        grown.fill(page, 6 * page, S2);
        Ok(())
    })?;
    grown
        .verify(page, 6 * page, S2)
        .context("base: a store of view 2 in the moved mapping")?;
    a.run(|| grown.verify(page, 6 * page, S2))
        .context("view 1: a store of view 2 in the moved mapping")?;

    // Move of an unshared mapping, from the base, over `target`.
    let got = remap(
        unshared.addr(),
        4 * page,
        4 * page,
        libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
        target.addr(),
    );
    ensure_eq!(
        got,
        Ok(target.addr()),
        "mremap(MREMAP_FIXED) of unshared memory in the base"
    );
    for (who, seed) in [("base", UB), ("view 1", U1), ("view 2", U2)] {
        let check = || -> TestResult {
            expect_moved(unshared.addr(), 4 * page, target.addr(), 4 * page)?;
            target.verify_all(seed)
        };
        match who {
            "base" => check(),
            "view 1" => a.run(check),
            _ => b.run(check),
        }
        .with_context(|| format!("{who}: its own data, moved"))?;
    }
    ensure_eq!(
        unshared_flag(&target)?,
        Some(true),
        "the moved range is unshared"
    );
    a.run(|| {
        target.fill(0, page, S);
        Ok(())
    })?;
    target
        .verify_all(UB)
        .context("base: view 1 stored into its moved copy")?;
    b.run(|| target.verify_all(U2))
        .context("view 2: view 1 stored into its moved copy")?;

    // MREMAP_DONTUNMAP, in view 2.
    let got = b.run(|| {
        Ok(remap(
            dontunmap.addr(),
            2 * page,
            2 * page,
            libc::MREMAP_MAYMOVE | libc::MREMAP_DONTUNMAP,
            0,
        ))
    })?;
    let moved = match got {
        Ok(n) => Region::at(n, 2 * page),
        Err(e) => fail!("mremap(MREMAP_DONTUNMAP) in view 2: {}", errno_name(e)),
    };
    let check = || -> TestResult {
        moved.verify_all(D).context("the moved data")?;
        ensure!(
            thread_maps(dontunmap.addr(), dontunmap.addr() + 2 * page)?,
            "the old range is gone"
        );
        dontunmap.verify_zero(0, 2 * page).context("the old range")
    };
    check().context("base after MREMAP_DONTUNMAP")?;
    a.run(check).context("view 1 after MREMAP_DONTUNMAP")?;
    b.run(check).context("view 2 after MREMAP_DONTUNMAP")?;
    a.run(|| {
        dontunmap.fill_all(D2);
        Ok(())
    })?;
    dontunmap
        .verify_all(D2)
        .context("base: view 1 stored into the emptied range")?;
    b.run(|| dontunmap.verify_all(D2))
        .context("view 2: view 1 stored into the emptied range")?;

    // A second mapping of a MAP_SHARED object, made in view 1.
    let got = a.run(|| Ok(remap(object.addr(), 0, 2 * page, libc::MREMAP_MAYMOVE, 0)))?;
    let alias = match got {
        Ok(n) => Region::at(n, 2 * page),
        Err(e) => fail!("mremap(old_len 0) in view 1: {}", errno_name(e)),
    };
    alias.verify_all(M).context("base: the second mapping")?;
    b.run(|| {
        alias.fill_all(M2);
        Ok(())
    })?;
    object
        .verify_all(M2)
        .context("base: a store of view 2 through the second mapping")?;
    a.run(|| object.verify_all(M2))
        .context("view 1: a store of view 2 through the second mapping")?;

    // The vDSO stays where it is.
    let (vdso, vdso_len) = vdso_range()?;
    let spare = Region::anon(vdso_len)?;
    spare.fill_all(X);
    let got = a.run(|| {
        Ok(remap(
            vdso,
            vdso_len,
            vdso_len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            spare.addr(),
        ))
    })?;
    ensure_eq!(got, Err(libc::EINVAL), "mremap of the vDSO in view 1");
    ensure_eq!(vdso_range()?, (vdso, vdso_len), "the vDSO's place");
    spare
        .verify_all(X)
        .context("the would-be target of the vDSO")
}

/// The ranges the calling thread's view maps, as `start-end` pairs.
fn thread_layout() -> TestResult<Vec<(usize, usize)>> {
    Ok(thread_smaps_entries(0, usize::MAX)?
        .iter()
        .map(|e| (e.start, e.end))
        .collect())
}

/// A move that one view cannot make is undone in all: view 2 has split an
/// unshared mapping into many (per-view mprotect), so with
/// vm.max_map_count lowered the base's mremap() can move its mapping and
/// view 1's, but not view 2's: ENOMEM, and every view has its old layout
/// and data. With the limit back, the same move succeeds everywhere.
fn views_layout_mremap_undone() -> TestResult {
    const S: u64 = 0x0dd0;
    const U: u64 = 0x0dd1;
    const SPLITS: usize = 16;
    prepare()?;
    let page = page_size();
    let shared = Region::anon(4 * page)?;
    shared.fill_all(S);
    let unshared = Region::anon(2 * SPLITS * page)?;
    unshared.fill_all(U);
    unshared.unshare()?;
    let (a, b) = two_views()?;
    b.run(|| {
        for i in 0..SPLITS {
            let addr = unshared.addr() + 2 * i * page;
            // SAFETY: makes one page of view 2's own copy of `unshared`
            // read-only; it is only read afterwards.
            if unsafe { libc::mprotect(addr as *mut libc::c_void, page, libc::PROT_READ) } != 0 {
                fail!("mprotect in view 2: {}", std::io::Error::last_os_error());
            }
        }
        Ok(())
    })?;
    let layouts = || -> TestResult<[Vec<(usize, usize)>; 3]> {
        Ok([
            thread_layout()?,
            a.run(thread_layout)?,
            b.run(thread_layout)?,
        ])
    };
    let before = layouts()?;
    ensure!(
        before[2].len() >= before[0].len() + SPLITS,
        "view 2 has {} mappings, the base {}: the mprotect did not split",
        before[2].len(),
        before[0].len()
    );
    let limit = before[0].len() + SPLITS / 2;
    let got = {
        let _limit = set_temporarily("/proc/sys/vm/max_map_count", &limit.to_string())?;
        remap(shared.addr(), 4 * page, 8 * page, libc::MREMAP_MAYMOVE, 0)
    };
    ensure_eq!(
        got,
        Err(libc::ENOMEM),
        "mremap in the base that view 2 cannot make (vm.max_map_count {limit})"
    );
    let after = layouts()?;
    for (i, who) in ["base", "view 1", "view 2"].into_iter().enumerate() {
        ensure!(
            before[i] == after[i],
            "{who}: the layout changed: {:x?} -> {:x?}",
            before[i],
            after[i]
        );
    }
    shared
        .verify_all(S)
        .context("base: data after the undone move")?;
    a.run(|| shared.verify_all(S))
        .context("view 1: data after the undone move")?;
    b.run(|| shared.verify_all(S))
        .context("view 2: data after the undone move")?;
    b.run(|| unshared.verify_all(U))
        .context("view 2: its unshared data")?;

    let new = match remap(shared.addr(), 4 * page, 8 * page, libc::MREMAP_MAYMOVE, 0) {
        Ok(n) => n,
        Err(e) => fail!("the same mremap with the limit back: {}", errno_name(e)),
    };
    let grown = Region::at(new, 8 * page);
    let check = || -> TestResult {
        expect_moved(shared.addr(), 4 * page, new, 8 * page)?;
        grown.verify(0, 4 * page, S)
    };
    check().context("base")?;
    a.run(check).context("view 1")?;
    b.run(check).context("view 2")
}

/// Whether every mapping of the calling thread's view over
/// `[start, end)` has the smaps flag `flag` (none: `false`).
fn thread_flag(start: usize, end: usize, flag: &str) -> TestResult<bool> {
    let entries = thread_smaps_entries(start, end)?;
    Ok(!entries.is_empty() && entries.iter().all(|e| e.has_flag(flag)))
}

/// Whether the calling thread's view maps none of `[start, end)`, asked
/// with a system call that allocates nothing (for a forked child).
fn unmapped_raw(start: usize, end: usize) -> bool {
    // SAFETY: MS_ASYNC on a range we only ask about; it fails with ENOMEM
    // when nothing is mapped there.
    let r = unsafe { libc::msync(start as *mut libc::c_void, end - start, libc::MS_ASYNC) };
    r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOMEM)
}

/// `mseal(2)` of `[addr, addr + len)`; the errno on failure.
fn mseal(addr: usize, len: usize) -> Result<(), i32> {
    const SYS_MSEAL: libc::c_long = 462;
    // SAFETY: sealing changes no memory; the callers do not unmap the range.
    if unsafe { libc::syscall(SYS_MSEAL, addr, len, 0) } != 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(())
}

/// madvise() advice that sets a flag of a mapping, and mseal(), made in any
/// view hold in every view: MADV_DONTFORK from view 1 (a fork from view 2
/// leaves the range out of the child; MADV_DOFORK from the base puts it
/// back), MADV_DONTDUMP over part of a range from the base, MADV_WIPEONFORK
/// from view 2; a range sealed in view 1 cannot be unmapped from the base
/// nor made read-only from view 2, and stays shared.
fn views_layout_madvise_mseal() -> TestResult {
    const S: u64 = 0x5ea1;
    const T: u64 = 0x5ea2;
    prepare()?;
    let page = page_size();
    let region = Region::anon(4 * page)?;
    region.fill_all(S);
    let sealed = Region::anon(2 * page)?;
    let (a, b) = two_views()?;
    let (start, end) = (region.addr(), region.addr() + region.len());
    let advise = |addr: usize, len: usize, advice: libc::c_int| -> TestResult {
        // SAFETY: advice on our own mapping that changes no data.
        if unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) } != 0 {
            fail!("madvise({advice}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    };

    a.run(|| advise(start, end - start, libc::MADV_DONTFORK))?;
    ensure!(
        thread_flag(start, end, "dc")?,
        "base: no dc after view 1's MADV_DONTFORK"
    );
    ensure!(
        b.run(|| thread_flag(start, end, "dc"))?,
        "view 2: no dc after view 1's MADV_DONTFORK"
    );
    let child = b.run(|| {
        // SAFETY: the child makes one system call and exits.
        unsafe { fork(|| if unmapped_raw(start, end) { 0 } else { 20 }) }
    })?;
    child.expect_success("a child forked in view 2", |code| match code {
        20 => "the child has the MADV_DONTFORK range".to_string(),
        _ => format!("the child exited with status {code}"),
    })?;
    advise(start, end - start, libc::MADV_DOFORK)?;
    ensure!(
        !a.run(|| thread_flag(start, start + page, "dc"))?,
        "view 1: still dc after the base's MADV_DOFORK"
    );

    advise(start, 2 * page, libc::MADV_DONTDUMP)?;
    for (who, first, second) in [
        (
            "view 1",
            a.run(|| thread_flag(start, start + 2 * page, "dd"))?,
            a.run(|| thread_flag(start + 2 * page, end, "dd"))?,
        ),
        (
            "view 2",
            b.run(|| thread_flag(start, start + 2 * page, "dd"))?,
            b.run(|| thread_flag(start + 2 * page, end, "dd"))?,
        ),
    ] {
        ensure!(
            first && !second,
            "{who}: dd over the first half only expected, got {first}/{second}"
        );
    }
    b.run(|| advise(start, end - start, libc::MADV_WIPEONFORK))?;
    ensure!(
        thread_flag(start, end, "wf")?,
        "base: no wf after view 2's MADV_WIPEONFORK"
    );
    ensure!(
        a.run(|| thread_flag(start, end, "wf"))?,
        "view 1: no wf after view 2's MADV_WIPEONFORK"
    );
    region
        .verify_all(S)
        .context("base: the data after the advice")?;

    let (s0, s1) = (sealed.addr(), sealed.addr() + sealed.len());
    let got = a.run(|| Ok(mseal(s0, s1 - s0)))?;
    ensure_eq!(got, Ok(()), "mseal in view 1");
    for (who, flag) in [
        ("base", thread_flag(s0, s1, "sl")?),
        ("view 1", a.run(|| thread_flag(s0, s1, "sl"))?),
        ("view 2", b.run(|| thread_flag(s0, s1, "sl"))?),
    ] {
        ensure!(flag, "{who}: the range sealed in view 1 is not sealed");
    }
    // SAFETY: must fail (the range is sealed); checked.
    let r = unsafe { libc::munmap(s0 as *mut libc::c_void, s1 - s0) };
    ensure!(
        r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM),
        "munmap of the sealed range from the base: {r}"
    );
    let r = b.run(|| {
        // SAFETY: must fail (the range is sealed); checked.
        let r = unsafe { libc::mprotect(s0 as *mut libc::c_void, s1 - s0, libc::PROT_READ) };
        Ok((r, std::io::Error::last_os_error().raw_os_error()))
    })?;
    ensure_eq!(
        r,
        (-1, Some(libc::EPERM)),
        "mprotect of the sealed range from view 2"
    );
    b.run(|| {
        sealed.fill_all(T);
        Ok(())
    })?;
    sealed
        .verify_all(T)
        .context("base: a store of view 2 in the sealed range")?;
    a.run(|| sealed.verify_all(T))
        .context("view 1: a store of view 2 in the sealed range")
}

/// What would let pages of a family change behind the views' backs is
/// refused with EOPNOTSUPP: KSM (before CREATE, CREATE fails; after it,
/// MADV_MERGEABLE and PR_SET_MEMORY_MERGE fail) and userfaultfd
/// registration after CREATE. Shared memory stays in sync.
fn views_refuse_ksm_userfaultfd() -> TestResult {
    const S: u64 = 0x4b53;
    const PR_SET_MEMORY_MERGE: libc::c_int = 67;
    prepare()?;
    let page = page_size();
    let region = Region::anon(4 * page)?;
    region.fill_all(S);
    let (uffd, _, _) = userfaultfd_open()?;
    // A child that asks for KSM first cannot create views.
    let ksm_then_create = || {
        // SAFETY: advice on the child's copy of the region.
        let r = unsafe {
            libc::madvise(
                region.addr() as *mut libc::c_void,
                region.len(),
                libc::MADV_MERGEABLE,
            )
        };
        if r != 0 {
            return 21;
        }
        match mmview::create() {
            Err(e) if e.is(libc::EOPNOTSUPP) => 0,
            _ => 22,
        }
    };
    // SAFETY: the child makes system calls only.
    let child = unsafe { fork(ksm_then_create) }?;
    child.expect_success("a child using KSM", |code| match code {
        21 => "MADV_MERGEABLE failed before any view existed".to_string(),
        22 => "MMVIEW_CREATE did not fail with EOPNOTSUPP".to_string(),
        _ => format!("the child exited with status {code}"),
    })?;

    let (a, _b) = two_views()?;
    let errno = |r: libc::c_int| (r, std::io::Error::last_os_error().raw_os_error());
    // SAFETY: advice on our own mapping; it must fail.
    let r = errno(unsafe {
        libc::madvise(
            region.addr() as *mut libc::c_void,
            region.len(),
            libc::MADV_MERGEABLE,
        )
    });
    ensure_eq!(r, (-1, Some(libc::EOPNOTSUPP)), "MADV_MERGEABLE with views");
    // SAFETY: a prctl with integer arguments; it must fail.
    let r = errno(unsafe { libc::prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) });
    ensure_eq!(
        r,
        (-1, Some(libc::EOPNOTSUPP)),
        "PR_SET_MEMORY_MERGE with views"
    );
    let got = a.run(|| Ok(userfaultfd_register(&uffd, region.addr(), region.len())))?;
    ensure_eq!(got, Err(libc::EOPNOTSUPP), "UFFDIO_REGISTER in view 1");
    ensure_eq!(
        userfaultfd_register(&uffd, region.addr(), region.len()),
        Err(libc::EOPNOTSUPP),
        "UFFDIO_REGISTER in the base"
    );
    a.run(|| region.verify_all(S))
        .context("view 1: shared data after the refusals")
}

/// Memory of every view goes to swap and comes back whole, also when
/// compaction migrates it: shared memory that the base and a view map, and
/// each view's unshared copy, are reclaimed through the process's memory
/// cgroup (`memory.reclaim`; `vm.compact_memory` first, which also drains
/// the LRU batches). A view's copies of the base's pages are dropped, not
/// swapped (the view refaults from the base): the view then maps no more
/// of the shared range than the base. Afterwards every view reads its
/// data, and stores in a view still reach the others.
fn views_swap_out_and_back() -> TestResult {
    const S: u64 = 0x5a00;
    const S1: u64 = 0x5a01;
    const UB: u64 = 0x5a0b;
    const U1: u64 = 0x5a11;
    const U2: u64 = 0x5a12;
    const P: u64 = 0x5a5a;
    prepare()?;
    let cgroup = MemoryCgroup::join(&format!("mmview-swap-{}", std::process::id()))?;
    let page = page_size();
    let len = 64 * page;
    let shared = Region::anon(len)?;
    let unshared = Region::anon(len)?;
    shared.fill_all(S);
    unshared.fill_all(UB);
    unshared.unshare()?;
    let (a, b) = two_views()?;
    // View 1 maps all of the shared range and writes its second half.
    a.run(|| {
        shared.verify(0, len / 2, S)?;
        shared.fill(len / 2, len / 2, S1);
        unshared.fill_all(U1);
        Ok(())
    })?;
    b.run(|| {
        unshared.fill_all(U2);
        Ok(())
    })?;
    unshared.fill_all(UB);

    // Pages that two views map young are activated at the first pass;
    // later passes age the active list until they go too (1 to 109 passes
    // seen; a pass takes milliseconds).
    let mut swapped = [0u64; 3];
    let mut passes = 0;
    for _ in 0..1500 {
        write_file("/proc/sys/vm/compact_memory", "1")?;
        cgroup.reclaim(64 << 20)?;
        swapped = [
            thread_smaps_kib(&shared, "Swap")?,
            a.run(|| thread_smaps_kib(&unshared, "Swap"))?,
            b.run(|| thread_smaps_kib(&unshared, "Swap"))?,
        ];
        passes += 1;
        if swapped.iter().all(|&kib| kib > 0) {
            break;
        }
    }
    let rss = [
        thread_smaps_kib(&shared, "Rss")?,
        a.run(|| thread_smaps_kib(&shared, "Rss"))?,
    ];
    let view_swap = a.run(|| thread_smaps_kib(&shared, "Swap"))?;
    diag!(
        "after {passes} reclaim passes: kB in swap: base shared, view 1 unshared, view 2 \
         unshared {swapped:?}; resident shared kB: base, view 1 {rss:?}"
    );
    if !swapped.iter().all(|&kib| kib > 0) {
        diag!(
            "memory.stat: {:?}",
            cgroup.stat(&[
                "anon",
                "active_anon",
                "inactive_anon",
                "pgscan",
                "pgactivate"
            ])?
        );
    }
    ensure!(
        swapped.iter().all(|&kib| kib > 0),
        "memory.reclaim left a range unswapped (kB in swap: base shared, view 1 unshared, view 2 \
         unshared): {swapped:?}"
    );
    ensure_eq!(
        view_swap,
        0,
        "kB of view 1's shared range in swap (its copies are dropped)"
    );
    ensure!(
        rss[1] <= rss[0],
        "view 1 maps {} kB of the shared range, the base only {}",
        rss[1],
        rss[0]
    );

    let shared_data = || -> TestResult {
        shared.verify(0, len / 2, S)?;
        shared.verify(len / 2, len / 2, S1)
    };
    check_all([
        b.run(shared_data)
            .context("view 2: shared data back from swap"),
        a.run(shared_data)
            .context("view 1: shared data back from swap"),
        shared_data().context("base: shared data back from swap"),
        a.run(|| unshared.verify_all(U1))
            .context("view 1: unshared data back from swap"),
        b.run(|| unshared.verify_all(U2))
            .context("view 2: unshared data back from swap"),
        unshared
            .verify_all(UB)
            .context("base: unshared data back from swap"),
    ])?;
    b.run(|| {
        shared.fill_all(P);
        Ok(())
    })?;
    shared
        .verify_all(P)
        .context("base: a store of view 2 after swap-in")?;
    a.run(|| shared.verify_all(P))
        .context("view 1: a store of view 2 after swap-in")
}

/// `madvise(MADV_SOFT_OFFLINE)` over `region` in the calling thread's view:
/// every page is migrated to a new frame (the old one is retired).
fn soft_offline(region: &Region) -> TestResult {
    const MADV_SOFT_OFFLINE: libc::c_int = 101;
    // SAFETY: moves our pages to new frames; their contents stay.
    let r = unsafe {
        libc::madvise(
            region.addr() as *mut libc::c_void,
            region.len(),
            MADV_SOFT_OFFLINE,
        )
    };
    if r != 0 {
        fail!(
            "madvise(MADV_SOFT_OFFLINE): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Pages that views map migrate without loss (MADV_SOFT_OFFLINE moves each
/// page to a new frame, through rmap, as compaction and NUMA balancing
/// do): every page of a shared range that the base and view 1 map (half
/// of it written, so mapped writable, by view 1) moves when view 1 asks,
/// and afterwards view 1 maps only the base's new frames; each view's
/// unshared copy moves too. Every view reads its data, and stores still
/// reach the others.
fn views_migrate_pages() -> TestResult {
    const S: u64 = 0x3160;
    const S1: u64 = 0x3161;
    const UB: u64 = 0x316b;
    const U1: u64 = 0x3171;
    const U2: u64 = 0x3172;
    const P: u64 = 0x31ff;
    prepare()?;
    let page = page_size();
    let len = 16 * page;
    let shared = Region::anon(len)?;
    let unshared = Region::anon(len)?;
    shared.fill_all(S);
    unshared.fill_all(UB);
    unshared.unshare()?;
    let (a, b) = two_views()?;
    a.run(|| {
        shared.fill(0, len / 2, S1);
        shared.verify(len / 2, len / 2, S)?;
        unshared.fill_all(U1);
        Ok(())
    })?;
    b.run(|| {
        unshared.fill_all(U2);
        Ok(())
    })?;
    let before = [
        thread_pfns(&shared)?,
        a.run(|| thread_pfns(&unshared))?,
        b.run(|| thread_pfns(&unshared))?,
    ];
    a.run(|| soft_offline(&shared))
        .context("view 1, shared range")?;
    a.run(|| soft_offline(&unshared))
        .context("view 1, unshared range")?;
    b.run(|| soft_offline(&unshared))
        .context("view 2, unshared range")?;
    let after = [
        thread_pfns(&shared)?,
        a.run(|| thread_pfns(&unshared))?,
        b.run(|| thread_pfns(&unshared))?,
    ];
    for (what, (old, new)) in [
        "base, shared range",
        "view 1, unshared range",
        "view 2, unshared range",
    ]
    .into_iter()
    .zip(before.iter().zip(&after))
    {
        let stayed = old
            .iter()
            .zip(new)
            .filter(|(o, n)| o.is_some() && o == n)
            .count();
        ensure_eq!(stayed, 0, "{what}: pages still in their old frame");
    }
    let view = a.run(|| thread_pfns(&shared))?;
    let stale = after[0]
        .iter()
        .zip(&view)
        .filter(|(b, v)| v.is_some() && b != v)
        .count();
    ensure_eq!(
        stale,
        0,
        "pages of the shared range view 1 maps that are not the base's"
    );
    let shared_data = || -> TestResult {
        shared.verify(0, len / 2, S1)?;
        shared.verify(len / 2, len / 2, S)
    };
    check_all([
        shared_data().context("base: shared data"),
        a.run(shared_data).context("view 1: shared data"),
        b.run(shared_data).context("view 2: shared data"),
        unshared.verify_all(UB).context("base: unshared data"),
        a.run(|| unshared.verify_all(U1))
            .context("view 1: unshared data"),
        b.run(|| unshared.verify_all(U2))
            .context("view 2: unshared data"),
    ])?;
    b.run(|| {
        shared.fill_all(P);
        Ok(())
    })?;
    shared
        .verify_all(P)
        .context("base: a store of view 2 after the migration")?;
    a.run(|| shared.verify_all(P))
        .context("view 1: a store of view 2 after the migration")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let tests = tests();
        let mut names: Vec<&str> = tests.iter().map(Test::name).collect();
        assert!(names.iter().all(|n| n.starts_with("views_")));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn fork_codes_are_explained() {
        for code in 10..=18 {
            assert!(fork_child_failure(code).contains(": "), "{code}");
        }
        assert_eq!(fork_child_failure(3), "the child exited with status 3");
    }

    #[test]
    fn stress_codes_are_explained() {
        for code in 20..=31 {
            assert!(stress_child_failure(code).contains(": "), "{code}");
        }
        assert_eq!(stress_child_failure(3), "the child exited with status 3");
    }

    fn stress_memory() -> TestResult<Stress> {
        let page = page_size();
        Ok(Stress {
            shared: Region::anon(3 * page)?,
            unshared: Region::anon(3 * page)?,
            page,
        })
    }

    #[test]
    fn stress_layout() -> TestResult {
        let st = stress_memory()?;
        let mut offsets: Vec<usize> = (0..STRESS_WORKERS)
            .flat_map(|w| (0..STRESS_WORDS).map(move |j| (w, j)))
            .map(|(w, j)| st.shared_word(w, j))
            .collect();
        assert!(offsets
            .iter()
            .all(|&o| o % 64 == 0 && o < st.scratch() && o % st.page < st.page));
        assert_eq!(st.shared_word(0, 0) / st.page, 0);
        assert_eq!(st.shared_word(0, 1) / st.page, 1);
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), STRESS_WORKERS * STRESS_WORDS);
        let mut owned: Vec<usize> = (0..STRESS_PER_VIEW).flat_map(|t| st.owned(t)).collect();
        assert_eq!(owned.len(), st.unshared_words());
        owned.sort_unstable();
        owned.dedup();
        assert_eq!(owned.len(), st.unshared_words());
        assert_eq!(STRESS_ITERS, 976);
        Ok(())
    }

    #[test]
    fn stress_tags_round_trip() {
        let tag = Stress::tag(3, 17, 42);
        assert_eq!(Stress::untag(tag, 3, 17), Some(42));
        assert_eq!(Stress::untag(tag, 2, 17), None);
        assert_eq!(Stress::untag(tag, 3, 16), None);
        let child = Stress::child_word(Stress::CHILD_TAG, 5, 17);
        assert_eq!(Stress::untag(child, 3, 17), None);
        assert!(child > u64::from(STRESS_ITERS));
        assert_eq!(
            describe_tag(tag),
            "a tag of view slot 3 for word 17 at iteration 42"
        );
        assert_eq!(describe_tag(child), "a store of forked child 5");
    }

    /// Two workers of slot 0 in this (single-view) process: their
    /// iterations check out, and so does the child's view of the result.
    #[test]
    fn stress_steps_and_child_checks() -> TestResult {
        let st = stress_memory()?;
        st.shared
            .fill(st.scratch(), st.page, Stress::SHARED_SCRATCH);
        st.unshared
            .fill(st.scratch(), st.page, Stress::UNSHARED_SCRATCH);
        let control = StressControl {
            allowance: AtomicU32::new(STRESS_ITERS),
            abort: AtomicU32::new(0),
            progress: std::array::from_fn(|_| AtomicU32::new(0)),
        };
        for t in 0..STRESS_PER_VIEW {
            for k in st.owned(t) {
                st.unshared.store(k * 8, Stress::tag(0, k, 0));
            }
        }
        let mut last = [[0u64; STRESS_WORDS]; STRESS_WORKERS];
        for n in 1..=3 {
            for w in 0..STRESS_PER_VIEW {
                stress_write(&st, w, n)?;
                control.progress[w].store(n, Ordering::Release);
                stress_read(&st, &control, w, &mut last)?;
            }
        }
        st.verify_scratch()?;
        let child = StressChild {
            st,
            slot: 0,
            index: 1,
            snapshot: st.read_shared(),
        };
        assert_eq!(child.check_copy(&st.read_shared()), Ok(()));
        // Worker 0 stored half of iteration 4.
        let mut words = st.read_shared();
        words[0][..4].fill(4);
        assert_eq!(child.check_copy(&words), Ok(()));
        words[0][5] = 4;
        assert_eq!(child.check_copy(&words), Err(23));
        let mut words = st.read_shared();
        words[1][0] = 2;
        assert_eq!(child.check_copy(&words), Err(21));
        words[1][0] = Stress::child_word(Stress::CHILD_TAG, 0, 0);
        assert_eq!(child.check_copy(&words), Err(22));
        let other_view = StressChild {
            st,
            slot: 1,
            index: 1,
            snapshot: st.read_shared(),
        };
        assert_eq!(other_view.check_copy(&st.read_shared()), Err(24));
        // A child's stores are seen by the workers.
        let sum = child.unshared_sum();
        child.store_everywhere();
        assert!(child.stores_stayed());
        assert_ne!(child.unshared_sum(), sum);
        assert!(!st.scratch_untouched());
        assert!(stress_write(&st, 0, 4).is_err());
        assert!(stress_read(&st, &control, 0, &mut last).is_err());
        Ok(())
    }

    #[test]
    fn populated_bytes() {
        assert_eq!(POPULATED, (8 + 32 + 16 + 1) * MIB);
    }
}
