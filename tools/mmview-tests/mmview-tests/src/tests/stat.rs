//! Per-view figures: `MMVIEW_STAT` and `/proc/<pid>/mmviews`.
//!
//! What is checked is what a user of the figures relies on: the state
//! (live or deleted, base or not) and the thread count exactly, the byte
//! figures by the pages the test maps and touches (they move a little with
//! the test's own heap and stack, so those checks allow a few pages), the
//! copy-on-write faults of a view by the pages written in it, the
//! size-versioned buffer protocol, and that `/proc/<pid>/mmviews` tells the
//! same as `MMVIEW_STAT` under the access rules of `/proc/<pid>/smaps`.
//!
//! The tests with views follow the memory rule of [`crate::util::view`]:
//! every mapping and thread they use is made before the first
//! `MMVIEW_CREATE`, and memory is touched through [`Region`]. The steps
//! that need a process without views, or a process of another user, run in
//! a child of their own ([`crate::util::child`]), forked while the test
//! process is still single-threaded.

use std::io::Read;

use mmview::{Stat, ViewId, MMVIEW_STAT, MMVIEW_STAT_BASE, MMVIEW_STAT_DELETED};

use super::named_tests;
use crate::check::{check_all, diag, ensure, ensure_eq, fail, skip, Context, Failure, TestResult};
use crate::framework::Test;
use crate::util::child;
use crate::util::mem::{page_size, Mapping};
use crate::util::pages::thread_pagemap;
use crate::util::procfs::read_file;
use crate::util::sys::{describe_raw, errno_name, expect_errno};
use crate::util::view::{prepare, Region, ViewThread};

pub fn tests() -> Vec<Test> {
    named_tests![
        stat_base_without_views,
        stat_views_figures,
        stat_size_protocol,
        stat_proc_mmviews,
    ]
}

const BASE: ViewId = ViewId::BASE;

/// The header line of `/proc/<pid>/mmviews`.
const PROC_HEADER: &str = "id state base threads shared_kB unshared_kB pgtables_kB cow_faults";

/// How far a byte figure may move between two readings while the test's
/// own thread runs (its heap and stack), in pages.
const SLACK_PAGES: u64 = 8;

/// The uid and gid of the unprivileged reader of another process's file.
const NOBODY: libc::uid_t = 65534;

/// The view with raw id `raw`.
fn id(raw: u64) -> ViewId {
    ViewId::from_raw(raw)
}

/// The page size, as a byte figure.
fn page() -> u64 {
    page_size() as u64
}

/// `MMVIEW_STAT(view)`; `what` names the view in the failure.
fn stat_of(view: ViewId, what: &str) -> TestResult<Stat> {
    mmview::stat(view).with_context(|| format!("MMVIEW_STAT({view}) of {what}"))
}

/// Fails unless `MMVIEW_STAT(view)` fails with EINVAL.
fn expect_unknown(view: ViewId, what: &str) -> TestResult {
    expect_errno(
        mmview::stat(view),
        libc::EINVAL,
        &format!("MMVIEW_STAT({view}) of {what}"),
    )
}

/// Fails unless `stat` has the `state` bits and `threads` threads.
fn expect_state(stat: &Stat, state: u64, threads: u64, what: &str) -> TestResult {
    ensure_eq!(
        stat.state,
        state,
        "state of {what} ({} expected)",
        describe_state(state)
    );
    ensure_eq!(stat.threads, threads, "threads of {what}");
    Ok(())
}

/// `live`, `deleted`, with `, base` when the base bit is set.
fn describe_state(state: u64) -> String {
    let mut text = if state & MMVIEW_STAT_DELETED != 0 {
        "deleted".to_string()
    } else {
        "live".to_string()
    };
    if state & MMVIEW_STAT_BASE != 0 {
        text.push_str(", base");
    }
    text
}

/// The threads of the calling process (the entries of /proc/self/task).
fn process_threads() -> TestResult<u64> {
    let tasks = std::fs::read_dir("/proc/self/task").context("reading /proc/self/task")?;
    Ok(tasks.count() as u64)
}

/// A one-line summary of a figure set for diagnostics.
fn show(stat: &Stat) -> String {
    format!(
        "state {:#x} threads {} shared {} B unshared {} B pgtables {} B cow_faults {}",
        stat.state,
        stat.threads,
        stat.shared_bytes,
        stat.unshared_bytes,
        stat.pgtable_bytes,
        stat.cow_faults
    )
}

// ---------------------------------------------------------------------------
// stat_base_without_views

/// Pages of anonymous memory the process without views touches.
const BASE_TOUCH_PAGES: u64 = 64;
/// Pages it fills before forking and writes again after (copy-on-write).
const BASE_COW_PAGES: u64 = 16;

/// A process without views has only id 0, the base: its thread count, its
/// resident memory all shared (growing by the pages it touches), no
/// unshared memory, page tables, and the copy-on-write faults it takes on
/// memory it shares with its parent after `fork()`. Every other id is
/// unknown.
fn stat_base_without_views() -> TestResult {
    let inherited = Region::anon(BASE_COW_PAGES as usize * page_size())?;
    inherited.fill_all(0x57a7_0001);
    // SAFETY: the test child is single-threaded here.
    unsafe {
        child::run("the process without views", || {
            base_without_views(&inherited)
        })
    }
    .map(drop)
}

