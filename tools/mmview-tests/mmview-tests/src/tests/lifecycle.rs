//! The life of views when things go wrong or get unusual: a process killed
//! while it forms its first view, allocations failing inside the mmview
//! operations and the layout replication (fault injection), the process
//! after its old base was switched away and deleted, and `CLONE_VM`
//! children outside the thread group.
//!
//! The tests follow the memory rule of [`crate::util::view`]: every mapping
//! and thread they use is made before the first `MMVIEW_CREATE` of their
//! process, and memory is touched through [`Region`]. Each scenario that
//! forms views, or may leave a process in a bad state, runs in a child of
//! its own ([`crate::util::child`]).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use mmview::ViewId;

use super::named_tests;
use crate::check::{check_all, diag, ensure, ensure_eq, fail, skip, Context, Failure, TestResult};
use crate::framework::{describe_status, Test};
use crate::util::child;
use crate::util::mem::page_size;
use crate::util::process::{pipe, pipe_fds, Sender};
use crate::util::procfs::{set_temporarily, thread_smaps_entries, Restore};
use crate::util::sys::{
    describe_raw, errno_name, last_errno, mmap_anon, mprotect, sys, ErrnoContext,
};
use crate::util::view::{
    create, expect_current, migrate_from, prepare, threads_in_new_views, Region,
};

pub fn tests() -> Vec<Test> {
    let mut tests = named_tests![
        lifecycle_unshare_after_switch_base_delete_old,
        lifecycle_clone_vm_child_in_view,
    ];
    // Both run many processes, each with a large address space: minutes on
    // a debug kernel under emulation.
    tests.insert(
        0,
        Test::new("lifecycle_create_killed", lifecycle_create_killed)
            .with_timeout(Duration::from_secs(600)),
    );
    tests.insert(
        1,
        Test::new(
            "lifecycle_create_fault_injection",
            lifecycle_create_fault_injection,
        )
        .with_timeout(Duration::from_secs(600)),
    );
    tests
}

const BASE: ViewId = ViewId::BASE;

/// Memory of a process about to form views: a shared and an unshared range.
#[derive(Clone, Copy)]
struct Fixture {
    shared: Region,
    unshared: Region,
}

impl Fixture {
    const S0: u64 = 0x1f00;
    const S1: u64 = 0x1f01;
    const S2: u64 = 0x1f02;
    const U0: u64 = 0x1f10;
    const U1: u64 = 0x1f11;
    const U2: u64 = 0x1f12;

    /// Prepares the process ([`prepare`]) and maps the ranges, filled with
    /// `S0` and `U0`; the second one unshared.
    fn new() -> TestResult<Fixture> {
        prepare()?;
        let page = page_size();
        let shared = Region::anon(8 * page)?;
        shared.fill_all(Self::S0);
        let unshared = Region::anon_unshared(8 * page, Self::U0)?;
        Ok(Fixture { shared, unshared })
    }

    /// [`Fixture::new`] and view 1, whose copy of the unshared range holds
    /// `U1` (the base's holds `U0`); the main thread is back in the base.
    fn with_view() -> TestResult<(Fixture, ViewId)> {
        let fx = Fixture::new()?;
        let v1 = create("view 1")?;
        // SAFETY: the memory rule.
        unsafe { migrate_from(v1, BASE, "the main thread")? };
        fx.unshared.fill_all(Fixture::U1);
        // SAFETY: as above.
        unsafe { migrate_from(BASE, v1, "the main thread")? };
        Ok((fx, v1))
    }

    /// Checks that the calling thread's view holds `s` and `u`.
    fn expect(&self, s: u64, u: u64, who: &str) -> TestResult {
        self.shared
            .verify_all(s)
            .with_context(|| format!("{who}: shared range"))?;
        self.unshared
            .verify_all(u)
            .with_context(|| format!("{who}: unshared range"))
    }

    /// Moves the calling thread (in `from`) into `view`, checks that it
    /// holds `s` and `u`, and moves back.
    fn visit(&self, view: ViewId, from: ViewId, s: u64, u: u64, who: &str) -> TestResult {
        // SAFETY: the memory rule: this thread's stack and the heap are
        // shared, and the ranges are only touched through Region.
        unsafe { migrate_from(view, from, "the main thread")? };
        let seen = self.expect(s, u, who);
        // SAFETY: as above.
        unsafe { migrate_from(from, view, "the main thread")? };
        seen
    }
}

/// A check that a fresh process can form views and they work: a child
/// maps, unshares, creates a view, and sees the right data in both.
fn fresh_process_works(what: &str) -> TestResult {
    let check = || -> TestResult<u8> {
        let fx = Fixture::new()?;
        let v1 = create("the first view of a fresh process")?;
        ensure_eq!(v1, ViewId::from_raw(1), "id of the first view");
        // SAFETY: the memory rule.
        unsafe { migrate_from(v1, BASE, "the main thread")? };
        fx.expect(Fixture::S0, Fixture::U0, "view 1")?;
        fx.shared.fill_all(Fixture::S1);
        fx.unshared.fill_all(Fixture::U1);
        // SAFETY: as above.
        unsafe { migrate_from(BASE, v1, "the main thread")? };
        fx.expect(Fixture::S1, Fixture::U0, "the base")?;
        Ok(0)
    };
    // SAFETY: called from the single-threaded test child.
    unsafe { child::run(what, check) }.map(drop)
}

