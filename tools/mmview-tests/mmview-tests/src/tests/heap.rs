//! The heap and locked memory with views: a `brk()` that makes a new
//! mapping (one that cannot merge with the heap's top) works in every view,
//! in forks from a view and across `MMVIEW_SWITCH_BASE`; a break moved
//! within a page is the same in every view; mapping and unmapping locked
//! memory leaves every view's `VmLck` as it was.
//!
//! The tests follow the memory rule of [`crate::util::view`]: every mapping
//! and thread is made before the first `MMVIEW_CREATE` (the heap grown
//! while views exist is only touched through [`Region`]); `prepare` keeps
//! malloc from moving the break, so the tests own it.

use super::named_tests;
use crate::check::{
    check_all, check_eq, diag, ensure, ensure_eq, fail, Context, Failure, TestResult,
};
use crate::framework::Test;
use crate::util::child;
use crate::util::fault::{describe_fault_exit, exit_on_fault, stage, StageLog};
use crate::util::mem::{align_up, page_size};
use crate::util::process::fork;
use crate::util::procfs::{parse_fields, read_file, task_maps_entries, thread_smaps_entries};
use crate::util::sys::{errno_name, gettid, mmap_anon, mprotect, sys, unlimit, ErrnoContext};
use crate::util::view::{prepare, threads_in_new_views, Region};

pub fn tests() -> Vec<Test> {
    named_tests![
        heap_brk_new_mapping_in_view,
        heap_sbrk_small_break_same,
        heap_locked_vm_no_underflow,
        heap_growth_keeps_mapping_count,
    ]
}

/// The raw `brk(addr)` system call: the break afterwards (the old one if
/// the move was refused). `brk(0)` reads it.
fn raw_brk(addr: usize) -> usize {
    // SAFETY: moves the calling view's break; the tests move it only above
    // malloc's heap, which prepare() keeps malloc from growing or trimming.
    unsafe { libc::syscall(libc::SYS_brk, addr) as usize }
}

/// Moves the break to `to` with the raw system call; fails unless it moved.
fn move_break(to: usize) -> TestResult {
    let got = raw_brk(to);
    ensure!(got == to, "brk({to:#x}) left the break at {got:#x}");
    Ok(())
}

/// `mprotect(addr, len, prot)`.
fn protect(addr: usize, len: usize, prot: libc::c_int) -> TestResult {
    // SAFETY: changes the protection of the heap above malloc's, which the
    // test reads only.
    unsafe { mprotect(addr, len, prot) }
        .with_errno_context(|| format!("mprotect({addr:#x}, {len:#x}, {prot})"))
}

/// The start of the mapping that contains `addr` in the calling thread's
/// view.
fn mapping_start(addr: usize) -> TestResult<usize> {
    let entries = thread_smaps_entries(addr, addr + 1)?;
    let entry = entries
        .first()
        .with_context(|| format!("no mapping at {addr:#x} in /proc/thread-self/smaps"))?;
    Ok(entry.start)
}

/// Seeds of [`brk_new_mapping`]'s heap: the first growth (from the base)
/// and the second (from view 1), by quarter.
const H0: u64 = 0x4ea0;
const H1: u64 = 0x4ea1;
const H2: u64 = 0x4ea2;
const H3: u64 = 0x4ea3;

/// Checks the heap of [`brk_new_mapping`]: the first growth `first`
/// (quarters H0, H1, H2, then zeros) and, when given, the second growth
/// `second` (H3).
fn verify_heap(first: &Region, second: Option<&Region>) -> TestResult {
    let q = first.len() / 4;
    first.verify(0, q, H0).context("new heap, quarter 0")?;
    first.verify(q, q, H1).context("new heap, quarter 1")?;
    first.verify(2 * q, q, H2).context("new heap, quarter 2")?;
    first
        .verify_zero(3 * q, q)
        .context("new heap, quarter 3 (never written)")?;
    if let Some(second) = second {
        second
            .verify_all(H3)
            .context("second new heap mapping (grown in view 1)")?;
    }
    Ok(())
}