/// The child of [`stat_base_without_views`].
fn base_without_views(inherited: &Region) -> TestResult<u8> {
    let page = page();
    let fresh = Region::anon(BASE_TOUCH_PAGES as usize * page_size())?;
    let threads = ViewThread::spawn_many("idle", 2)?;
    let running = process_threads()?;
    ensure_eq!(running, 3, "threads in /proc/self/task");

    // The first run of code faults in pages of the binary (with
    // fault-around, 16 at a time), which count as shared: run the
    // measured steps once on another region first.
    let warm = Region::anon(page_size())?;
    stat_of(BASE, "the base (warming up)")?;
    warm.fill_all(0x57a7_0004);
    stat_of(BASE, "the base (warming up)")?;

    let before = stat_of(BASE, "the base")?;
    fresh.fill_all(0x57a7_0002);
    let touched = stat_of(BASE, "the base, after touching the new pages")?;
    diag!("view 0 of a process without views: {}", show(&before));
    check_all([
        expect_state(&before, MMVIEW_STAT_BASE, running, "view 0"),
        check(before.shared_bytes > 0, || {
            format!("shared_bytes of view 0 is 0 ({})", show(&before))
        }),
        check(before.unshared_bytes == 0, || {
            format!("unshared_bytes of view 0 without views: {}", show(&before))
        }),
        check(before.pgtable_bytes > 0, || {
            format!("pgtable_bytes of view 0 is 0 ({})", show(&before))
        }),
    ])?;
    let grown = touched.shared_bytes.saturating_sub(before.shared_bytes);
    diag!(
        "after writing {BASE_TOUCH_PAGES} new pages: shared_bytes {} -> {} (+{} pages)",
        before.shared_bytes,
        touched.shared_bytes,
        grown / page
    );
    let want = BASE_TOUCH_PAGES * page;
    let mut found = vec![
        check(
            touched.shared_bytes >= before.shared_bytes + want - 2 * page
                && touched.shared_bytes <= before.shared_bytes + want + SLACK_PAGES * page,
            || {
                format!(
                    "shared_bytes of view 0 grew from {} to {} after writing \
                     {BASE_TOUCH_PAGES} new pages: expected about +{want}",
                    before.shared_bytes, touched.shared_bytes
                )
            },
        ),
        same(
            touched.unshared_bytes,
            0,
            "unshared_bytes of view 0 after touching shared memory",
        ),
    ];

    inherited.fill_all(0x57a7_0003);
    let written = stat_of(BASE, "the base, after writing the inherited pages")?;
    diag!(
        "after writing {BASE_COW_PAGES} pages shared with the parent since fork: cow_faults {} -> \
         {}",
        touched.cow_faults,
        written.cow_faults
    );
    // Copies are counted only in a process with views (the base from the
    // first MMVIEW_CREATE), so that a process that never uses mmview pays
    // nothing for the counter: without views the figure stays 0.
    found.push(check(written.cow_faults == 0, || {
        format!(
            "cow_faults of view 0 in a process without views went from {} to {} while it \
             wrote {BASE_COW_PAGES} pages it shared copy-on-write with its parent: expected 0 \
             (counted from the first MMVIEW_CREATE)",
            touched.cow_faults, written.cow_faults
        )
    }));
    found.push(same(
        written.threads,
        process_threads()?,
        "threads of view 0 at the end",
    ));
    drop(threads);
    found.extend(
        [1, 2, 1000, u64::MAX]
            .map(|raw| expect_unknown(id(raw), "a process without views (no such view)")),
    );
    check_all(found)?;
    Ok(0)
}

/// `Ok` if `cond`, else a failure with the reason `why()`.
fn check(cond: bool, why: impl FnOnce() -> String) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(Failure::new(why()))
    }
}

// ---------------------------------------------------------------------------
// stat_views_figures

/// Pages of each of the two regions of [`stat_views_figures`].
const VIEW_PAGES: u64 = 64;

