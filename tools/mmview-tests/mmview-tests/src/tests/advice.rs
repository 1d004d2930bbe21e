//! Page advice on shared memory acts on the memory, whatever view gives it:
//! `madvise(MADV_PAGEOUT)` from a view that never touched a shared range
//! pages out the base's pages of it (as the same call would without
//! views), `MADV_PAGEOUT` from the base pages out pages that views map too
//! (their mappings of the base's pages are not other users), and
//! `MADV_COLD` from a view deactivates the base's pages.
//!
//! The tests follow the memory rule of [`crate::util::view`]: every mapping
//! and thread is made before the first `MMVIEW_CREATE`, and memory is only
//! touched through [`Region`]. Every test pins the process to one CPU
//! first ([`pin_to_current_cpu`]): the advice skips pages still in another
//! CPU's LRU batch.

use super::named_tests;
use crate::check::{check_all, diag, ensure, ensure_eq, fail, skip, Context, Failure, TestResult};
use crate::framework::Test;
use crate::util::mem::{page_size, verify_pattern};
use crate::util::pages::{
    kpageflags, pin_to_current_cpu, swap_areas, thread_pagemap, KPF_ACTIVE, KPF_LRU,
};
use crate::util::sys::{errno_name, gettid, last_errno, ErrnoContext};
use crate::util::view::{prepare, thread_smaps_kib, threads_in_new_views, Region, ViewThread};

pub fn tests() -> Vec<Test> {
    named_tests![
        advice_pageout_from_view,
        advice_pageout_from_base_pages_views_map,
        advice_cold_from_view,
    ]
}

/// Pages of the range the tests advise about.
const PAGES: usize = 64;
/// `MADV_PAGEOUT` calls before the tests give up on a range (the first
/// one pages out every page on a correct kernel; the others only cover
/// pages something else held at that moment).
const PAGEOUT_TRIES: usize = 3;

/// `madvise(advice)` over all of `region`, from the calling thread's view;
/// the failure names `name`.
fn advise(region: &Region, advice: libc::c_int, name: &str) -> TestResult {
    region
        .madvise(0, region.len(), advice)
        .with_errno_context(|| {
            format!("madvise({:#x}, {:#x}, {name})", region.addr(), region.len())
        })
}

/// Skips the test unless a swap area is in use.
fn require_swap() -> TestResult {
    if swap_areas()?.is_empty() {
        skip!("no swap is active (/proc/swaps lists no area)");
    }
    Ok(())
}

/// The start of every test: [`prepare`], the process pinned to its CPU,
/// and the range of [`PAGES`] pages the test advises about, filled with
/// the pattern `seed` by the base; the range and the CPU.
fn pinned_range(seed: u64) -> TestResult<(Region, usize)> {
    prepare()?;
    let cpu = pin_to_current_cpu()?;
    let region = Region::anon(PAGES * page_size())?;
    region.fill_all(seed);
    Ok((region, cpu))
}

/// Checks that the threads `views` (each with the name of its view) and
/// then the base read the pattern `seed` in `region`; `what` says what
/// data that is. One result each, for [`check_all`].
fn data_checks(
    region: &Region,
    seed: u64,
    views: &[(&ViewThread, &str)],
    what: &str,
) -> Vec<TestResult> {
    let mut checks: Vec<TestResult> = views
        .iter()
        .map(|(thread, who)| {
            thread
                .run(|| region.verify_all(seed))
                .with_context(|| format!("{who}: {what}"))
        })
        .collect();
    checks.push(
        region
            .verify_all(seed)
            .with_context(|| format!("the base: {what}")),
    );
    checks
}

/// The calling thread's view's pages of `region`: (present, swapped).
fn thread_pages(region: &Region) -> TestResult<(usize, usize)> {
    let entries = thread_pagemap(region.addr(), region.len())?;
    Ok((
        entries.iter().filter(|e| e.present()).count(),
        entries.iter().filter(|e| e.swapped()).count(),
    ))
}

/// Fails unless the calling thread (the base's) maps every page of
/// `region`; `when` says at what point.
fn expect_all_present(region: &Region, when: &str) -> TestResult {
    let (present, _) = thread_pages(region)?;
    ensure_eq!(
        present,
        PAGES,
        "pages of the range present in the base {when}"
    );
    Ok(())
}