// ---------------------------------------------------------------------------
// lifecycle_create_killed

/// Rounds of [`lifecycle_create_killed`].
const KILL_ROUNDS: u32 = 16;
/// Single-page mappings the killed process has (alternately writable and
/// read-only, so that they do not merge).
const SMALL_VMAS: usize = 2000;
/// Its unshared range, populated, whose page tables CREATE copies.
const KILL_UNSHARED: usize = 4 << 20;

/// What the exit code of a child of [`lifecycle_create_killed`] means.
fn killed_child_failure(code: i32) -> String {
    let what = match code {
        10 => "mmap of the small mappings failed",
        11 => "mprotect splitting them failed",
        12 => "mapping or unsharing the unshared range failed",
        13 => "it could not report that it was ready",
        14 => "MMVIEW_CREATE failed",
        15 => "MMVIEW_DELETE failed",
        _ => return format!("it exited with status {code}"),
    };
    format!("it exited with status {code}: {what}")
}

/// The process [`lifecycle_create_killed`] kills: `SMALL_VMAS` mappings
/// and a populated unshared range, then (after telling `ready`) creates and
/// deletes views in a loop. Its exit code, if it ever gets to exit.
fn create_until_killed(ready: Option<&Sender>, timing: Option<&Region>) -> i32 {
    let page = page_size();
    let len = SMALL_VMAS * page;
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let Ok(base) = mmap_anon(len, rw, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) else {
        return 10;
    };
    let small = Region::at(base, len);
    for i in 0..SMALL_VMAS {
        small.store(i * page, i as u64 + 1);
    }
    for i in (1..SMALL_VMAS).step_by(2) {
        // SAFETY: makes one page of our own mapping read-only; nothing
        // writes it afterwards.
        if unsafe { mprotect(small.addr() + i * page, page, libc::PROT_READ) }.is_err() {
            return 11;
        }
    }
    let Ok(unshared) = Region::anon(KILL_UNSHARED) else {
        return 12;
    };
    unshared.fill_all(0x4b11);
    if unshared.unshare().is_err() {
        return 12;
    }
    if let Some(ready) = ready {
        if !ready.send(1) {
            return 13;
        }
    }
    let start = Instant::now();
    let Ok(first) = mmview::create() else {
        return 14;
    };
    if let Some(timing) = timing {
        timing.store(0, start.elapsed().as_nanos() as u64);
        return 0;
    }
    if mmview::delete(first).is_err() {
        return 15;
    }
    loop {
        match mmview::create() {
            Ok(view) => {
                if mmview::delete(view).is_err() {
                    return 15;
                }
            }
            Err(_) => return 14,
        }
    }
}

/// SIGKILL while a process forms its first view (CREATE copying a few
/// thousand mappings and an unshared range): 30 processes killed after
/// delays spread over the time the first CREATE takes. Each must die of
/// the SIGKILL (the kernel must not crash or report memory errors — the
/// harness fails the run on any splat), and afterwards a fresh process can
/// still create views.
fn lifecycle_create_killed() -> TestResult {
    let timing = Region::anon_shared(page_size())?;
    // SAFETY: the test child is single-threaded.
    unsafe {
        child::run("the timing run", || {
            match create_until_killed(None, Some(&timing)) {
                0 => Ok(0),
                code => fail!("{}", killed_child_failure(code)),
            }
        })
    }?;
    let first_create = Duration::from_nanos(timing.load(0));
    diag!("the first MMVIEW_CREATE took {first_create:?}");
    for round in 0..KILL_ROUNDS {
        let delay = first_create * 6 / 5 * round / (KILL_ROUNDS - 1);
        let (ready_rx, ready_tx) = pipe()?;
        let target = {
            let ready_tx = &ready_tx;
            // SAFETY: the test child is single-threaded.
            unsafe {
                child::spawn(move || {
                    let code = create_until_killed(Some(ready_tx), None);
                    u8::try_from(code).map_err(|_| Failure::new("bad code"))
                })
            }?
        };
        drop(ready_tx);
        let ready = ready_rx.recv() == Some(1);
        if ready {
            let start = Instant::now();
            while start.elapsed() < delay {
                std::hint::spin_loop();
            }
        }
        // SAFETY: plain system call on our own child.
        unsafe { libc::kill(target.pid(), libc::SIGKILL) };
        let status = target.finish_status(&format!("round {round}"))?;
        if libc::WIFEXITED(status) {
            fail!(
                "round {round} (kill after {delay:?}): the process was not killed: {}",
                killed_child_failure(libc::WEXITSTATUS(status))
            );
        }
        ensure!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
            "round {round} (kill after {delay:?}): the process {} instead of dying of SIGKILL",
            describe_status(status)
        );
    }
    fresh_process_works("a fresh process after the killed ones")
}

