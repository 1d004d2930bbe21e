//! The layout invariant under stress: `madvise(MADV_DONTNEED)`/`MADV_FREE`
//! of a shared range leaves no view with the old data, also while threads
//! in views fault the pages in, and when a view had locked the range;
//! `mprotect` of a shared range makes stores fault in every view, and an
//! `mprotect` that fails for want of `vm.max_map_count` headroom in one
//! member changes no view.
//!
//! The tests follow the memory rule of [`crate::util::view`]: every mapping
//! and thread is made before the first `MMVIEW_CREATE`, and unshared memory
//! is only touched through [`Region`].

use std::sync::atomic::{AtomicU32, Ordering};

use mmview::ViewId;

use super::named_tests;
use crate::check::{check_all, diag, ensure, ensure_eq, fail, Context, TestResult};
use crate::framework::Test;
use crate::util::child;
use crate::util::fault::{describe_fault_exit, exit_on_fault, SEGV_WATCHED};
use crate::util::mem::{page_size, pattern_word};
use crate::util::procfs::{read_file, set_temporarily, thread_perms};
use crate::util::sys::{errno_name, last_errno, mprotect, sys, ErrnoContext};
use crate::util::view::{
    create, prepare, run_together, threads_in_new_views, Region, Rendezvous, ViewThread,
};

pub fn tests() -> Vec<Test> {
    named_tests![
        invariant_dontneed_race,
        invariant_madv_free_race,
        invariant_dontneed_locked_view,
        invariant_mprotect_readonly_view_no_write,
        invariant_mprotect_enomem_all_or_nothing,
    ]
}

const BASE: ViewId = ViewId::BASE;
const MAX_MAP_COUNT: &str = "/proc/sys/vm/max_map_count";

/// A member of the process with two views: the base (its thread is the
/// calling one) or view 1 or 2 (a [`ViewThread`] in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    Base,
    View1,
    View2,
}

const MEMBERS: [Member; 3] = [Member::Base, Member::View1, Member::View2];

impl Member {
    fn name(self) -> &'static str {
        match self {
            Member::Base => "the base",
            Member::View1 => "view 1",
            Member::View2 => "view 2",
        }
    }

    /// Runs `f` on a thread in this member (the calling thread for the
    /// base; `a` and `b` are in views 1 and 2).
    fn run<T: Send>(
        self,
        a: &ViewThread,
        b: &ViewThread,
        f: impl FnOnce() -> TestResult<T> + Send,
    ) -> TestResult<T> {
        let result = match self {
            Member::Base => f(),
            Member::View1 => a.run(f),
            Member::View2 => b.run(f),
        };
        result.with_context(|| self.name())
    }
}

/// `mprotect(addr, len, prot)` of the tests' own mappings; the errno.
fn protect(addr: usize, len: usize, prot: libc::c_int) -> Result<(), i32> {
    // SAFETY: the tests touch the range only in ways the new protection
    // allows (or expect the fault).
    unsafe { mprotect(addr, len, prot) }
}

/// The calling thread's view's count of mappings (its mm's map_count):
/// the lines of /proc/thread-self/maps but the x86 vsyscall page, which is
/// no mapping of the mm.
fn thread_map_count() -> TestResult<usize> {
    Ok(read_file("/proc/thread-self/maps")?
        .lines()
        .filter(|line| !line.ends_with("[vsyscall]"))
        .count())
}

/// Rounds of [`dontneed_race`].
const RACE_ROUNDS: u64 = 20;
/// Pages of the range [`dontneed_race`] drops.
const RACE_PAGES: usize = 512;
/// Views with a thread reading the range in [`dontneed_race`].
const RACE_VIEWS: usize = 3;

/// What one view (or the base) saw of the range after a round.
struct Seen {
    /// Pages without the round's data.
    wrong: usize,
    /// Of those, pages with the previous round's data.
    old: usize,
    /// Of those, pages of zeros.
    zero: usize,
    /// The first wrong page.
    first: Option<usize>,
}