/// The figures of a base and two views, each with a thread in it: thread
/// counts, the base flag (moving with `MMVIEW_SWITCH_BASE`), the
/// copy-on-write faults and unshared bytes of a view that writes its
/// unshared copy (and none in the other view or a fresh one), the shared
/// bytes a view gains by reading shared memory, and the state of a view
/// deleted while a thread is still in it (unknown once it left).
fn stat_views_figures() -> TestResult {
    const U0: u64 = 0x57a7_1000;
    const U1: u64 = 0x57a7_1001;
    const S0: u64 = 0x57a7_1100;
    prepare()?;
    let page = page();
    let len = (VIEW_PAGES * page) as usize;
    let unshared = Region::anon_unshared(len, U0)?;
    let shared = Region::anon(len)?;
    shared.fill_all(S0);
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let all = process_threads()?;
    // The figures that disagree, gathered so that one run shows them all.
    let mut found: Vec<TestResult> = Vec::new();

    let base = stat_of(BASE, "the base before any view")?;
    found.push(expect_state(
        &base,
        MMVIEW_STAT_BASE,
        all,
        "the base before any view",
    ));
    let v1 = mmview::create().context("MMVIEW_CREATE of view 1")?;
    let v2 = mmview::create().context("MMVIEW_CREATE of view 2")?;
    for (view, name) in [(v1, "view 1"), (v2, "view 2")] {
        let fresh = stat_of(view, name)?;
        diag!("{name} (id {view}) when made: {}", show(&fresh));
        found.push(expect_state(&fresh, 0, 0, &format!("{name}, just made")));
        found.push(same(
            fresh.cow_faults,
            0,
            &format!("cow_faults of {name}, just made"),
        ));
    }

    // SAFETY: the memory rule (see the module comment).
    unsafe { a.migrate_from(v1, BASE)? };
    // SAFETY: as above.
    unsafe { b.migrate_from(v2, BASE)? };
    let in_base = stat_of(BASE, "the base")?;
    let in_v1 = stat_of(v1, "view 1")?;
    let in_v2 = stat_of(v2, "view 2")?;
    diag!("view 1 with its thread: {}", show(&in_v1));
    diag!("view 2 with its thread: {}", show(&in_v2));
    found.push(expect_state(
        &in_base,
        MMVIEW_STAT_BASE,
        all - 2,
        "the base",
    ));
    found.push(expect_state(&in_v1, 0, 1, "view 1 with its thread"));
    found.push(expect_state(&in_v2, 0, 1, "view 2 with its thread"));

    a.run(|| {
        unshared.fill_all(U1);
        Ok(())
    })?;
    let wrote = stat_of(v1, "view 1 after writing its unshared copy")?;
    let other = stat_of(v2, "view 2 after view 1 wrote")?;
    diag!(
        "view 1 after writing the {VIEW_PAGES} unshared pages: {}",
        show(&wrote)
    );
    found.push(check(
        wrote.cow_faults >= in_v1.cow_faults + VIEW_PAGES,
        || {
            format!(
                "cow_faults of view 1 went from {} to {} while it wrote {VIEW_PAGES} unshared \
                 pages: expected at least +{VIEW_PAGES}",
                in_v1.cow_faults, wrote.cow_faults
            )
        },
    ));
    found.push(check(wrote.unshared_bytes >= VIEW_PAGES * page, || {
        format!(
            "unshared_bytes of view 1 after writing {VIEW_PAGES} unshared pages: {} (< {})",
            wrote.unshared_bytes,
            VIEW_PAGES * page
        )
    }));
    found.push(check(wrote.pgtable_bytes > 0, || {
        "pgtable_bytes of view 1 is 0".to_string()
    }));
    found.push(check(other.cow_faults == 0, || {
        format!(
            "cow_faults of view 2, which wrote nothing (view 1 wrote its own copy): {} \
             (before: {})",
            other.cow_faults, in_v2.cow_faults
        )
    }));
    unshared
        .verify_all(U0)
        .context("the base's unshared copy after view 1 wrote")?;
    a.run(|| unshared.verify_all(U1))
        .context("view 1's unshared copy")?;

    // Warm up: the first run of the reading code may fault in pages of the
    // binary in view 2 (16 at a time with fault-around).
    b.run(|| Ok(shared.read_pages(0, page_size())))?;
    let absent = b.run(|| {
        let entries = thread_pagemap(shared.addr(), len)?;
        Ok(entries.iter().filter(|e| !e.present()).count() as u64)
    })?;
    let unread = stat_of(v2, "view 2 before reading the shared range")?;
    b.run(|| Ok(shared.read_pages(0, len)))?;
    let read = stat_of(v2, "view 2 after reading the shared range")?;
    diag!(
        "view 2 read the {VIEW_PAGES} shared pages, {absent} of them not mapped in it yet: \
         shared_bytes {} -> {}",
        unread.shared_bytes,
        read.shared_bytes
    );
    found.push(check(read.shared_bytes > unread.shared_bytes, || {
        format!(
            "shared_bytes of view 2 did not grow when it read {VIEW_PAGES} shared pages \
             ({absent} of them not mapped in it before): {} -> {}",
            unread.shared_bytes, read.shared_bytes
        )
    }));
    found.push(check(
        read.shared_bytes >= unread.shared_bytes + absent * page
            && read.shared_bytes <= unread.shared_bytes + absent * page + SLACK_PAGES * page,
        || {
            format!(
                "shared_bytes of view 2 went from {} to {} when it read {VIEW_PAGES} shared \
                 pages, {absent} of which it had not mapped: expected +{}",
                unread.shared_bytes,
                read.shared_bytes,
                absent * page
            )
        },
    ));
    found.push(same(
        read.cow_faults,
        0,
        "cow_faults of view 2 after reading shared memory",
    ));

    let v3 = mmview::create().context("MMVIEW_CREATE of view 3, from the base")?;
    let fresh = stat_of(v3, "view 3, just made")?;
    diag!("view 3 (id {v3}) when made: {}", show(&fresh));
    found.push(expect_state(&fresh, 0, 0, "view 3, just made"));
    found.push(same(
        fresh.cow_faults,
        0,
        "cow_faults of view 3, made after view 1 took its faults",
    ));
    mmview::delete(v3).context("MMVIEW_DELETE of view 3")?;
    found.push(expect_unknown(v3, "view 3, deleted with no thread in it"));

    let got = a.run(|| mmview::switch_base().context("MMVIEW_SWITCH_BASE in view 1"))?;
    ensure_eq!(got, v1, "MMVIEW_SWITCH_BASE from view 1");
    found.push(
        stat_of(v1, "view 1, the new base")
            .and_then(|s| expect_state(&s, MMVIEW_STAT_BASE, 1, "view 1, the new base")),
    );
    found.push(
        stat_of(BASE, "view 0, the old base")
            .and_then(|s| expect_state(&s, 0, all - 2, "view 0, the old base")),
    );
    found.push(stat_of(v2, "view 2").and_then(|s| expect_state(&s, 0, 1, "view 2")));

    mmview::delete(v2).context("MMVIEW_DELETE of view 2, with its thread in it")?;
    let deleted = stat_of(v2, "view 2, deleted with its thread in it");
    if let Ok(deleted) = &deleted {
        diag!("view 2 deleted, its thread still in it: {}", show(deleted));
    }
    found.push(deleted.and_then(|s| {
        expect_state(
            &s,
            MMVIEW_STAT_DELETED,
            1,
            "view 2, deleted with its thread in it",
        )
    }));
    // SAFETY: the memory rule.
    unsafe { b.migrate_from(v1, v2)? };
    found.push(expect_gone(
        v2,
        "view 2, deleted, after its last thread left",
    ));
    found.push(
        stat_of(v1, "view 1, the base")
            .and_then(|s| expect_state(&s, MMVIEW_STAT_BASE, 2, "view 1 with both threads")),
    );
    found.push(
        stat_of(BASE, "view 0")
            .and_then(|s| expect_state(&s, 0, all - 2, "view 0 after view 2's thread left")),
    );
    check_all(found)
}