/// The child of [`heap_brk_new_mapping_in_view`]. Returns 0.
fn brk_new_mapping() -> TestResult<u8> {
    prepare()?;
    let page = page_size();
    // A read-only page on top of the heap: growth beyond it cannot merge
    // with it and makes a new mapping.
    let start = raw_brk(0);
    let guard = align_up(start, page);
    move_break(guard + page)?;
    protect(guard, page, libc::PROT_READ)?;
    // SAFETY: the memory rule.
    let [(a, v1), (b, v2)] = unsafe { threads_in_new_views()? };

    // Growth from the base.
    let len = 32 * page;
    let heap_start = guard + page;
    move_break(heap_start + len).context("growing the heap in the base")?;
    let heap = Region::at(heap_start, len);
    let second_start = heap_start + len + page;
    let second_len = 8 * page;
    exit_on_fault(heap_start, second_start + second_len)?;
    ensure_eq!(
        mapping_start(heap_start)?,
        heap_start,
        "start of the base's mapping of the new heap (setup: it should not merge with the \
         read-only page below)"
    );
    let q = len / 4;
    stage("the base writing the heap it grew");
    heap.fill(0, q, H0);
    stage("view 1: first touch of the heap the base grew");
    a.run(|| {
        ensure_eq!(
            mapping_start(heap_start)?,
            heap_start,
            "start of view 1's mapping of the new heap"
        );
        heap.verify(0, q, H0)
            .context("the base's data in the new heap")?;
        heap.fill(q, q, H1);
        Ok(())
    })
    .context("view 1, first touch of the heap the base grew")?;
    stage("view 2: first touch of the heap the base grew");
    b.run(|| {
        heap.verify_zero(2 * q, q)
            .context("never written heap pages")?;
        heap.verify(0, q, H0)?;
        heap.verify(q, q, H1)
    })
    .context("view 2, first touch of the heap the base grew")?;
    stage("the base writing heap pages view 2 had read");
    heap.fill(2 * q, q, H2);
    stage("view 2 reading heap pages the base wrote after it had read them");
    b.run(|| verify_heap(&heap, None))
        .context("view 2, after the base wrote pages it had read")?;

    // Growth from view 1, again not mergeable with the top page.
    stage("view 1 growing the heap and writing the new mapping");
    a.run(|| {
        move_break(second_start)?;
        protect(heap_start + len, page, libc::PROT_READ)?;
        move_break(second_start + second_len)?;
        ensure_eq!(
            mapping_start(second_start)?,
            second_start,
            "start of view 1's mapping of the heap it grew"
        );
        Region::at(second_start, second_len).fill_all(H3);
        Ok(())
    })
    .context("view 1 growing the heap")?;
    let second = Region::at(second_start, second_len);
    stage("every member reading both new heap mappings");
    check_all([
        verify_heap(&heap, Some(&second)).context("the base"),
        a.run(|| verify_heap(&heap, Some(&second)))
            .context("view 1"),
        b.run(|| verify_heap(&heap, Some(&second)))
            .context("view 2"),
    ])?;

    // fork() from view 2.
    stage("a child forked in view 2 reading the heap");
    b.run(|| {
        // SAFETY: the child only reads memory through Region (no
        // allocation, no lock).
        let child = unsafe {
            fork(|| {
                let q = heap.len() / 4;
                let ok = heap.matches(0, q, H0)
                    && heap.matches(q, q, H1)
                    && heap.matches(2 * q, q, H2)
                    && second.matches(0, second.len(), H3);
                if ok {
                    0
                } else {
                    1
                }
            })
        }?;
        child.expect_success("a child forked in view 2", |code| match code {
            1 => "the child's heap does not hold the data of view 2".to_string(),
            code => describe_fault_exit(code as u8).map_or_else(
                || format!("exit status {code}"),
                |f| format!("the child got {f}"),
            ),
        })
    })
    .context("fork() in view 2")?;

    // SWITCH_BASE from view 2.
    stage("MMVIEW_SWITCH_BASE from view 2, then every member using the heap");
    let got = b
        .run(|| mmview::switch_base().context("MMVIEW_SWITCH_BASE"))
        .context("view 2")?;
    ensure_eq!(got, v2, "MMVIEW_SWITCH_BASE in view 2");
    heap.fill(3 * q, q, H0 ^ H3);
    let after_switch = || -> TestResult {
        heap.verify(3 * q, q, H0 ^ H3)
            .context("quarter 3, written by the old base after the switch")?;
        let first_three = Region::at(heap_start, 3 * q);
        first_three.verify(0, q, H0)?;
        first_three.verify(q, q, H1)?;
        first_three.verify(2 * q, q, H2)?;
        second.verify_all(H3)
    };
    check_all([
        after_switch().context("the old base"),
        a.run(after_switch).context("view 1"),
        b.run(after_switch).context("view 2, the new base"),
    ])?;
    diag!("views {v1} and {v2}; the new heap mappings at {heap_start:#x} and {second_start:#x}");
    Ok(0)
}

