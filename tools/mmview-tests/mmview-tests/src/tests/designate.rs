//! `MMVIEW_UNSHARE` / `MMVIEW_SHARE`: the designation of ranges, seen as
//! the `vu` flag in /proc/self/smaps, and `mprotect()` across designations.
//!
//! The process has no views here, which is exactly when the contract allows
//! designating ranges (EPERM once views exist, and the copy-on-write
//! behaviour of unshared ranges between views, are tested in `views`).

use std::io;

use super::named_tests;
use crate::check::{check_all, ensure, ensure_eq, fail, Context, TestResult};
use crate::framework::Test;
use crate::util::mem::{fill_pattern, page_size, verify_pattern, Mapping};
use crate::util::procfs::{meminfo, set_temporarily, smaps_entries};
use crate::util::sys::expect_errno;

pub fn tests() -> Vec<Test> {
    named_tests![
        designate_splits_and_rounds,
        designate_einval,
        designate_skips_holes,
        unshare_map_shared_eacces,
        designate_enomem_at_max_map_count,
        designate_kept_across_fork,
        designate_hugetlb_rounds_to_huge_pages,
        mprotect_mixed_eacces,
    ]
}

const SEED: u64 = 0x7669_6577;

/// The mappings over `[start, end)`, clipped to it, as
/// `(offset from start, length, unshared)` in pages, with neighbours of
/// equal designation coalesced (how the kernel merges them is not part of
/// the contract).
fn layout(start: usize, end: usize) -> TestResult<Vec<(usize, usize, bool)>> {
    let page = page_size();
    let mut out: Vec<(usize, usize, bool)> = Vec::new();
    for e in smaps_entries(start, end)? {
        let (s, t) = (e.start.max(start), e.end.min(end));
        let piece = ((s - start) / page, (t - s) / page, e.has_flag("vu"));
        match out.last_mut() {
            Some(last) if last.0 + last.1 == piece.0 && last.2 == piece.2 => last.1 += piece.1,
            _ => out.push(piece),
        }
    }
    Ok(out)
}

/// Page `n` of a mapping, as a pointer.
fn page_ptr(map: &Mapping, n: usize) -> *const u8 {
    (map.addr() + n * page_size()) as *const u8
}

/// UNSHARE splits at the range ends and rounds `len` up to a page; SHARE
/// undoes it piecewise; the memory is untouched throughout.
fn designate_splits_and_rounds() -> TestResult {
    let page = page_size();
    let mut map = Mapping::anon(16 * page)?;
    fill_pattern(map.as_mut_slice(), SEED);
    let (s, e) = (map.addr(), map.addr() + map.len());

    mmview::unshare(page_ptr(&map, 4), 4 * page).context("MMVIEW_UNSHARE of pages 4-7")?;
    ensure_eq!(
        layout(s, e)?,
        vec![(0, 4, false), (4, 4, true), (8, 8, false)],
        "layout after unsharing pages 4-7"
    );
    mmview::share(page_ptr(&map, 5), page).context("MMVIEW_SHARE of page 5")?;
    mmview::unshare(page_ptr(&map, 10), 1).context("MMVIEW_UNSHARE of 1 byte at page 10")?;
    ensure_eq!(
        layout(s, e)?,
        vec![
            (0, 4, false),
            (4, 1, true),
            (5, 1, false),
            (6, 2, true),
            (8, 2, false),
            (10, 1, true),
            (11, 5, false)
        ],
        "layout after sharing page 5 and unsharing page 10"
    );
    // Designating again what is designated already changes nothing.
    mmview::unshare(page_ptr(&map, 6), 2 * page).context("MMVIEW_UNSHARE again")?;
    mmview::share(map.as_ptr(), map.len()).context("MMVIEW_SHARE of everything")?;
    ensure_eq!(
        layout(s, e)?,
        vec![(0, 16, false)],
        "layout after sharing all"
    );
    verify_pattern(map.as_slice(), SEED).context("the memory after the designations")
}