/// Fails unless `got == want`.
fn same<T: PartialEq + std::fmt::Debug>(got: T, want: T, what: &str) -> TestResult {
    ensure_eq!(got, want, "{what}");
    Ok(())
}

/// Fails unless `view` is unknown to MMVIEW_STAT now; if it is not, says
/// whether it became unknown within 2 s (freed late) or not.
fn expect_gone(view: ViewId, what: &str) -> TestResult {
    let first = mmview::stat(view);
    if matches!(first, Err(e) if e.is(libc::EINVAL)) {
        return Ok(());
    }
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(2) {
        std::thread::sleep(std::time::Duration::from_millis(10));
        if matches!(mmview::stat(view), Err(e) if e.is(libc::EINVAL)) {
            fail!(
                "MMVIEW_STAT({view}) of {what}: {first:?} at once, EINVAL only after {} ms",
                start.elapsed().as_millis()
            );
        }
    }
    expect_errno(
        first,
        libc::EINVAL,
        &format!("MMVIEW_STAT({view}) of {what}"),
    )
}

// ---------------------------------------------------------------------------
// stat_size_protocol

/// `mmview(MMVIEW_STAT, view, addr)`, raw.
fn raw_stat(view: u64, addr: usize) -> i64 {
    // SAFETY: MMVIEW_STAT does not move the thread; it writes only into the
    // caller's buffer, which the callers own (or is not mapped at all).
    unsafe { mmview::raw_mmview(MMVIEW_STAT, view, addr as u64) }
}

/// A buffer of `len` bytes at `offset` in a fresh mapping of the pages it
/// needs, every byte `fill`, with `size` written into its first 8 bytes.
struct Buffer {
    map: Mapping,
    offset: usize,
    len: usize,
}

impl Buffer {
    fn new(offset: usize, len: usize, fill: u8, size: u64) -> TestResult<Buffer> {
        let map_len = (offset + len)
            .next_multiple_of(page_size())
            .max(page_size());
        let mut map = Mapping::anon(map_len)?;
        let bytes = &mut map.as_mut_slice()[offset..offset + len];
        bytes.fill(fill);
        bytes[..8].copy_from_slice(&size.to_ne_bytes());
        Ok(Buffer { map, offset, len })
    }

    fn addr(&self) -> usize {
        self.map.addr() + self.offset
    }

    fn bytes(&self) -> &[u8] {
        &self.map.as_slice()[self.offset..self.offset + self.len]
    }

    fn word(&self, index: usize) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.bytes()[index * 8..index * 8 + 8]);
        u64::from_ne_bytes(word)
    }

    fn set_byte(&mut self, at: usize, value: u8) {
        self.map.as_mut_slice()[self.offset + at] = value;
    }

    /// MMVIEW_STAT of the base into the buffer.
    fn stat(&self) -> i64 {
        raw_stat(0, self.addr())
    }
}

/// The raw call must return `-errno`.
fn check_raw(ret: i64, errno: i32, what: &str) -> TestResult {
    ensure!(
        ret == -i64::from(errno),
        "MMVIEW_STAT with {what}: expected {}, got {}",
        errno_name(errno),
        describe_raw(ret)
    );
    Ok(())
}