/// brk() makes a new mapping while views exist (the heap's top page is
/// read-only, so the growth cannot merge with it), from the base and from
/// a view: threads in views touch the new pages without a fault (SIGBUS or
/// SIGSEGV end the child, which runs the test) and read what the others
/// wrote; a child forked in a view has the heap's data; SWITCH_BASE from a
/// view works and keeps the heap shared.
fn heap_brk_new_mapping_in_view() -> TestResult {
    let log = StageLog::new()?;
    let with_views = || {
        log.install();
        brk_new_mapping()
    };
    // SAFETY: the test child is single-threaded.
    let code = unsafe { child::run("the child with views", with_views) }?;
    ensure!(
        code == 0,
        "the child with views exited with status {code} ({}) during: {}",
        describe_fault_exit(code).unwrap_or("not a fault"),
        log.reported()
            .unwrap_or_else(|| "(no step reported)".to_string())
    );
    Ok(())
}

/// brk() moves of less than a page (within the heap's last page), and
/// moves across a page boundary, by the base and by a view: after each,
/// brk(0) returns the same break in the base and in the view.
fn heap_sbrk_small_break_same() -> TestResult {
    prepare()?;
    let page = page_size();
    // SAFETY: the memory rule.
    let [(a, _)] = unsafe { threads_in_new_views()? };
    let start = raw_brk(0);
    let mut steps: Vec<(&str, bool, usize)> = Vec::new();
    if !start.is_multiple_of(page) && start + 64 < align_up(start, page) {
        steps.push((
            "base: +64 bytes within the heap's last page",
            false,
            start + 64,
        ));
    }
    let next = align_up(start, page) + 64;
    steps.extend([
        ("base: into a new page", false, next),
        ("base: +256 bytes within that page", false, next + 256),
        ("view 1: +256 bytes within the page", true, next + 512),
        ("base: -128 bytes within the page", false, next + 384),
        ("view 1: -8 bytes within the page", true, next + 376),
        ("view 1: back to the start", true, start),
    ]);
    let mut wrong = Vec::new();
    for (what, in_view, to) in steps {
        if in_view {
            a.run(|| move_break(to)).context(what)?;
        } else {
            move_break(to).context(what)?;
        }
        let base = raw_brk(0);
        let view = a.run(|| Ok(raw_brk(0)))?;
        if base != to || view != to {
            let line = format!(
                "after {what} (to {to:#x}): brk(0) is {base:#x} in the base, {view:#x} in view 1"
            );
            diag!("{line}");
            wrong.push(line);
        }
    }
    // Whatever happened, the base's break goes back where malloc left it.
    let _ = raw_brk(start);
    match wrong.first() {
        None => Ok(()),
        Some(first) => fail!(
            "the break differs between the base and view 1 after {} of the moves; first {first}",
            wrong.len()
        ),
    }
}

/// `VmLck` of thread `tid` of this process, in kB (its view's locked_vm).
fn vm_lck(tid: libc::pid_t) -> TestResult<u64> {
    let path = format!("/proc/self/task/{tid}/status");
    parse_fields(&read_file(&path)?)
        .get("VmLck")
        .copied()
        .with_context(|| format!("no VmLck in {path}"))
}

/// `mmap` of `len` bytes of private anonymous memory, locked if `locked`.
fn map(len: usize, locked: bool) -> TestResult<usize> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | if locked { libc::MAP_LOCKED } else { 0 };
    mmap_anon(len, libc::PROT_READ | libc::PROT_WRITE, flags)
        .with_errno_context(|| format!("mmap of {len} bytes (locked: {locked})"))
}

/// `munmap(addr, len)` of a mapping [`map`] made.
fn unmap(addr: usize, len: usize) -> TestResult {
    // SAFETY: the mapping was made by `map` and nothing references it.
    sys(unsafe { libc::munmap(addr as *mut libc::c_void, len) })
        .errno_context("munmap")
        .map(drop)
}

/// `mlock(addr, len)`.
fn lock(addr: usize, len: usize) -> TestResult {
    // SAFETY: locks our own mapping.
    sys(unsafe { libc::mlock(addr as *const libc::c_void, len) })
        .errno_context("mlock")
        .map(drop)
}