/// Calls `page_out` (a `madvise(MADV_PAGEOUT)` over `region` from some
/// view) until at least half of the base's pages of `region` are in swap,
/// at most [`PAGEOUT_TRIES`] times, and fails if they never are. The
/// calling thread is the base's; `who` names the advising view.
fn expect_paged_out(region: &Region, who: &str, page_out: impl Fn() -> TestResult) -> TestResult {
    let mut swapped = 0;
    let mut present = PAGES;
    for attempt in 1..=PAGEOUT_TRIES {
        page_out().with_context(|| format!("{who}: madvise(MADV_PAGEOUT)"))?;
        (present, swapped) = thread_pages(region)?;
        let swap_kib = thread_smaps_kib(region, "Swap")?;
        diag!(
            "after MADV_PAGEOUT {attempt} from {who}: the base has {swapped} of {PAGES} pages in \
             swap (pagemap), {present} present; smaps of its mapping: Swap {swap_kib} kB"
        );
        if swapped >= PAGES / 2 {
            return Ok(());
        }
    }
    fail!(
        "after {PAGEOUT_TRIES} madvise(MADV_PAGEOUT) calls from {who}, only {swapped} of the base's \
         {PAGES} pages of the range are in swap ({present} still present; at least {} expected, \
         as without views)",
        PAGES / 2
    )
}

/// MADV_PAGEOUT from a view that never touched a shared range pages out
/// the base's pages of it, as the same call pages out the range without
/// views (the view's mappings are the base's pages, mapped on demand);
/// afterwards the data reads back whole in the view (which faults it in
/// from the base's swap entries) and in the base.
fn advice_pageout_from_view() -> TestResult {
    const S: u64 = 0xad01;
    require_swap()?;
    let (region, cpu) = pinned_range(S)?;
    // SAFETY: the memory rule.
    let [(a, _)] = unsafe { threads_in_new_views()? };
    diag!("the process runs on CPU {cpu}");

    expect_all_present(&region, "before the advice")?;
    let (view_present, _) = a.run(|| thread_pages(&region))?;
    ensure_eq!(
        view_present,
        0,
        "pages of the range view 1 maps before its advice (it never touched the range)"
    );
    expect_paged_out(&region, "view 1", || {
        a.run(|| advise(&region, libc::MADV_PAGEOUT, "MADV_PAGEOUT"))
    })?;
    check_all(data_checks(
        &region,
        S,
        &[(&a, "view 1")],
        "the data back from swap",
    ))
}

/// MADV_PAGEOUT from the base pages out its pages of a shared range also
/// where views map them (view 1 read every page, view 2 half of them): the
/// views' mappings of the base's pages do not make them shared with
/// another user, which the advice would skip. Afterwards every view and
/// the base read the data whole.
fn advice_pageout_from_base_pages_views_map() -> TestResult {
    const S: u64 = 0xad02;
    require_swap()?;
    let (region, cpu) = pinned_range(S)?;
    let len = region.len();
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    diag!("the process runs on CPU {cpu}");

    let (view_present, _) = a.run(|| {
        region.read_pages(0, len);
        thread_pages(&region)
    })?;
    b.run(|| {
        region.read_pages(0, len / 2);
        Ok(())
    })?;
    ensure_eq!(
        view_present,
        PAGES,
        "pages of the range view 1 maps after reading every page (views map the base's pages)"
    );
    expect_all_present(&region, "before the advice")?;
    expect_paged_out(&region, "the base", || {
        advise(&region, libc::MADV_PAGEOUT, "MADV_PAGEOUT")
    })?;
    let (view_present_after, _) = a.run(|| thread_pages(&region))?;
    diag!("view 1 maps {view_present_after} pages of the range after the base's MADV_PAGEOUT");
    check_all(data_checks(
        &region,
        S,
        &[(&b, "view 2"), (&a, "view 1")],
        "the data back from swap",
    ))
}

/// The base's pages of `region` with `KPF_ACTIVE` (of those on an LRU
/// list), from /proc/kpageflags. The calling thread is the base's; frame
/// numbers need root (the guest runs the tests as root).
fn active_pages(region: &Region) -> TestResult<usize> {
    let entries = thread_pagemap(region.addr(), region.len())?;
    let pfns: Vec<u64> = entries.iter().filter_map(|e| e.pfn()).collect();
    ensure_eq!(pfns.len(), PAGES, "pages of the range present in the base");
    if pfns.contains(&0) {
        skip!("/proc/thread-self/pagemap hides frame numbers (not root?)");
    }
    let flags = kpageflags(&pfns)?;
    Ok(flags
        .iter()
        .filter(|&&f| f & KPF_LRU != 0 && f & KPF_ACTIVE != 0)
        .count())
}