/// A refused call must leave the buffer as it was.
fn refused(size: u64, len: usize, tail: Option<(usize, u8)>, errno: i32, what: &str) -> TestResult {
    let mut buf = Buffer::new(0, len, 0, size)?;
    if let Some((at, value)) = tail {
        buf.set_byte(at, value);
    }
    let before = buf.bytes().to_vec();
    check_raw(buf.stat(), errno, what)?;
    ensure!(
        buf.bytes() == &before[..],
        "MMVIEW_STAT with {what} failed as it should but changed the buffer"
    );
    Ok(())
}

/// Fails unless the 56 bytes at `buf` are the figures of the base of a
/// process without views (with `size` left as `size`).
fn filled(buf: &Buffer, size: u64, what: &str) -> TestResult {
    ensure_eq!(buf.word(0), size, "size after MMVIEW_STAT with {what}");
    ensure_eq!(
        buf.word(1),
        MMVIEW_STAT_BASE,
        "state after MMVIEW_STAT with {what}"
    );
    ensure!(
        buf.word(2) >= 1 && buf.word(3) > 0 && buf.word(5) > 0,
        "figures after MMVIEW_STAT with {what}: threads {}, shared {} B, pgtables {} B \
         (expected non-zero)",
        buf.word(2),
        buf.word(3),
        buf.word(5)
    );
    Ok(())
}

/// The size protocol of MMVIEW_STAT (as `openat2`): a size below the first
/// version is EINVAL; 56 fills the figures and nothing past them; a larger
/// struct is accepted if its bytes past 56 are zero (they stay zero, and
/// `size` stays as set) and refused with E2BIG otherwise, or when larger
/// than a page; a bad pointer is EFAULT. (The rule that unused arguments
/// must be 0 does not apply: MMVIEW_STAT uses both.)
fn stat_size_protocol() -> TestResult {
    let page = page_size();
    let mut results = vec![
        refused(0, 64, None, libc::EINVAL, "size 0"),
        refused(8, 64, None, libc::EINVAL, "size 8"),
        refused(55, 64, None, libc::EINVAL, "size 55"),
        refused(64, 64, Some((56, 1)), libc::E2BIG, "size 64, byte 56 = 1"),
        refused(
            64,
            64,
            Some((63, 0x80)),
            libc::E2BIG,
            "size 64, byte 63 = 0x80",
        ),
        refused(
            page as u64,
            page,
            Some((page - 1, 1)),
            libc::E2BIG,
            "size PAGE_SIZE, its last byte = 1",
        ),
        refused(
            page as u64 + 8,
            page + 8,
            None,
            libc::E2BIG,
            "size PAGE_SIZE + 8 (zeros past 56)",
        ),
        refused(u64::MAX, 64, None, libc::E2BIG, "size 2^64 - 1"),
    ];

    // 56: the figures, nothing past them.
    results.push((|| {
        let buf = Buffer::new(0, 64, 0xa5, 56)?;
        ensure_eq!(buf.stat(), 0, "MMVIEW_STAT with size 56");
        filled(&buf, 56, "size 56")?;
        ensure!(
            buf.bytes()[56..].iter().all(|&b| b == 0xa5),
            "MMVIEW_STAT with size 56 wrote past 56 bytes: {:02x?}",
            &buf.bytes()[56..]
        );
        Ok(())
    })());
    // Larger, zeros past 56: accepted, the tail and size left alone.
    for (len, what) in [
        (64, "size 64, zeros past 56"),
        (page, "size PAGE_SIZE, zeros past 56"),
    ] {
        results.push((|| {
            let buf = Buffer::new(0, len, 0, len as u64)?;
            ensure_eq!(buf.stat(), 0, "MMVIEW_STAT with {what}");
            filled(&buf, len as u64, what)?;
            ensure!(
                buf.bytes()[56..].iter().all(|&b| b == 0),
                "MMVIEW_STAT with {what} wrote past 56 bytes"
            );
            Ok(())
        })());
    }
    // Not aligned to 8.
    results.push((|| {
        let buf = Buffer::new(3, 56, 0, 56)?;
        ensure_eq!(buf.stat(), 0, "MMVIEW_STAT into a buffer at an odd address");
        let bytes = buf.bytes();
        let mut state = [0u8; 8];
        state.copy_from_slice(&bytes[8..16]);
        ensure_eq!(
            u64::from_ne_bytes(state),
            MMVIEW_STAT_BASE,
            "state written to a buffer at an odd address"
        );
        Ok(())
    })());

    // Bad pointers.
    results.push(check_raw(raw_stat(0, 0), libc::EFAULT, "a NULL buffer"));
    results.push((|| {
        let gone = Mapping::anon(2 * page)?;
        let addr = gone.addr();
        drop(gone);
        check_raw(raw_stat(0, addr), libc::EFAULT, "an unmapped buffer")
    })());
    results.push((|| {
        // The struct ends 8 bytes into an unmapped page: the kernel must
        // read those 8 bytes to see whether they are zero. (The buffer
        // spans two pages; the second is unmapped.)
        let buf = Buffer::new(page - 56, 64, 0, 64)?;
        ensure_eq!(buf.map.len(), 2 * page, "length of the buffer's mapping");
        buf.map.munmap_part(page, page)?;
        check_raw(
            buf.stat(),
            libc::EFAULT,
            "size 64, the last 8 bytes unmapped",
        )
    })());
    results.push((|| {
        let buf = Buffer::new(0, 56, 0, 56)?;
        // SAFETY: the buffer's own mapping, which nothing writes while it
        // is read-only; it is unmapped with the buffer.
        let r = unsafe { libc::mprotect(buf.map.as_ptr().cast(), page, libc::PROT_READ) };
        ensure!(
            r == 0,
            "mprotect(PROT_READ): {}",
            std::io::Error::last_os_error()
        );
        let before = buf.bytes().to_vec();
        check_raw(buf.stat(), libc::EFAULT, "a read-only buffer (size 56)")?;
        ensure!(buf.bytes() == &before[..], "the read-only buffer changed");
        Ok(())
    })());
    // Unknown ids are EINVAL with a good buffer too.
    results.push((|| {
        let buf = Buffer::new(0, 56, 0, 56)?;
        check_raw(raw_stat(1, buf.addr()), libc::EINVAL, "view 1 (no views)")?;
        check_raw(
            raw_stat(1 << 32, buf.addr()),
            libc::EINVAL,
            "view 2^32 (no views)",
        )
    })());
    check_all(results)
}