// ---------------------------------------------------------------------------
// lifecycle_create_fault_injection

/// `/proc/thread-self/fail-nth` of the thread that opened it: make the
/// n-th fault-injection point the thread passes fail.
struct FailNth {
    file: File,
}

impl FailNth {
    const PATH: &'static str = "/proc/thread-self/fail-nth";

    /// Opens the calling thread's fail-nth (to be used by it only).
    fn open() -> TestResult<FailNth> {
        let file = File::options()
            .read(true)
            .write(true)
            .open(Self::PATH)
            .with_context(|| format!("opening {}", Self::PATH))?;
        Ok(FailNth { file })
    }

    /// Makes the `n`-th fault-injection point from now fail.
    fn arm(&self, n: u32) -> TestResult {
        self.file
            .write_at(n.to_string().as_bytes(), 0)
            .with_context(|| format!("writing {n} to {}", Self::PATH))?;
        Ok(())
    }

    /// Whether the fault was injected (the count reached 0); clears it.
    fn disarm(&self) -> TestResult<bool> {
        let mut buf = [0u8; 32];
        let n = self
            .file
            .read_at(&mut buf, 0)
            .with_context(|| format!("reading {}", Self::PATH))?;
        let left = String::from_utf8_lossy(&buf[..n]).trim().to_string();
        self.file
            .write_at(b"0", 0)
            .with_context(|| format!("clearing {}", Self::PATH))?;
        let left: u64 = left
            .parse()
            .with_context(|| format!("{} holds {left:?}", Self::PATH))?;
        Ok(left == 0)
    }
}

/// Runs `f` with the `n`-th fault-injection point the calling thread
/// passes from now failing: what `f` returned, and whether the fault was
/// injected (see [`FailNth::disarm`]).
fn with_fault<T>(n: u32, f: impl FnOnce() -> T) -> TestResult<(T, bool)> {
    let fail = FailNth::open()?;
    fail.arm(n)?;
    let out = f();
    Ok((out, fail.disarm()?))
}

/// The most faults injected into one operation.
const MAX_FAULTS: u32 = 300;

/// What [`inject`] does the fault-injected operation with.
type InjectCase = fn(u32) -> TestResult<bool>;

/// Runs `case(n)` in a fresh child for n = 1, 2, ... (fault n injected
/// into the operation) until the operation completes without reaching the
/// n-th fault-injection point, or `MAX_FAULTS`.
fn inject(what: &str, case: InjectCase) -> TestResult {
    for n in 1..=MAX_FAULTS {
        // SAFETY: the test child is single-threaded.
        let injected =
            unsafe { child::run(&format!("{what}, fault #{n}"), || case(n).map(u8::from)) }?;
        if injected == 0 {
            diag!("{what}: {} allocation failures injected", n - 1);
            return Ok(());
        }
    }
    diag!("{what}: stopped after {MAX_FAULTS} injected failures");
    Ok(())
}

/// A raw mmview return value of an operation that may fail only for lack
/// of memory: `Some(value)`, or `None` for ENOMEM.
fn ok_or_enomem(ret: i64, what: &str) -> TestResult<Option<u64>> {
    if ret == -i64::from(libc::ENOMEM) {
        return Ok(None);
    }
    match u64::try_from(ret) {
        Ok(value) => Ok(Some(value)),
        Err(_) => fail!(
            "{what} with an allocation failure injected: {} (only success or ENOMEM is \
             allowed)",
            describe_raw(ret)
        ),
    }
}

/// Failed allocations inside mmview operations (`fail-nth`: the 1st, 2nd,
/// ... allocation of the call fails) leave a consistent process: each call
/// succeeds or fails with ENOMEM, and afterwards the views hold the right
/// data and (for the layout replication) every view has the base's layout.
/// Covered: the first CREATE (the family forms), a second CREATE, MIGRATE,
/// SWITCH_BASE, and mmap/munmap/mprotect from a view while views exist.
fn lifecycle_create_fault_injection() -> TestResult {
    if !std::path::Path::new(FailNth::PATH).exists() {
        skip!(
            "no {} (the kernel has no CONFIG_FAULT_INJECTION)",
            FailNth::PATH
        );
    }
    let _knobs = fault_knobs()?;
    prepare()?;
    check_all([
        inject("the first MMVIEW_CREATE", inject_create_first),
        inject("a second MMVIEW_CREATE", inject_create_second),
        inject("MMVIEW_MIGRATE", inject_migrate),
        inject("MMVIEW_SWITCH_BASE", inject_switch_base),
        inject("mmap in a view", |n| inject_layout(n, LayoutOp::Mmap)),
        inject("munmap in a view", |n| inject_layout(n, LayoutOp::Munmap)),
        inject("mprotect in a view", |n| {
            inject_layout(n, LayoutOp::Mprotect)
        }),
    ])
}