/// Compares each page of `region` with the pattern `seed` (`old` is the
/// previous round's).
fn pages_seen(region: &Region, seed: u64, old: u64) -> Seen {
    let page = page_size();
    let mut seen = Seen {
        wrong: 0,
        old: 0,
        zero: 0,
        first: None,
    };
    for p in 0..region.len() / page {
        let offset = p * page;
        if region.matches(offset, page, seed) {
            continue;
        }
        seen.wrong += 1;
        seen.first.get_or_insert(p);
        if region.matches(offset, page, old) {
            seen.old += 1;
        } else if region.verify_zero(offset, page).is_ok() {
            seen.zero += 1;
        }
    }
    seen
}

/// Rounds of: threads in three views read every page of a 512-page shared
/// range in a loop while a thread in the base drops the range with
/// `advice` and writes new data into every page; then (readers stopped)
/// every view and the base must read exactly the new data in every page.
fn dontneed_race(advice: libc::c_int, name: &str) -> TestResult {
    const SEED: u64 = 0x1d00;
    prepare()?;
    let page = page_size();
    let region = Region::anon(RACE_PAGES * page)?;
    region.fill_all(SEED);
    let writer = ViewThread::spawn("writer-in-base")?;
    let readers = ViewThread::spawn_many("reader", RACE_VIEWS)?;
    for (i, reader) in readers.iter().enumerate() {
        // The readers yield the CPU to the writer (they outnumber the CPUs
        // of the test machine), and race it from the other CPUs.
        // SAFETY: plain system call on a thread of this process.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, reader.tid() as libc::id_t, 10) } != 0 {
            diag!("setpriority of reader {i}: {}", errno_name(last_errno()));
        }
        let view = create(&format!("view {}", i + 1))?;
        // SAFETY: the memory rule (the test has no unshared memory).
        unsafe { reader.migrate_from(view, BASE)? };
    }
    let readers: Vec<&ViewThread> = readers.iter().collect();
    let mut everyone = readers.clone();
    everyone.push(&writer);
    let stop = AtomicU32::new(0);
    let mut stale = Vec::new();
    let mut checks = 0;
    for round in 1..=RACE_ROUNDS {
        let (seed, old) = (SEED + round, SEED + round - 1);
        stop.store(0, Ordering::Release);
        let start = Rendezvous::new(everyone.len());
        let passes = run_together(&everyone, |i| {
            start.wait();
            if i < RACE_VIEWS {
                let mut passes = 0u64;
                loop {
                    std::hint::black_box(region.read_pages(0, region.len()));
                    passes += 1;
                    if stop.load(Ordering::Acquire) != 0 {
                        return Ok(passes);
                    }
                }
            }
            let dropped = region.madvise(0, region.len(), advice);
            if dropped.is_ok() {
                region.fill_all(seed);
            }
            stop.store(1, Ordering::Release);
            dropped
                .map(|()| 0)
                .with_errno_context(|| format!("madvise({name})"))
        })
        .with_context(|| format!("round {round}"))?;
        let mut seen: Vec<(String, Seen)> = run_together(&readers, |i| {
            Ok((format!("view {}", i + 1), pages_seen(&region, seed, old)))
        })?;
        seen.push(("the base".to_string(), pages_seen(&region, seed, old)));
        for (who, s) in seen {
            checks += 1;
            if s.wrong > 0 {
                let line = format!(
                    "round {round}: {who}: {} of {RACE_PAGES} pages without the new data ({} with \
                     the previous round's, {} zero; first: page {})",
                    s.wrong,
                    s.old,
                    s.zero,
                    s.first.unwrap_or(0)
                );
                diag!("{line}");
                stale.push(line);
            }
        }
        if round == 1 {
            diag!(
                "round 1: read passes of the views' threads during the drop: {:?}",
                &passes[..RACE_VIEWS]
            );
        }
    }
    match stale.first() {
        None => Ok(()),
        Some(first) => fail!(
            "{name} of a shared range while views fault it in: {} of {checks} checks found \
             pages without the data written after it; first: {first}",
            stale.len()
        ),
    }
}

/// MADV_DONTNEED of a shared range while threads in three views keep
/// reading it: afterwards every view reads exactly the base's new data in
/// every page (no view keeps an old page).
fn invariant_dontneed_race() -> TestResult {
    dontneed_race(libc::MADV_DONTNEED, "MADV_DONTNEED")
}