// ---------------------------------------------------------------------------
// stat_proc_mmviews

/// One line of `/proc/<pid>/mmviews`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ProcView {
    id: u64,
    deleted: bool,
    base: bool,
    threads: u64,
    shared_kb: u64,
    unshared_kb: u64,
    pgtables_kb: u64,
    cow_faults: u64,
}

/// A decimal number: ASCII digits only.
fn decimal(field: &str, what: &str, line: &str) -> TestResult<u64> {
    if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
        fail!("{what} {field:?} is not a decimal number in line {line:?}");
    }
    field
        .parse()
        .with_context(|| format!("{what} {field:?} in line {line:?}"))
}

/// Parses `/proc/<pid>/mmviews`: the header, then one line per view with
/// eight fields separated by single spaces. The views in file order.
fn parse_mmviews(text: &str) -> TestResult<Vec<ProcView>> {
    ensure!(
        text.ends_with('\n'),
        "the file does not end with a newline: {text:?}"
    );
    let mut lines = text[..text.len() - 1].split('\n');
    let header = lines.next().unwrap_or_default();
    ensure_eq!(header, PROC_HEADER, "header line");
    let mut views = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        ensure!(
            fields.len() == 8,
            "line {line:?}: {} fields separated by single spaces, expected 8",
            fields.len()
        );
        let deleted = match fields[1] {
            "live" => false,
            "deleted" => true,
            other => fail!("line {line:?}: state {other:?} (expected live or deleted)"),
        };
        let base = match fields[2] {
            "base" => true,
            "-" => false,
            other => fail!("line {line:?}: base column {other:?} (expected base or -)"),
        };
        views.push(ProcView {
            id: decimal(fields[0], "id", line)?,
            deleted,
            base,
            threads: decimal(fields[3], "threads", line)?,
            shared_kb: decimal(fields[4], "shared_kB", line)?,
            unshared_kb: decimal(fields[5], "unshared_kB", line)?,
            pgtables_kb: decimal(fields[6], "pgtables_kB", line)?,
            cow_faults: decimal(fields[7], "cow_faults", line)?,
        });
    }
    Ok(views)
}

/// Fails unless `kb` (kB) lies within the readings `a` and `b` (bytes),
/// give or take [`SLACK_PAGES`].
fn kb_within(kb: u64, a: u64, b: u64, what: &str) -> TestResult {
    let slack = SLACK_PAGES * page();
    let low = a.min(b).saturating_sub(slack) / 1024;
    let high = (a.max(b) + slack).div_ceil(1024);
    ensure!(
        (low..=high).contains(&kb),
        "{what}: {kb} kB in /proc, MMVIEW_STAT said {a} B before reading and {b} B after"
    );
    Ok(())
}

/// Fails unless the /proc line agrees with MMVIEW_STAT read just before
/// (`before`) and just after (`after`): state, base and threads exactly
/// (the threads of the test sit still), the byte figures within a few
/// pages, the copy-on-write faults between the two readings (the count
/// only grows).
fn agrees(line: &ProcView, before: &Stat, after: &Stat) -> TestResult {
    let view = line.id;
    let what = |field: &str| format!("view {view}: {field}");
    check_all([
        check(
            before.state == after.state && before.threads == after.threads,
            || format!("view {view} changed while the file was read"),
        ),
        check(line.deleted == after.is_deleted(), || {
            format!(
                "{}: /proc says {}, MMVIEW_STAT says {}",
                what("state"),
                if line.deleted { "deleted" } else { "live" },
                describe_state(after.state)
            )
        }),
        check(line.base == after.is_base(), || {
            format!(
                "{}: /proc says {}, MMVIEW_STAT says {}",
                what("base"),
                if line.base { "base" } else { "-" },
                describe_state(after.state)
            )
        }),
        check(line.threads == after.threads, || {
            format!(
                "{}: /proc says {}, MMVIEW_STAT says {}",
                what("threads"),
                line.threads,
                after.threads
            )
        }),
        kb_within(
            line.shared_kb,
            before.shared_bytes,
            after.shared_bytes,
            &what("shared_kB"),
        ),
        kb_within(
            line.unshared_kb,
            before.unshared_bytes,
            after.unshared_bytes,
            &what("unshared_kB"),
        ),
        kb_within(
            line.pgtables_kb,
            before.pgtable_bytes,
            after.pgtable_bytes,
            &what("pgtables_kB"),
        ),
        check(
            (before.cow_faults..=after.cow_faults).contains(&line.cow_faults),
            || {
                format!(
                    "{}: /proc says {}, MMVIEW_STAT said {} before reading and {} after",
                    what("cow_faults"),
                    line.cow_faults,
                    before.cow_faults,
                    after.cow_faults
                )
            },
        ),
    ])
}