/// Sets the fault-injection knobs for the test: failslab and
/// fail_page_alloc also fail allocations that may sleep (GFP_KERNEL, what
/// mm code uses), page allocations of any order, and print nothing.
fn fault_knobs() -> TestResult<Vec<Restore>> {
    const DEBUGFS: &str = "/sys/kernel/debug";
    let mut knobs = Vec::new();
    for (dir, settings) in [
        (
            "failslab",
            &[("ignore-gfp-wait", "N"), ("verbose", "0")][..],
        ),
        (
            "fail_page_alloc",
            &[
                ("ignore-gfp-wait", "N"),
                ("verbose", "0"),
                ("min-order", "0"),
            ][..],
        ),
    ] {
        let path = format!("{DEBUGFS}/{dir}");
        if !std::path::Path::new(&path).is_dir() {
            diag!("no {path}: its allocations are left out");
            continue;
        }
        for (knob, value) in settings {
            knobs.push(set_temporarily(format!("{path}/{knob}"), value)?);
        }
    }
    if knobs.is_empty() {
        skip!("neither failslab nor fail_page_alloc in {DEBUGFS}");
    }
    Ok(knobs)
}

/// The first CREATE of a process (the family forms) with allocation
/// `n` failing.
fn inject_create_first(n: u32) -> TestResult<bool> {
    let fx = Fixture::new()?;
    let (ret, injected) = with_fault(n, || {
        // SAFETY: CREATE does not move the caller.
        unsafe { mmview::raw_mmview(mmview::MMVIEW_CREATE, 0, 0) }
    })?;
    let view = match ok_or_enomem(ret, "the first MMVIEW_CREATE")? {
        Some(id) => ViewId::from_raw(id),
        None => {
            expect_current(BASE, "the main thread after the failed CREATE")?;
            create("again, after the failed first CREATE")?
        }
    };
    fx.visit(view, BASE, Fixture::S0, Fixture::U0, "the new view")?;
    // SAFETY: the memory rule.
    unsafe { migrate_from(view, BASE, "the main thread")? };
    fx.shared.fill_all(Fixture::S1);
    fx.unshared.fill_all(Fixture::U1);
    // SAFETY: as above.
    unsafe { migrate_from(BASE, view, "the main thread")? };
    fx.expect(
        Fixture::S1,
        Fixture::U0,
        "the base after stores in the view",
    )?;
    Ok(injected)
}

/// A second CREATE (the family exists) with allocation `n` failing.
fn inject_create_second(n: u32) -> TestResult<bool> {
    let (fx, v1) = Fixture::with_view()?;
    let (ret, injected) = with_fault(n, || {
        // SAFETY: CREATE does not move the caller.
        unsafe { mmview::raw_mmview(mmview::MMVIEW_CREATE, 0, 0) }
    })?;
    let created = ok_or_enomem(ret, "a second MMVIEW_CREATE")?;
    expect_current(BASE, "the main thread after the CREATE")?;
    let base_layout = layout_here()?;
    // SAFETY: the memory rule.
    unsafe { migrate_from(v1, BASE, "the main thread")? };
    let v1_layout = layout_here();
    fx.expect(Fixture::S0, Fixture::U1, "view 1 after the CREATE")?;
    // SAFETY: as above.
    unsafe { migrate_from(BASE, v1, "the main thread")? };
    same_layout(&base_layout, &v1_layout?, "view 1")?;
    let v2 = match created {
        Some(id) => ViewId::from_raw(id),
        None => create("again, after the failed CREATE")?,
    };
    ensure!(v2 > v1, "the new view's id {v2} is not above view 1's {v1}");
    fx.visit(v2, BASE, Fixture::S0, Fixture::U0, "the new view")?;
    fx.expect(Fixture::S0, Fixture::U0, "the base")?;
    Ok(injected)
}

/// MIGRATE into a view with allocation `n` failing.
fn inject_migrate(n: u32) -> TestResult<bool> {
    let (fx, v1) = Fixture::with_view()?;
    let (ret, injected) = with_fault(n, || {
        // SAFETY: the memory rule; whether the thread moved is checked below.
        unsafe { mmview::raw_mmview(mmview::MMVIEW_MIGRATE, v1.as_raw(), 0) }
    })?;
    match ok_or_enomem(ret, "MMVIEW_MIGRATE")? {
        Some(previous) => {
            ensure_eq!(previous, 0, "MMVIEW_MIGRATE: the previous view");
            expect_current(v1, "the main thread after MIGRATE")?;
            fx.expect(Fixture::S0, Fixture::U1, "view 1 after MIGRATE")?;
            // SAFETY: the memory rule.
            unsafe { migrate_from(BASE, v1, "the main thread")? };
        }
        None => expect_current(BASE, "the main thread after the failed MIGRATE")?,
    }
    fx.expect(Fixture::S0, Fixture::U0, "the base")?;
    fx.visit(v1, BASE, Fixture::S0, Fixture::U1, "view 1")?;
    Ok(injected)
}