/// As [`invariant_dontneed_race`] with MADV_FREE (which, in a process with
/// views, drops the pages like MADV_DONTNEED; either way the data written
/// afterwards is what every view must read).
fn invariant_madv_free_race() -> TestResult {
    dontneed_race(libc::MADV_FREE, "MADV_FREE")
}

/// Checks `region` against `seed` (or zeros, for `None`) in the base and in
/// views 1 and 2; `when` describes the moment.
fn expect_everywhere(
    region: &Region,
    a: &ViewThread,
    b: &ViewThread,
    seed: Option<u64>,
    when: &str,
) -> TestResult {
    let check = || match seed {
        Some(seed) => region.verify_all(seed),
        None => region.verify_zero(0, region.len()),
    };
    check_all([
        check().with_context(|| format!("the base {when}")),
        a.run(check)
            .with_context(|| format!("view 1 (which locked the range) {when}")),
        b.run(check).with_context(|| format!("view 2 {when}")),
    ])
}

/// A view mlock()s a shared range; the base then drops it with
/// MADV_DONTNEED and writes new data. Either the lock holds in every view
/// (mlock acts as without views) and the advice fails with EINVAL, the old
/// data intact everywhere, or it succeeds and every view reads zeros, then
/// the new data. After munlock in the view, MADV_DONTNEED from the base
/// works and every view reads the data written afterwards.
fn invariant_dontneed_locked_view() -> TestResult {
    const S0: u64 = 0x10c0;
    const S1: u64 = 0x10c1;
    const S2: u64 = 0x10c2;
    prepare()?;
    let page = page_size();
    let region = Region::anon(16 * page)?;
    region.fill_all(S0);
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    b.run(|| region.verify_all(S0))
        .context("view 2 before the lock")?;
    a.run(|| {
        // SAFETY: locks our own mapping; root may lock any amount.
        sys(unsafe { libc::mlock(region.addr() as *const libc::c_void, region.len()) })
            .errno_context("mlock")?;
        region.verify_all(S0)
    })
    .context("view 1 locking the range")?;
    match region.madvise(0, region.len(), libc::MADV_DONTNEED) {
        Err(libc::EINVAL) => {
            diag!("MADV_DONTNEED in the base of a range view 1 locked: EINVAL (the lock holds in every view)");
            expect_everywhere(&region, &a, &b, Some(S0), "after the refused MADV_DONTNEED")?;
        }
        Ok(()) => {
            diag!("MADV_DONTNEED in the base of a range view 1 locked succeeded");
            expect_everywhere(&region, &a, &b, None, "after the base's MADV_DONTNEED")?;
            region.fill_all(S1);
            expect_everywhere(&region, &a, &b, Some(S1), "after the base wrote new data")?;
        }
        Err(e) => fail!(
            "MADV_DONTNEED in the base of a range view 1 locked: {} (expected success or \
             EINVAL)",
            errno_name(e)
        ),
    }
    a.run(|| {
        // SAFETY: unlocks our own mapping.
        sys(unsafe { libc::munlock(region.addr() as *const libc::c_void, region.len()) })
            .errno_context("munlock")
            .map(drop)
    })
    .context("view 1 unlocking the range")?;
    if let Err(e) = region.madvise(0, region.len(), libc::MADV_DONTNEED) {
        fail!(
            "MADV_DONTNEED in the base after view 1's munlock (no lock anywhere): {}",
            errno_name(e)
        );
    }
    expect_everywhere(
        &region,
        &a,
        &b,
        None,
        "after MADV_DONTNEED of the unlocked range",
    )?;
    region.fill_all(S2);
    expect_everywhere(&region, &a, &b, Some(S2), "after the base wrote again")
}

/// What the member that stores into the read-only range did before the
/// `mprotect`.
#[derive(Clone, Copy, Debug)]
enum Before {
    Nothing,
    Read,
    Wrote,
}

/// One case of [`invariant_mprotect_readonly_view_no_write`].
#[derive(Clone, Copy, Debug)]
struct StoreCase {
    storer: Member,
    before: Before,
    /// Whether the storer reads the word (a read fault) before storing.
    read_first: bool,
}