/// Reads `path` (the mmviews file of the calling process) between two
/// MMVIEW_STAT readings of each view in `ids`, and checks that it lists
/// exactly those views, each agreeing with MMVIEW_STAT. The lines, sorted
/// by id.
fn read_and_compare(path: &str, ids: &[ViewId]) -> TestResult<Vec<ProcView>> {
    let before = ids
        .iter()
        .map(|&v| stat_of(v, "a view, before reading the file"))
        .collect::<TestResult<Vec<_>>>()?;
    let text = read_file(path)?;
    let after = ids
        .iter()
        .map(|&v| stat_of(v, "a view, after reading the file"))
        .collect::<TestResult<Vec<_>>>()?;
    for line in text.lines() {
        diag!("{path}: {line}");
    }
    let mut lines = parse_mmviews(&text).with_context(|| path.to_string())?;
    lines.sort_by_key(|l| l.id);
    let listed: Vec<u64> = lines.iter().map(|l| l.id).collect();
    let want: Vec<u64> = ids.iter().map(|v| v.as_raw()).collect();
    ensure_eq!(listed, want, "the ids listed in {path} (sorted)");
    check_all(
        lines
            .iter()
            .zip(before.iter().zip(&after))
            .map(|(line, (b, a))| agrees(line, b, a)),
    )
    .with_context(|| path.to_string())?;
    Ok(lines)
}

/// `/proc/<pid>/mmviews`: its header, one line per view agreeing with
/// MMVIEW_STAT (a process without views: one line for view 0; with views:
/// live, deleted and thread-less views, the base flag following
/// `MMVIEW_SWITCH_BASE`), and that another user's unprivileged process
/// cannot read it (EACCES, as for smaps) while it can read its own.
fn stat_proc_mmviews() -> TestResult {
    let alone = || -> TestResult<u8> {
        let running = process_threads()?;
        let lines = read_and_compare("/proc/self/mmviews", &[BASE])?;
        let line = &lines[0];
        ensure!(
            !line.deleted && line.base && line.threads == running,
            "the line of view 0 of a process without views: {line:?}"
        );
        ensure!(
            line.unshared_kb == 0 && line.shared_kb > 0 && line.pgtables_kb > 0,
            "the figures of view 0 of a process without views: {line:?}"
        );
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        read_and_compare(&format!("/proc/{pid}/mmviews"), &[BASE])?;
        Ok(0)
    };
    // SAFETY: the test child is single-threaded here.
    let alone = unsafe { child::run("a process without views", alone) }.map(drop);
    let other_user = other_user_cannot_read();
    let with_views = proc_with_views();
    check_all([alone, other_user, with_views])
}

/// A child that drops to uid and gid 65534 must get EACCES reading its
/// parent's (root's) file, and can read its own.
fn other_user_cannot_read() -> TestResult {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip!("needs root to run a process of another user (the guest runs the tests as root)");
    }
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let path = format!("/proc/{parent}/mmviews");
    read_file(&path).context("root reading its own process's file")?;
    let unprivileged = || -> TestResult<u8> {
        // SAFETY: plain system calls that change the credentials of this
        // single-threaded process.
        let dropped = unsafe {
            libc::setgroups(0, std::ptr::null()) == 0
                && libc::setresgid(NOBODY, NOBODY, NOBODY) == 0
                && libc::setresuid(NOBODY, NOBODY, NOBODY) == 0
        };
        ensure!(
            dropped,
            "dropping to uid {NOBODY}: {}",
            std::io::Error::last_os_error()
        );
        let got = std::fs::File::open(&path).and_then(|mut file| {
            let mut text = String::new();
            file.read_to_string(&mut text).map(|_| text)
        });
        match got {
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {}
            Err(e) => fail!("uid {NOBODY} reading {path} (uid 0): expected EACCES, got {e}"),
            Ok(text) => fail!(
                "uid {NOBODY} read {path} of a root process: {:?}",
                text.lines().take(2).collect::<Vec<_>>()
            ),
        }
        let own = read_file("/proc/self/mmviews").context("uid 65534 reading its own file")?;
        let lines = parse_mmviews(&own).context("/proc/self/mmviews of uid 65534")?;
        ensure!(
            lines.len() == 1 && lines[0].id == 0 && lines[0].base,
            "uid {NOBODY}'s own file: {lines:?}"
        );
        Ok(0)
    };
    // SAFETY: the test child is single-threaded here.
    unsafe { child::run("the child of uid 65534", unprivileged) }.map(drop)
}