/// SWITCH_BASE with allocation `n` failing.
fn inject_switch_base(n: u32) -> TestResult<bool> {
    let fx = Fixture::new()?;
    let v1 = create("view 1")?;
    // SAFETY: the memory rule.
    unsafe { migrate_from(v1, BASE, "the main thread")? };
    fx.unshared.fill_all(Fixture::U1);
    fx.shared.fill_all(Fixture::S1);
    let (ret, injected) = with_fault(n, || {
        // SAFETY: SWITCH_BASE does not move the caller.
        unsafe { mmview::raw_mmview(mmview::MMVIEW_SWITCH_BASE, 0, 0) }
    })?;
    let switched = ok_or_enomem(ret, "MMVIEW_SWITCH_BASE")?;
    expect_current(v1, "the main thread after SWITCH_BASE")?;
    match switched {
        Some(id) => ensure_eq!(id, v1.as_raw(), "MMVIEW_SWITCH_BASE: the new base"),
        None => {
            let deleted = mmview::delete(BASE);
            ensure!(
                matches!(deleted, Err(e) if e.is(libc::EPERM)),
                "MMVIEW_DELETE(0) after a failed SWITCH_BASE: expected EPERM (0 is still the \
                 base), got {deleted:?}"
            );
            let id = mmview::switch_base().context("SWITCH_BASE again after the failed one")?;
            ensure_eq!(id, v1, "MMVIEW_SWITCH_BASE again: the new base");
        }
    }
    let deleted = mmview::delete(v1);
    ensure!(
        matches!(deleted, Err(e) if e.is(libc::EPERM)),
        "MMVIEW_DELETE of the new base: expected EPERM, got {deleted:?}"
    );
    fx.expect(Fixture::S1, Fixture::U1, "view 1, the new base")?;
    // SAFETY: the memory rule.
    unsafe { migrate_from(BASE, v1, "the main thread")? };
    fx.expect(Fixture::S1, Fixture::U0, "view 0, the old base")?;
    fx.shared.fill_all(Fixture::S2);
    fx.unshared.fill_all(Fixture::U2);
    // SAFETY: as above.
    unsafe { migrate_from(v1, BASE, "the main thread")? };
    fx.expect(Fixture::S2, Fixture::U1, "view 1 after stores in view 0")?;
    Ok(injected)
}

/// A layout change made from a view while views exist.
#[derive(Clone, Copy, Debug)]
enum LayoutOp {
    /// A new 4-page anonymous mapping.
    Mmap,
    /// munmap of pages 4-5 of the 16-page target (a split).
    Munmap,
    /// mprotect(PROT_READ) of pages 8-9 of the target (a split).
    Mprotect,
}

impl LayoutOp {
    /// Does it to `target`; the new mapping's address (0 for the others),
    /// or the errno.
    fn run(self, target: &Region) -> Result<usize, i32> {
        let page = page_size();
        match self {
            LayoutOp::Mmap => mmap_anon(
                4 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            ),
            LayoutOp::Munmap => {
                let addr = target.addr() + 4 * page;
                // SAFETY: pages of `target` that the test does not touch
                // afterwards.
                sys(unsafe { libc::munmap(addr as *mut libc::c_void, 2 * page) }).map(|_| 0)
            }
            LayoutOp::Mprotect => {
                // SAFETY: pages of `target` that the test only reads
                // afterwards.
                unsafe { mprotect(target.addr() + 8 * page, 2 * page, libc::PROT_READ) }.map(|()| 0)
            }
        }
    }
}

/// The calling thread's view's layout: `(start, end, flags)` with
/// neighbours of equal flags coalesced (how mappings merge is not part of
/// the contract); the flags are the access and sharing bits and `vu`.
fn layout_here() -> TestResult<Vec<(usize, usize, String)>> {
    let mut out: Vec<(usize, usize, String)> = Vec::new();
    for e in thread_smaps_entries(0, usize::MAX)? {
        let flags: String = ["rd", "wr", "ex", "sh", "vu"]
            .iter()
            .map(|f| if e.has_flag(f) { *f } else { "--" })
            .collect();
        match out.last_mut() {
            Some(last) if last.1 == e.start && last.2 == flags => last.1 = e.end,
            _ => out.push((e.start, e.end, flags)),
        }
    }
    Ok(out)
}

/// Fails unless `got` (the layout of `who`) is `base`'s.
fn same_layout(
    base: &[(usize, usize, String)],
    got: &[(usize, usize, String)],
    who: &str,
) -> TestResult {
    if base == got {
        return Ok(());
    }
    let only_base: Vec<_> = base.iter().filter(|r| !got.contains(r)).collect();
    let only_got: Vec<_> = got.iter().filter(|r| !base.contains(r)).collect();
    fail!("{who}'s layout differs from the base's: only in the base {only_base:x?}, only in {who} {only_got:x?}")
}