const STORE_CASES: [StoreCase; 6] = [
    StoreCase {
        storer: Member::View2,
        before: Before::Nothing,
        read_first: false,
    },
    StoreCase {
        storer: Member::View2,
        before: Before::Nothing,
        read_first: true,
    },
    StoreCase {
        storer: Member::View2,
        before: Before::Read,
        read_first: true,
    },
    StoreCase {
        storer: Member::View2,
        before: Before::Wrote,
        read_first: true,
    },
    StoreCase {
        storer: Member::View1,
        before: Before::Wrote,
        read_first: true,
    },
    StoreCase {
        storer: Member::Base,
        before: Before::Wrote,
        read_first: true,
    },
];

/// The seed of the range in [`store_case`].
const RO_SEED: u64 = 0x5e90;
/// What [`store_case`] tries to store.
const RO_MARK: u64 = 0x0bad_5701_e000_0001;

/// A child of [`invariant_mprotect_readonly_view_no_write`]: two views;
/// view 1 makes a shared range read-only; every member sees `r--p`; then
/// the case's member stores into it, which must end the child with a
/// SIGSEGV at that word. Returns only if it did not.
fn store_case(case: StoreCase) -> TestResult<u8> {
    prepare()?;
    let page = page_size();
    let region = Region::anon(4 * page)?;
    region.fill_all(RO_SEED);
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    let target = page + 3 * 8;
    let want = u64::from_le_bytes(pattern_word(RO_SEED, (target / 8) as u64));
    let storer = case.storer;
    match case.before {
        Before::Nothing => {}
        Before::Read => storer.run(&a, &b, || {
            std::hint::black_box(region.read_pages(0, region.len()));
            Ok(())
        })?,
        Before::Wrote => storer.run(&a, &b, || {
            region.fill_all(RO_SEED);
            Ok(())
        })?,
    }
    a.run(|| {
        protect(region.addr(), region.len(), libc::PROT_READ).errno_context("mprotect(PROT_READ)")
    })
    .context("view 1")?;
    for member in MEMBERS {
        let perms = member.run(&a, &b, || thread_perms(region.addr() + page))?;
        ensure_eq!(
            perms.as_str(),
            "r--p",
            "{}: the shared range view 1 made read-only",
            member.name()
        );
    }
    exit_on_fault(region.addr() + target, region.addr() + target + 8)?;
    storer.run(&a, &b, || {
        if case.read_first {
            ensure_eq!(region.load(target), want, "the word read before the store");
        }
        region.store(target, RO_MARK);
        Ok(())
    })?;
    let seen = [
        Member::Base.run(&a, &b, || Ok(region.load(target)))?,
        Member::View1.run(&a, &b, || Ok(region.load(target)))?,
        Member::View2.run(&a, &b, || Ok(region.load(target)))?,
    ];
    fail!(
        "{} stored into a shared page that view 1 made read-only, without a SIGSEGV; the base, \
         view 1 and view 2 now read {:#x}, {:#x}, {:#x} there (was {want:#x})",
        storer.name(),
        seen[0],
        seen[1],
        seen[2]
    )
}

/// A child of [`invariant_mprotect_readonly_view_no_write`]: view 1
/// mprotects a shared range read-only while the base lacks the map-count
/// headroom for it; whatever permissions view 1's mapping has afterwards
/// (read-only if the call changed it there), a read and then a store in
/// view 1 must obey them: a SIGSEGV at the word (the child ends with
/// [`SEGV_WATCHED`]) if it is read-only, else the store lands and every
/// member sees it (the child returns 0).
fn store_after_enomem() -> TestResult<u8> {
    prepare()?;
    let page = page_size();
    let region = Region::anon(4 * page)?;
    region.fill_all(RO_SEED);
    let filler = Region::anon(FILLER_PAGES * page)?;
    filler.unshare()?;
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    let case = EnomemCase {
        caller: Member::View1,
        starved: Member::Base,
    };
    let result = protect_starved(case, &a, &b, &filler, region.addr() + page, 2 * page)?;
    let target = page + 3 * 8;
    let want = u64::from_le_bytes(pattern_word(RO_SEED, (target / 8) as u64));
    let perms = a.run(|| thread_perms(region.addr() + target))?;
    diag!(
        "view 1's mprotect: {}; view 1's mapping of the word: {perms}",
        result.map_or_else(errno_name, |()| "success".to_string())
    );
    let read_only = perms == "r--p";
    if read_only {
        exit_on_fault(region.addr() + target, region.addr() + target + 8)?;
    }
    a.run(|| {
        ensure_eq!(region.load(target), want, "the word read before the store");
        region.store(target, RO_MARK);
        Ok(())
    })
    .context("view 1")?;
    ensure!(
        !read_only,
        "view 1's mapping is read-only (r--p) after its mprotect ({}), yet its store went \
         through without a SIGSEGV; the base now reads {:#x} there (was {want:#x})",
        result.map_or_else(errno_name, |()| "success".to_string()),
        region.load(target)
    );
    for member in MEMBERS {
        let got = member.run(&a, &b, || Ok(region.load(target)))?;
        ensure_eq!(
            got,
            RO_MARK,
            "{}: the word view 1 stored into its writable mapping",
            member.name()
        );
    }
    Ok(0)
}