/// The file of a process with a base, a view with a thread in it, a
/// deleted view a thread is still in, a view without threads, and a view
/// deleted without threads (not listed); then after `MMVIEW_SWITCH_BASE`.
fn proc_with_views() -> TestResult {
    const U0: u64 = 0x57a7_2000;
    const U1: u64 = 0x57a7_2001;
    const S0: u64 = 0x57a7_2100;
    prepare()?;
    let len = 16 * page_size();
    let unshared = Region::anon_unshared(len, U0)?;
    let shared = Region::anon(len)?;
    shared.fill_all(S0);
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let all = process_threads()?;
    let v1 = mmview::create().context("MMVIEW_CREATE of view 1")?;
    let v2 = mmview::create().context("MMVIEW_CREATE of view 2")?;
    let v3 = mmview::create().context("MMVIEW_CREATE of view 3")?;
    let v4 = mmview::create().context("MMVIEW_CREATE of view 4")?;
    // SAFETY: the memory rule (see the module comment).
    unsafe { a.migrate_from(v1, BASE)? };
    // SAFETY: as above.
    unsafe { b.migrate_from(v2, BASE)? };
    a.run(|| {
        unshared.fill_all(U1);
        Ok(())
    })?;
    b.run(|| Ok(shared.read_pages(0, len)))?;
    mmview::delete(v2).context("MMVIEW_DELETE of view 2, its thread in it")?;
    mmview::delete(v4).context("MMVIEW_DELETE of view 4, no thread in it")?;

    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let path = format!("/proc/{pid}/mmviews");
    let lines = read_and_compare(&path, &[BASE, v1, v2, v3])?;
    let summary: Vec<(u64, bool, bool, u64)> = lines
        .iter()
        .map(|l| (l.id, l.deleted, l.base, l.threads))
        .collect();
    ensure_eq!(
        summary,
        vec![
            (0, false, true, all - 2),
            (v1.as_raw(), false, false, 1),
            (v2.as_raw(), true, false, 1),
            (v3.as_raw(), false, false, 0),
        ],
        "(id, deleted, base, threads) of the lines of {path}"
    );
    ensure!(
        lines[1].cow_faults >= 16 && lines[1].unshared_kb >= (len / 1024) as u64,
        "view 1 wrote 16 unshared pages, but its line is {:?}",
        lines[1]
    );

    let got = a.run(|| mmview::switch_base().context("MMVIEW_SWITCH_BASE in view 1"))?;
    ensure_eq!(got, v1, "MMVIEW_SWITCH_BASE from view 1");
    let lines = read_and_compare("/proc/self/mmviews", &[BASE, v1, v2, v3])?;
    let bases: Vec<u64> = lines.iter().filter(|l| l.base).map(|l| l.id).collect();
    ensure_eq!(
        bases,
        vec![v1.as_raw()],
        "views marked base after MMVIEW_SWITCH_BASE in view 1"
    );
    // SAFETY: the memory rule.
    unsafe { b.migrate_from(v1, v2)? };
    let lines = read_and_compare("/proc/self/mmviews", &[BASE, v1, v3])?;
    ensure_eq!(
        lines.iter().map(|l| l.threads).collect::<Vec<_>>(),
        vec![all - 2, 2, 0],
        "threads after view 2's last thread left"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_proc_file() -> TestResult {
        let text = format!("{PROC_HEADER}\n3 deleted - 1 8 4 12 7\n0 live base 2 1024 0 16 0\n");
        let views = parse_mmviews(&text)?;
        assert_eq!(views.len(), 2);
        assert_eq!(
            views[0],
            ProcView {
                id: 3,
                deleted: true,
                base: false,
                threads: 1,
                shared_kb: 8,
                unshared_kb: 4,
                pgtables_kb: 12,
                cow_faults: 7,
            }
        );
        assert!(views[1].base && !views[1].deleted);
        Ok(())
    }

    #[test]
    fn refuses_malformed_files() {
        for text in [
            format!("{PROC_HEADER}\n0 live base 1 2 3 4 5"),
            format!("{PROC_HEADER} \n0 live base 1 2 3 4 5\n"),
            format!("{PROC_HEADER}\n0  live base 1 2 3 4 5\n"),
            format!("{PROC_HEADER}\n0 live base 1 2 3 4 5 \n"),
            format!("{PROC_HEADER}\n0 alive base 1 2 3 4 5\n"),
            format!("{PROC_HEADER}\n0 live yes 1 2 3 4 5\n"),
            format!("{PROC_HEADER}\n0 live base +1 2 3 4 5\n"),
            format!("{PROC_HEADER}\n0 live base 1 2 3 4\n"),
            "id state base threads\n0 live base 1\n".to_string(),
        ] {
            assert!(parse_mmviews(&text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn kb_tolerance() {
        let page = page();
        assert!(kb_within(8, 8192, 8192, "x").is_ok());
        assert!(kb_within(8 + SLACK_PAGES * page / 1024, 8192, 8192, "x").is_ok());
        assert!(kb_within(9 + SLACK_PAGES * page / 1024, 8192, 8192, "x").is_err());
        assert!(kb_within(0, 8192, 8192, "x").is_ok());
    }
}