/// `op` from a thread in view 1 (of two) with allocation `n` failing.
fn inject_layout(n: u32, op: LayoutOp) -> TestResult<bool> {
    const P: u64 = 0x1a7e;
    const Q: u64 = 0x1a7f;
    let _fx = Fixture::new()?;
    let page = page_size();
    let target = Region::anon(16 * page)?;
    target.fill_all(P);
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    let (ret, injected) = a.run(move || with_fault(n, || op.run(&target)))?;
    match ret {
        Ok(_) | Err(libc::ENOMEM) => {}
        Err(e) => fail!(
            "{op:?} in view 1 with an allocation failure injected: {} (only success or ENOMEM \
             is allowed)",
            errno_name(e)
        ),
    }
    let base_layout = layout_here()?;
    same_layout(&base_layout, &a.run(layout_here)?, "view 1")
        .with_context(|| format!("after {op:?} in view 1 ({ret:?})"))?;
    same_layout(&base_layout, &b.run(layout_here)?, "view 2")
        .with_context(|| format!("after {op:?} in view 1 ({ret:?})"))?;
    // The pages the operation leaves mapped and readable in any case.
    let kept = |who: &str| -> TestResult {
        target
            .verify(0, 4 * page, P)
            .and_then(|()| target.verify(6 * page, 10 * page, P))
            .with_context(|| format!("{who}: the target's data after {op:?}"))
    };
    kept("the base")?;
    a.run(|| kept("view 1"))?;
    b.run(|| kept("view 2"))?;
    if let (LayoutOp::Mmap, Ok(addr)) = (op, ret) {
        let new = Region::at(addr, 4 * page);
        new.fill_all(Q);
        a.run(|| new.verify_all(Q))
            .context("view 1: the new mapping, written in the base")?;
        b.run(|| new.verify_all(Q))
            .context("view 2: the new mapping, written in the base")?;
    }
    Ok(injected)
}

// ---------------------------------------------------------------------------
// lifecycle_unshare_after_switch_base_delete_old

/// After SWITCH_BASE to view 1 and the deletion of view 0 (the old base)
/// with no thread left in it, the process has one view in use: UNSHARE and
/// SHARE work again, and a new view gets the right copy.
fn lifecycle_unshare_after_switch_base_delete_old() -> TestResult {
    const E0: u64 = 0x0e00;
    const E1: u64 = 0x0e01;
    let fx = Fixture::new()?;
    let page = page_size();
    let extra = Region::anon(4 * page)?;
    extra.fill_all(E0);
    let v1 = create("view 1")?;
    // SAFETY: the memory rule.
    unsafe { migrate_from(v1, BASE, "the main thread")? };
    fx.unshared.fill_all(Fixture::U1);
    let got = mmview::switch_base().context("MMVIEW_SWITCH_BASE in view 1")?;
    ensure_eq!(got, v1, "MMVIEW_SWITCH_BASE: the new base");
    mmview::delete(BASE).context("MMVIEW_DELETE(0), the old base, with no thread in it")?;

    let unshared = extra.unshare();
    let shared = mmview::share(fx.unshared.addr() as *const u8, fx.unshared.len());
    check_all([
        unshared
            .context("MMVIEW_UNSHARE with one view in use (the old base deleted, no thread in it)"),
        shared
            .map_err(|e| Failure::new(e.to_string()))
            .context("MMVIEW_SHARE with one view in use (the old base deleted, no thread in it)"),
    ])?;
    fx.expect(Fixture::S0, Fixture::U1, "view 1 after SHARE")?;
    extra
        .verify_all(E0)
        .context("view 1: the range it unshared")?;

    let v2 = create("view 2, after the designations")?;
    ensure!(v2 > v1, "view 2's id {v2} is not above view 1's {v1}");
    // SAFETY: the memory rule.
    unsafe { migrate_from(v2, v1, "the main thread")? };
    fx.expect(Fixture::S0, Fixture::U1, "view 2")?;
    extra
        .verify_all(E0)
        .context("view 2: the newly unshared range")?;
    extra.fill_all(E1);
    fx.unshared.fill_all(Fixture::U2);
    // SAFETY: as above.
    unsafe { migrate_from(v1, v2, "the main thread")? };
    extra
        .verify_all(E0)
        .context("view 1: the newly unshared range after view 2 wrote its copy")?;
    fx.unshared
        .verify_all(Fixture::U2)
        .context("view 1: the range shared again, after view 2 wrote it")
}

// ---------------------------------------------------------------------------
// lifecycle_clone_vm_child_in_view

/// What a `CLONE_VM` child needs; copied onto its own stack at its start.
#[derive(Clone, Copy)]
struct CloneArgs {
    /// It reports that it runs (and has copied this) here.
    started: libc::c_int,
    /// It waits for end of file here: its parent's thread group is gone.
    alive_rx: libc::c_int,
    /// The write end of that pipe, which it closes first.
    alive_tx: libc::c_int,
    /// Shared memory the parent filled with `shared_seed`.
    shared: Region,
    shared_seed: u64,
    /// Unshared memory its view holds `unshared_seed` in, if any.
    unshared: Option<(Region, u64)>,
}

/// The exit code of a `CLONE_VM` child whose check failed.
fn clone_child_failure(code: i32) -> &'static str {
    match code {
        2 => "it could not report that it started",
        3 => "the shared memory did not hold its parent's data",
        4 => "its view's unshared memory did not hold the view's data",
        5 => "a store to shared memory did not read back",
        _ => "it exited with an unexpected status",
    }
}

/// A raw system call that allocates nothing and touches no thread-local
/// state unless it fails.
fn raw(nr: libc::c_long, a: libc::c_long, b: libc::c_long, c: libc::c_long) -> libc::c_long {
    // SAFETY: the callers pass valid arguments for read, write and close.
    unsafe { libc::syscall(nr, a, b, c) }
}