/// Bad ranges are EINVAL and change nothing.
fn designate_einval() -> TestResult {
    let page = page_size();
    let map = Mapping::anon(4 * page)?;
    let hole = Mapping::anon(page)?;
    let hole_addr = hole.as_ptr() as *const u8;
    drop(hole);
    let kernel_half = 0xffff_8000_0000_0000usize as *const u8;
    let top_page = (usize::MAX - page + 1) as *const u8;
    for (name, call) in [
        (
            "UNSHARE",
            mmview::unshare::<u8> as fn(*const u8, usize) -> mmview::Result<()>,
        ),
        ("SHARE", mmview::share::<u8>),
    ] {
        check_all([
            expect_errno(
                call(page_ptr(&map, 0).wrapping_add(1), page),
                libc::EINVAL,
                &format!("{name}(unaligned address)"),
            ),
            expect_errno(
                call(map.as_ptr(), 0),
                libc::EINVAL,
                &format!("{name}(len 0)"),
            ),
            expect_errno(
                call(top_page, 2 * page),
                libc::EINVAL,
                &format!("{name}(range wrapping around)"),
            ),
            expect_errno(
                call(map.as_ptr(), usize::MAX),
                libc::EINVAL,
                &format!("{name}(len rounding past the end)"),
            ),
            expect_errno(
                call(kernel_half, page),
                libc::EINVAL,
                &format!("{name}(kernel address)"),
            ),
            expect_errno(
                call(hole_addr, page),
                libc::EINVAL,
                &format!("{name}(no mapping in the range)"),
            ),
        ])?;
    }
    ensure_eq!(
        layout(map.addr(), map.addr() + map.len())?,
        vec![(0, 4, false)],
        "layout after the refused calls"
    );
    Ok(())
}

/// Holes inside the range are skipped.
fn designate_skips_holes() -> TestResult {
    let page = page_size();
    let map = Mapping::anon(5 * page)?;
    map.munmap_part(2 * page, page)?;
    mmview::unshare(map.as_ptr(), 5 * page).context("MMVIEW_UNSHARE across a hole")?;
    ensure_eq!(
        layout(map.addr(), map.addr() + map.len())?,
        vec![(0, 2, true), (3, 2, true)],
        "layout after unsharing across the hole"
    );
    Ok(())
}

/// MAP_SHARED mappings cannot be unshared (EACCES), not even in part of a
/// range, and nothing changes; sharing them is a no-op.
fn unshare_map_shared_eacces() -> TestResult {
    let page = page_size();
    let shared = Mapping::new(
        4 * page,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED | libc::MAP_ANONYMOUS,
    )?;
    expect_errno(
        mmview::unshare(shared.as_ptr(), 4 * page),
        libc::EACCES,
        "UNSHARE(MAP_SHARED)",
    )?;
    mmview::share(shared.as_ptr(), 4 * page).context("MMVIEW_SHARE of MAP_SHARED")?;

    // Private pages 0-1, shared pages 2-3.
    let map = Mapping::anon(4 * page)?;
    map.remap_fixed(
        2 * page,
        2 * page,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED | libc::MAP_ANONYMOUS,
    )?;
    expect_errno(
        mmview::unshare(map.as_ptr(), 4 * page),
        libc::EACCES,
        "UNSHARE(private + MAP_SHARED)",
    )?;
    let end = map.addr() + map.len();
    ensure_eq!(
        layout(map.addr(), end)?,
        vec![(0, 4, false)],
        "layout after the refusal"
    );
    mmview::unshare(map.as_ptr(), 2 * page).context("MMVIEW_UNSHARE of the private part")?;
    ensure_eq!(
        layout(map.addr(), end)?,
        vec![(0, 2, true), (2, 2, false)],
        "layout"
    );
    Ok(())
}

/// When the splits would exceed vm.max_map_count: ENOMEM, nothing changed.
fn designate_enomem_at_max_map_count() -> TestResult {
    let page = page_size();
    let map = Mapping::anon(8 * page)?;
    let count = std::fs::read_to_string("/proc/self/maps")
        .context("reading /proc/self/maps")?
        .lines()
        .count();
    {
        // One split would fit, the two that the middle of a mapping needs not.
        let _limit = set_temporarily("/proc/sys/vm/max_map_count", &(count + 1).to_string())?;
        let got = mmview::unshare(page_ptr(&map, 3), 2 * page);
        expect_errno(got, libc::ENOMEM, "UNSHARE needing two splits at the limit")?;
    }
    let end = map.addr() + map.len();
    ensure_eq!(
        layout(map.addr(), end)?,
        vec![(0, 8, false)],
        "layout after ENOMEM"
    );
    mmview::unshare(page_ptr(&map, 3), 2 * page).context("the same UNSHARE below the limit")?;
    ensure_eq!(
        layout(map.addr(), end)?,
        vec![(0, 3, false), (3, 2, true), (5, 3, false)],
        "layout"
    );
    Ok(())
}