/// mprotect(PROT_READ) of a shared range from a view makes it read-only in
/// every view: a store by any member faults (SIGSEGV at the word) and
/// changes nothing, whether the member had not touched the page, had read
/// it or had written it before, and whether it reads the word first (a
/// read fault in a view must not hand out a writable mapping). And a view
/// whose own mapping is read-only cannot store through it even when the
/// base's is writable (left so by an mprotect from the view that failed
/// for want of vm.max_map_count headroom in the base): if view 1's
/// mapping reads `r--p` its store faults, else the store lands. Each case
/// runs in a child of its own, which sets everything up itself.
fn invariant_mprotect_readonly_view_no_write() -> TestResult {
    let mut results = Vec::new();
    for case in STORE_CASES {
        let what = format!(
            "{} storing (before the mprotect it {}; {})",
            case.storer.name(),
            match case.before {
                Before::Nothing => "had not touched the page",
                Before::Read => "had read the page",
                Before::Wrote => "had written the page",
            },
            if case.read_first {
                "reads the word first"
            } else {
                "stores at once"
            }
        );
        // SAFETY: the test child is single-threaded.
        let code = unsafe { child::run(&what, || store_case(case)) };
        results.push(code.and_then(|code| {
            ensure!(
                code == SEGV_WATCHED,
                "{what}: the child exited with status {code} ({}), expected a SIGSEGV at the word",
                describe_fault_exit(code).unwrap_or("not a fault")
            );
            Ok(())
        }));
    }
    let what = "view 1 storing after its mprotect failed for want of headroom in the base";
    // SAFETY: the test child is single-threaded.
    let code = unsafe { child::run(what, store_after_enomem) };
    results.push(code.and_then(|code| {
        ensure!(
            code == 0 || code == SEGV_WATCHED,
            "{what}: the child exited with status {code} ({})",
            describe_fault_exit(code).unwrap_or("not a fault")
        );
        Ok(())
    }));
    check_all(results)
}

/// One case of [`invariant_mprotect_enomem_all_or_nothing`]: who calls
/// mprotect, and which member lacks the map-count headroom for its splits.
#[derive(Clone, Copy, Debug)]
struct EnomemCase {
    caller: Member,
    starved: Member,
}

const ENOMEM_CASES: [EnomemCase; 3] = [
    EnomemCase {
        caller: Member::Base,
        starved: Member::View2,
    },
    EnomemCase {
        caller: Member::View1,
        starved: Member::View2,
    },
    EnomemCase {
        caller: Member::View1,
        starved: Member::Base,
    },
];

/// Pages of the unshared range whose every other page the starved member
/// makes read-only (in its own view only), to raise its map count.
const FILLER_PAGES: usize = 48;