/// Reads `region` of the calling process through process_vm_readv(2),
/// which takes its pages with get_user_pages(FOLL_TOUCH): each page is
/// marked accessed (the first read sets its referenced flag, the second
/// queues it for the active LRU list). `buf` is as long as the region.
fn touch_through_gup(region: &Region, buf: &mut [u8]) -> TestResult {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: region.addr() as *mut libc::c_void,
        iov_len: region.len(),
    };
    let tid = gettid();
    // SAFETY: `local` describes `buf`, which is writable and as long as
    // the remote range; reading our own memory changes nothing.
    let n = unsafe { libc::process_vm_readv(tid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        fail!("process_vm_readv: {}", errno_name(last_errno()));
    }
    ensure_eq!(
        usize::try_from(n).ok(),
        Some(region.len()),
        "bytes process_vm_readv read"
    );
    Ok(())
}

/// MADV_COLD from a view on shared memory succeeds and keeps the data
/// (view 1 had read half of the pages, so the advice covers pages the view
/// maps and pages it does not).
///
/// SMOKE CHECK of the path first of all: MADV_COLD from a view must return
/// 0 and leave the data whole in the view and the base. Beyond that the
/// test watches the deactivation itself, which is hard to see from
/// userspace (root only, through /proc/kpageflags): the base's pages are
/// first moved to the active LRU list (marked accessed twice by
/// process_vm_readv, then the per-CPU batch is drained by an advice on an
/// untouched scratch page, on the same CPU), and after view 1's MADV_COLD
/// at least half of them must have left it (`KPF_ACTIVE`), as they would
/// after the same advice without views. On a kernel where a view's MADV_COLD only
/// walks the view's own mappings (skipping pages it shares with the
/// base), every page stays active.
fn advice_cold_from_view() -> TestResult {
    const S: u64 = 0xad03;
    let (region, cpu) = pinned_range(S)?;
    let len = region.len();
    let scratch = Region::anon(page_size())?;
    let mut buf = vec![0u8; len];
    // SAFETY: the memory rule.
    let [(a, _)] = unsafe { threads_in_new_views()? };
    diag!("the process runs on CPU {cpu}");
    a.run(|| {
        region.read_pages(0, len / 2);
        Ok(())
    })?;

    // Onto the active list: accessed twice, then the batch drained.
    touch_through_gup(&region, &mut buf).context("the first read")?;
    touch_through_gup(&region, &mut buf).context("the second read")?;
    verify_pattern(&buf, S).context("the base's data as process_vm_readv read it")?;
    advise(&scratch, libc::MADV_COLD, "MADV_COLD of a scratch page")
        .context("draining the LRU batches")?;
    let active_before = active_pages(&region)?;
    ensure!(
        active_before >= PAGES / 2,
        "setup: only {active_before} of the base's {PAGES} pages are on the active LRU list after \
         being marked accessed twice (expected nearly all)"
    );

    // The path under test.
    a.run(|| advise(&region, libc::MADV_COLD, "MADV_COLD"))
        .context("view 1: madvise(MADV_COLD) of shared memory")?;
    a.run(|| advise(&scratch, libc::MADV_COLD, "MADV_COLD of a scratch page"))
        .context("view 1: draining the LRU batches")?;
    let active_after = active_pages(&region)?;
    diag!(
        "the base's pages on the active LRU list: {active_before} of {PAGES} before view 1's \
         MADV_COLD, {active_after} after"
    );
    let deactivated = if active_after <= PAGES / 2 {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{active_after} of the base's {PAGES} pages are still on the active LRU list after \
             view 1's MADV_COLD ({active_before} before; at most {} expected, as without views)",
            PAGES / 2
        )))
    };
    let mut checks = vec![deactivated];
    checks.extend(data_checks(
        &region,
        S,
        &[(&a, "view 1")],
        "the data after MADV_COLD",
    ));
    check_all(checks)
}