/// The designation is kept across fork().
fn designate_kept_across_fork() -> TestResult {
    let page = page_size();
    let mut map = Mapping::anon(4 * page)?;
    fill_pattern(map.as_mut_slice(), SEED);
    mmview::unshare(page_ptr(&map, 1), 2 * page).context("MMVIEW_UNSHARE")?;
    let want = vec![(0, 1, false), (1, 2, true), (3, 1, false)];
    let end = map.addr() + map.len();
    // SAFETY: the test child is single-threaded; the forked child only reads
    // its memory and /proc, then leaves with _exit().
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        fail!("fork: {}", io::Error::last_os_error());
    }
    if pid == 0 {
        let ok = layout(map.addr(), end).is_ok_and(|l| l == want)
            && verify_pattern(map.as_slice(), SEED).is_ok();
        // SAFETY: ends the forked child at once.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        fail!("waitpid: {}", io::Error::last_os_error());
    }
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child did not see the designation and data (status {status:#x})"
    );
    ensure_eq!(layout(map.addr(), end)?, want, "layout in the parent");
    Ok(())
}

/// In a hugetlb mapping the range end is rounded up to the huge page size,
/// and a start inside a huge page is EINVAL.
fn designate_hugetlb_rounds_to_huge_pages() -> TestResult {
    let page = page_size();
    let huge = usize::try_from(meminfo("Hugepagesize")?).context("Hugepagesize")? * 1024;
    let _pages = set_temporarily("/proc/sys/vm/nr_hugepages", "4")?;
    let mut map = Mapping::new(
        2 * huge,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
    )?;
    fill_pattern(map.as_mut_slice(), SEED);
    let end = map.addr() + map.len();
    let in_huge = huge / page;
    expect_errno(
        mmview::unshare(page_ptr(&map, 1), page),
        libc::EINVAL,
        "UNSHARE starting inside a huge page",
    )?;
    mmview::unshare(map.as_ptr(), page).context("MMVIEW_UNSHARE of one small page")?;
    ensure_eq!(
        layout(map.addr(), end)?,
        vec![(0, in_huge, true), (in_huge, in_huge, false)],
        "layout: the first huge page is unshared"
    );
    verify_pattern(map.as_slice(), SEED).context("the huge pages")
}

/// mprotect() over a range that mixes shared and unshared mappings fails
/// with EACCES and changes nothing; within one designation it works.
fn mprotect_mixed_eacces() -> TestResult {
    let page = page_size();
    let mut map = Mapping::anon(8 * page)?;
    fill_pattern(map.as_mut_slice(), SEED);
    mmview::unshare(page_ptr(&map, 4), 4 * page).context("MMVIEW_UNSHARE of pages 4-7")?;
    let writable = |from: usize, to: usize| -> TestResult<bool> {
        let entries = smaps_entries(map.addr() + from * page, map.addr() + to * page)?;
        Ok(entries.iter().all(|e| e.has_flag("wr")))
    };
    let mprotect = |from: usize, pages: usize, prot: libc::c_int| -> io::Result<()> {
        // SAFETY: changes the protection of our own mapping only.
        match unsafe { libc::mprotect(page_ptr(&map, from) as *mut _, pages * page, prot) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    };
    match mprotect(2, 4, libc::PROT_READ) {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {}
        other => fail!("mprotect of pages 2-5 (mixed): expected EACCES, got {other:?}"),
    }
    ensure!(writable(0, 8)?, "the refused mprotect changed a protection");
    mprotect(4, 4, libc::PROT_READ).context("mprotect of the unshared pages 4-7")?;
    mprotect(0, 4, libc::PROT_READ).context("mprotect of the shared pages 0-3")?;
    ensure!(!writable(0, 8)?, "pages still writable after mprotect");
    verify_pattern(map.as_slice(), SEED).context("the memory after mprotect")
}