/// The body of a `CLONE_VM` child: it shares its parent's memory and
/// runs on a stack of its own, but with the creating thread's TLS, so it
/// only makes raw system calls and touches memory through [`Region`].
extern "C" fn clone_child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points to a CloneArgs that its creator keeps until
    // this child reports that it started.
    let args = unsafe { std::ptr::read_volatile(arg as *const CloneArgs) };
    let byte = 1u8;
    if raw(
        libc::SYS_write,
        args.started.into(),
        &byte as *const u8 as libc::c_long,
        1,
    ) != 1
    {
        return 2;
    }
    raw(libc::SYS_close, args.alive_tx.into(), 0, 0);
    let mut buf = 0u8;
    while raw(
        libc::SYS_read,
        args.alive_rx.into(),
        &mut buf as *mut u8 as libc::c_long,
        1,
    ) > 0
    {}
    let len = args.shared.len();
    if !args.shared.matches(0, len, args.shared_seed) {
        return 3;
    }
    if let Some((unshared, seed)) = args.unshared {
        if !unshared.matches(0, unshared.len(), seed) {
            return 4;
        }
    }
    args.shared.fill(0, len, args.shared_seed + 1);
    if !args.shared.matches(0, len, args.shared_seed + 1) {
        return 5;
    }
    0
}

/// `clone(CLONE_VM | SIGCHLD)` of a child running [`clone_child_main`] on
/// `stack`, with `args` (which must stay put until the child reports on
/// `started_rx`); its pid, or the errno.
fn clone_vm_child(stack: &Region, args: &CloneArgs, started_rx: &OwnedFd) -> Result<i32, i32> {
    let top = (stack.addr() + stack.len()) & !15;
    // SAFETY: the child runs on its own stack and touches only what
    // clone_child_main says; `args` outlives the wait for its start.
    let pid = unsafe {
        libc::clone(
            clone_child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::SIGCHLD,
            args as *const CloneArgs as *mut libc::c_void,
        )
    };
    if pid < 0 {
        return Err(last_errno());
    }
    let mut byte = 0u8;
    // SAFETY: reads one byte into a valid buffer.
    let n = unsafe { libc::read(started_rx.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) };
    if n != 1 {
        return Err(0);
    }
    Ok(pid)
}

/// How a `CLONE_VM` child (reparented to the test child) ended: `None` if
/// it exited 0, else why not.
fn reap_clone_child(pid: libc::pid_t) -> TestResult<Option<String>> {
    let status = crate::framework::wait(pid)
        .with_context(|| format!("waitpid of the CLONE_VM child {pid}: not our child"))?;
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        return Ok(None);
    }
    if libc::WIFEXITED(status) {
        let code = libc::WEXITSTATUS(status);
        return Ok(Some(format!(
            "exited with status {code}: {}",
            clone_child_failure(code)
        )));
    }
    Ok(Some(describe_status(status)))
}

/// The patterns of the shared memory of the two parts.
const CLONE_A0: u64 = 0xc100;
const CLONE_B0: u64 = 0xc200;

/// The errnos with which a kernel may refuse a `CLONE_VM` child of a
/// process with views.
const CLONE_REFUSALS: [i32; 4] = [libc::EOPNOTSUPP, libc::EINVAL, libc::EPERM, libc::EBUSY];