/// Locked memory mapped and unmapped while views exist (MAP_LOCKED in the
/// base, unmapped in the base; MAP_LOCKED in view 1, unmapped in view 2;
/// mlock() in view 1 of a mapping the base made and then unmaps): every
/// view's VmLck (in /proc/self/task/<tid>/status of a thread in it) is
/// afterwards what it was before, not an underflowed huge number; the
/// base's VmLck rises by the size of the mapping it locked.
fn heap_locked_vm_no_underflow() -> TestResult {
    prepare()?;
    if let Err(e) = unlimit(libc::RLIMIT_MEMLOCK) {
        diag!("setrlimit(RLIMIT_MEMLOCK, unlimited): {}", errno_name(e));
    }
    let len = 64 * page_size();
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    let threads = [
        ("the base", gettid()),
        ("view 1", a.tid()),
        ("view 2", b.tid()),
    ];
    let read_all = || -> TestResult<Vec<u64>> { threads.iter().map(|&(_, t)| vm_lck(t)).collect() };
    let before = read_all()?;
    diag!("VmLck (kB) of the base, view 1, view 2 before: {before:?}");
    let mut results = Vec::new();
    let compare = |what: &str| -> TestResult {
        let after = read_all()?;
        check_all(threads.iter().zip(before.iter().zip(&after)).map(
            |(&(name, _), (&was, &now))| {
                ensure!(
                    now == was,
                    "VmLck of {name} after {what}: {now} kB, was {was} kB{}",
                    if now > 1 << 40 { " (underflowed)" } else { "" }
                );
                Ok(())
            },
        ))
    };

    // MAP_LOCKED in the base, unmapped in the base.
    let addr = map(len, true)?;
    let during = read_all()?;
    diag!("VmLck during the base's MAP_LOCKED mapping: {during:?}");
    let rise = (len / 1024) as u64;
    if during[0] != before[0] + rise {
        results.push(Err(Failure::new(format!(
            "VmLck of the base with a {rise} kB MAP_LOCKED mapping it made: {} kB, expected {} kB",
            during[0],
            before[0] + rise
        ))));
    }
    unmap(addr, len)?;
    results.push(compare("the base unmapped its MAP_LOCKED mapping"));

    // MAP_LOCKED in view 1, unmapped in view 2.
    let addr = a.run(|| map(len, true)).context("view 1")?;
    diag!(
        "VmLck during view 1's MAP_LOCKED mapping: {:?}",
        read_all()?
    );
    b.run(|| unmap(addr, len)).context("view 2")?;
    results.push(compare("view 2 unmapped view 1's MAP_LOCKED mapping"));

    // mlock in view 1 of the base's mapping, unmapped by the base.
    let addr = map(len, false)?;
    a.run(|| lock(addr, len)).context("view 1")?;
    diag!("VmLck after view 1's mlock: {:?}", read_all()?);
    unmap(addr, len)?;
    results.push(compare("the base unmapped a mapping view 1 had locked"));
    check_all(results)
}

/// A heap grown step by step by `brk()` while views exist is one mapping
/// in every view, as in the base (each view's copy of the growth extends
/// its heap mapping): views must not collect a mapping per step (and hit
/// `vm.max_map_count` long before the base).
fn heap_growth_keeps_mapping_count() -> TestResult {
    prepare()?;
    let page = page_size();
    // SAFETY: the memory rule (the heap above malloc's is only touched
    // through the raw pointers below, after every growth is replicated).
    let [(a, _)] = unsafe { threads_in_new_views()? };
    let start = raw_brk(0);
    let lo = align_up(start, page);
    let steps = 128;
    let step = 4 * page;
    let mut checks = Vec::new();
    for i in 1..=steps {
        move_break(lo + i * step).context("growing the heap from the base")?;
    }
    let hi = lo + steps * step;
    // SAFETY: [lo, hi) is the heap just grown, mapped in every view.
    unsafe { std::ptr::write_bytes(lo as *mut u8, 0x5a, hi - lo) };
    let base_maps = task_maps_entries(gettid(), lo, hi)?.len();
    let view_maps = task_maps_entries(a.tid(), lo, hi)?.len();
    diag!("mappings over the grown heap: base {base_maps}, view 1 {view_maps}");
    checks.push(check_eq(
        view_maps,
        base_maps,
        "view 1's mappings over the heap grown in 128 steps",
    ));
    let seen = a.run(move || {
        // SAFETY: as above; read in view 1.
        let bytes = unsafe { std::slice::from_raw_parts(lo as *const u8, hi - lo) };
        Ok(bytes.iter().filter(|&&b| b != 0x5a).count())
    })?;
    checks.push(check_eq(seen, 0, "bytes of the heap view 1 reads wrong"));
    move_break(start).context("shrinking the heap back")?;
    check_all(checks)
}