/// Makes `case.starved` lack map-count headroom (every other page of the
/// unshared `filler` read-only, in its view only), lowers
/// vm.max_map_count to just what the others need to split
/// `[start, start + len)` at both ends, and mprotects that range
/// `PROT_READ` from `case.caller`; puts the limit back and returns what
/// mprotect returned.
fn protect_starved(
    case: EnomemCase,
    a: &ViewThread,
    b: &ViewThread,
    filler: &Region,
    start: usize,
    len: usize,
) -> TestResult<Result<(), i32>> {
    let page = page_size();
    case.starved.run(a, b, || {
        for p in (1..filler.len() / page).step_by(2) {
            protect(filler.addr() + p * page, page, libc::PROT_READ).with_errno_context(|| {
                format!("mprotect(PROT_READ) of page {p} of an unshared range")
            })?;
        }
        Ok(())
    })?;
    let mut counts = [0usize; 3];
    for (count, member) in counts.iter_mut().zip(MEMBERS) {
        *count = member.run(a, b, thread_map_count)?;
    }
    let starved = counts[MEMBERS.iter().position(|&m| m == case.starved).unwrap_or(0)];
    let others = MEMBERS
        .iter()
        .zip(counts)
        .filter(|&(&m, _)| m != case.starved)
        .map(|(_, c)| c)
        .max()
        .unwrap_or(0);
    ensure!(
        starved > others + 4,
        "setup: the read-only pages of the unshared range in {} did not raise its map count \
         above the others' (base, view 1, view 2: {counts:?})",
        case.starved.name()
    );
    // The splits fit in every member but the starved one.
    let limit = others + 2;
    diag!(
        "map counts (base, view 1, view 2): {counts:?}; vm.max_map_count set to {limit}; {} \
         calls mprotect",
        case.caller.name()
    );
    let restore = set_temporarily(MAX_MAP_COUNT, &limit.to_string())?;
    let result = case
        .caller
        .run(a, b, || Ok(protect(start, len, libc::PROT_READ)))?;
    drop(restore);
    Ok(result)
}

/// A child of [`invariant_mprotect_enomem_all_or_nothing`]. Returns 0.
fn enomem_case(case: EnomemCase) -> TestResult<u8> {
    const SEED: u64 = 0xe0e0;
    prepare()?;
    let page = page_size();
    let shared = Region::anon(16 * page)?;
    shared.fill_all(SEED);
    let filler = Region::anon(FILLER_PAGES * page)?;
    filler.unshare()?;
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    let result = protect_starved(case, &a, &b, &filler, shared.addr() + 4 * page, 4 * page)?;
    let want = match result {
        Ok(()) => {
            diag!("mprotect succeeded");
            ["rw-p", "r--p", "rw-p"]
        }
        Err(libc::ENOMEM) => {
            diag!("mprotect failed with ENOMEM");
            ["rw-p", "rw-p", "rw-p"]
        }
        Err(e) => fail!(
            "mprotect of a shared range from {}: {} (expected success or ENOMEM)",
            case.caller.name(),
            errno_name(e)
        ),
    };
    let outcome = if result.is_ok() {
        "after the mprotect succeeded"
    } else {
        "after the mprotect failed with ENOMEM"
    };
    let checks = MEMBERS.map(|member| {
        member.run(&a, &b, || {
            let mut got = Vec::new();
            for p in [0, 3, 4, 7, 8, 15] {
                got.push(thread_perms(shared.addr() + p * page)?);
            }
            let want = [want[0], want[0], want[1], want[1], want[2], want[2]];
            ensure!(
                got == want,
                "{outcome}: permissions of pages 0, 3, 4, 7, 8, 15 of the shared range: \
                 expected {want:?}, got {got:?}"
            );
            shared.verify_all(SEED).context("data")
        })
    });
    check_all(checks)?;
    Ok(0)
}

/// mprotect of the middle of a shared range (two splits) when one member
/// (a view, or the base) has no vm.max_map_count headroom left while the
/// caller has: either it succeeds in every view, or it fails with ENOMEM
/// and no view's permissions changed. The starved member's map count is
/// raised with read-only pages of an unshared range, which only its own
/// view splits. Each case runs in a child of its own.
fn invariant_mprotect_enomem_all_or_nothing() -> TestResult {
    // The children lower the limit; put back what it is now in any case.
    let old = read_file(MAX_MAP_COUNT)?;
    let _restore = set_temporarily(MAX_MAP_COUNT, old.trim())?;
    let mut results = Vec::new();
    for case in ENOMEM_CASES {
        let what = format!(
            "mprotect from {}, {} without headroom",
            case.caller.name(),
            case.starved.name()
        );
        // SAFETY: the test child is single-threaded.
        let code = unsafe { child::run(&what, || enomem_case(case)) };
        results.push(code.and_then(|code| {
            ensure_eq!(code, 0, "{what}: exit status");
            Ok(())
        }));
    }
    check_all(results)
}