/// A `CLONE_VM` child outside the thread group: the kernel may refuse such
/// children of a process with views (clone fails, and CREATE fails with
/// EOPNOTSUPP in a process that has one), or keep them working (a child
/// made in a view reads and writes shared memory, and sees its view's
/// unshared memory, after its parent's thread group exited). Either is
/// fine; a child killed by a signal, or a mix (clone refused but CREATE
/// allowed), fails.
fn lifecycle_clone_vm_child_in_view() -> TestResult {
    // SAFETY: plain prctl; reparents orphans to the test child.
    sys(unsafe {
        libc::prctl(
            libc::PR_SET_CHILD_SUBREAPER,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
    .errno_context("PR_SET_CHILD_SUBREAPER")?;
    let page = page_size();
    // Word 0: pid of the child of part A; 1: CREATE in part A (raw);
    // 2: clone in part B (pid, or -errno).
    let info = Region::anon_shared(page)?;

    // Part A: no views; a CLONE_VM child, then CREATE.
    // SAFETY: the test child is single-threaded.
    let part_a = unsafe { child::spawn(|| clone_part_a(&info)) }?;
    part_a.finish("the process of part A")?;
    let create_with_child = info.load(8) as i64;
    let child_a = reap_clone_child(info.load(0) as libc::pid_t)?;
    diag!(
        "MMVIEW_CREATE in a process with a CLONE_VM child: {}",
        describe_raw(create_with_child)
    );
    ensure!(
        create_with_child == -i64::from(libc::EOPNOTSUPP) || create_with_child == 1,
        "MMVIEW_CREATE in a process with a CLONE_VM child: {} (expected view 1 or EOPNOTSUPP)",
        describe_raw(create_with_child)
    );
    if let Some(how) = child_a {
        fail!(
            "the CLONE_VM child of a process without views (CREATE: {}) {how} after its parent \
             exited",
            describe_raw(create_with_child)
        );
    }

    // Part B: a CLONE_VM child made by a thread in view 1.
    // SAFETY: the test child is single-threaded.
    let part_b = unsafe { child::spawn(|| clone_part_b(&info)) }?;
    part_b.finish("the process of part B")?;
    let cloned = info.load(16) as i64;
    if cloned < 0 {
        let errno = i32::try_from(-cloned).unwrap_or(0);
        diag!("clone(CLONE_VM) in view 1: {}", errno_name(errno));
        ensure!(
            CLONE_REFUSALS.contains(&errno),
            "clone(CLONE_VM) in view 1 failed with {}, not a refusal (EOPNOTSUPP, EINVAL, \
             EPERM or EBUSY)",
            errno_name(errno)
        );
        ensure!(
            create_with_child == -i64::from(libc::EOPNOTSUPP),
            "inconsistent: clone(CLONE_VM) is refused in a process with views, but MMVIEW_CREATE \
             succeeds in a process with a CLONE_VM child"
        );
        return Ok(());
    }
    diag!("clone(CLONE_VM) in view 1: child {cloned}");
    if let Some(how) = reap_clone_child(cloned as libc::pid_t)? {
        fail!(
            "the CLONE_VM child made in view 1 {how} after its parent's thread group exited (it \
             must keep working, or the clone be refused)"
        );
    }
    Ok(())
}

/// Part A of [`lifecycle_clone_vm_child_in_view`], in a process of its
/// own: a `CLONE_VM` child, then CREATE. Stores the child's pid and what
/// CREATE returned into words 0 and 1 of `info`.
fn clone_part_a(info: &Region) -> TestResult<u8> {
    const A0: u64 = CLONE_A0;
    let page = page_size();
    let data = Region::anon(4 * page)?;
    data.fill_all(A0);
    let stack = Region::anon(64 * page)?;
    let (started_rx, started_tx) = pipe_fds(libc::O_CLOEXEC)?;
    let (alive_rx, alive_tx) = pipe_fds(libc::O_CLOEXEC)?;
    let args = CloneArgs {
        started: started_tx.as_raw_fd(),
        alive_rx: alive_rx.as_raw_fd(),
        alive_tx: alive_tx.as_raw_fd(),
        shared: data,
        shared_seed: A0,
        unshared: None,
    };
    let pid = clone_vm_child(&stack, &args, &started_rx)
        .errno_context("clone(CLONE_VM) in a process without views")?;
    info.store(0, pid as u64);
    // SAFETY: CREATE does not move the caller.
    let ret = unsafe { mmview::raw_mmview(mmview::MMVIEW_CREATE, 0, 0) };
    info.store(8, ret as u64);
    // The write end closes when the process exits (all its
    // threads), not when this closure returns: that end of file is
    // the child's sign that its parent's thread group is gone.
    std::mem::forget(alive_tx);
    drop(alive_rx);
    Ok(0)
}

/// Part B of [`lifecycle_clone_vm_child_in_view`], in a process of its
/// own: a thread in view 1 makes a `CLONE_VM` child. Stores the child's
/// pid (or -errno) into word 2 of `info`.
fn clone_part_b(info: &Region) -> TestResult<u8> {
    const B0: u64 = CLONE_B0;
    const BU0: u64 = 0xc210;
    const BU1: u64 = 0xc211;
    let page = page_size();
    prepare()?;
    let data = Region::anon(4 * page)?;
    data.fill_all(B0);
    let unshared = Region::anon_unshared(4 * page, BU0)?;
    let stack = Region::anon(64 * page)?;
    let (started_rx, started_tx) = pipe_fds(libc::O_CLOEXEC)?;
    let (alive_rx, alive_tx) = pipe_fds(libc::O_CLOEXEC)?;
    // SAFETY: the memory rule.
    let [(a, _)] = unsafe { threads_in_new_views()? };
    let (started, alive_r, alive_w) = (
        started_tx.as_raw_fd(),
        alive_rx.as_raw_fd(),
        alive_tx.as_raw_fd(),
    );
    let cloned = a.run(|| {
        unshared.fill_all(BU1);
        let args = CloneArgs {
            started,
            alive_rx: alive_r,
            alive_tx: alive_w,
            shared: data,
            shared_seed: B0,
            unshared: Some((unshared, BU1)),
        };
        Ok(clone_vm_child(&stack, &args, &started_rx))
    })?;
    match cloned {
        Ok(pid) => info.store(16, pid as u64),
        Err(0) => fail!("the CLONE_VM child made in view 1 did not start"),
        Err(e) => info.store(16, (-i64::from(e)) as u64),
    }
    unshared
        .verify_all(BU0)
        .context("the base's unshared copy")?;
    // The write end closes when the process exits (all its
    // threads), not when this closure returns: that end of file is
    // the child's sign that its parent's thread group is gone.
    std::mem::forget(alive_tx);
    drop(alive_rx);
    Ok(0)
}
