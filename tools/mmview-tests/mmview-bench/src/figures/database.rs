//! Figure 5, the database case, end to end.
//!
//! A table of N rows of 64 bytes (256 MiB in a full run) holds balances that
//! sum to a constant. A writer thread moves amounts between random rows as
//! fast as it can, in batches of [`BATCH`] transfers under a lock. Every
//! period T the reader takes a consistent snapshot (under the lock, so
//! between transfers) and scans it; the scan checks that the balances still
//! sum to the constant, so an inconsistent snapshot breaks the figure. Phases
//! (one repetition each, interleaved):
//!
//! - `alone`: no snapshots; the writer's undisturbed throughput;
//! - `fork`: the reader forks under the lock; the child scans its copy;
//! - `memcpy`: the reader copies the table into a buffer under the lock and
//!   scans the copy (the buffer is allocated and faulted in before the phase);
//! - `mmview`: the table is unshared; the reader creates a view under the
//!   lock, migrates into it, scans, migrates back and deletes the view.
//!
//! Metrics per phase: `snapshot_latency` (from asking for the lock until the
//! snapshot exists: lock wait plus fork / memcpy / CREATE), median over the
//! phase's snapshots, against `fork`; `writer_throughput` (transfers per
//! second over the phase), against `alone`; and `memory`, the memory the
//! snapshot holds once scanned: the drop of available memory (`MemAvailable`
//! of /proc/meminfo plus the per-CPU free lists, see [`available_kib`]) from
//! the start of the phase (no snapshot, no buffer) to the end of a scan
//! (snapshot still held: page tables, copy-on-write copies the writer caused,
//! the copy buffer), median over the phase's snapshots, against `fork`.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Config;
use crate::clock::Stamp;
use crate::measure::{broken, interleave, Case, Failure, Outcome, Result, Stats};
use crate::report::{diag, Rows};
use crate::sys::{
    available_kib, fork_timed, in_view, ns, pipe, read_exact, unshare, wait_for_release, write_all,
    Region, View, MIB,
};

/// 64-byte rows: balance, version, and payload.
const ROW_WORDS: usize = 8;
const ROW_BYTES: usize = ROW_WORDS * 8;
/// Every balance starts at this.
const INITIAL: u64 = 1000;
/// Transfers per lock hold of the writer.
const BATCH: u64 = 16;

/// The table: an address and a row count (plain numbers, so that the writer
/// thread and fork children can use it). The memory is owned by a [`Region`]
/// that outlives every user.
#[derive(Clone, Copy)]
struct Table {
    addr: usize,
    rows: usize,
}

impl Table {
    fn word(&self, row: usize, word: usize) -> &AtomicU64 {
        debug_assert!(row < self.rows && word < ROW_WORDS);
        let ptr = (self.addr + (row * ROW_WORDS + word) * 8) as *mut u64;
        // SAFETY: the word is inside the live, aligned table; all concurrent
        // access goes through atomics. The reference lives only as long as
        // the statement that uses it (it is never held across a migration).
        unsafe { AtomicU64::from_ptr(ptr) }
    }

    fn fill(&self) {
        for row in 0..self.rows {
            self.word(row, 0).store(INITIAL, Ordering::Relaxed);
            for w in 1..ROW_WORDS {
                self.word(row, w).store(row as u64, Ordering::Relaxed);
            }
        }
    }

    /// The scan: the wrapping sum of all balances. Async-signal-safe.
    fn total(&self) -> u64 {
        (0..self.rows).fold(0u64, |sum, row| {
            sum.wrapping_add(self.word(row, 0).load(Ordering::Relaxed))
        })
    }

    fn expected_total(&self) -> u64 {
        (self.rows as u64).wrapping_mul(INITIAL)
    }

    fn bytes(&self) -> usize {
        self.rows * ROW_BYTES
    }
}

/// What the reader and the writer share.
struct Shared {
    lock: Mutex<()>,
    /// The reader wants the lock: the writer waits instead of re-taking it.
    wanted: AtomicBool,
    stop: AtomicBool,
    transfers: AtomicU64,
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn writer(table: Table, shared: &Shared) {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    while !shared.stop.load(Ordering::Relaxed) {
        if shared.wanted.load(Ordering::Relaxed) {
            std::thread::yield_now();
            continue;
        }
        {
            let _guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            for _ in 0..BATCH {
                let r = next();
                let (from, to) = ((r as usize) % table.rows, ((r >> 32) as usize) % table.rows);
                let amount = (r >> 24) % 100;
                let a = table.word(from, 0);
                a.store(
                    a.load(Ordering::Relaxed).wrapping_sub(amount),
                    Ordering::Relaxed,
                );
                let b = table.word(to, 0);
                b.store(
                    b.load(Ordering::Relaxed).wrapping_add(amount),
                    Ordering::Relaxed,
                );
                for (row, w) in [(from, 1), (to, 1)] {
                    let v = table.word(row, w);
                    v.store(v.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
                }
            }
        }
        shared.transfers.fetch_add(BATCH, Ordering::Relaxed);
    }
}

/// Runs `f` under the table lock, taken on behalf of the reader; its result
/// and the time from asking for the lock to the end of `f`.
fn locked<R>(shared: &Shared, f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Stamp::now();
    shared.wanted.store(true, Ordering::Relaxed);
    let guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
    shared.wanted.store(false, Ordering::Relaxed);
    let result = f();
    let elapsed = start.elapsed();
    drop(guard);
    (result, elapsed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Alone,
    Fork,
    Memcpy,
    Mmview,
}

/// One phase's figures.
struct Phase {
    latency_ns: Option<f64>,
    throughput: f64,
    memory_kib: Option<f64>,
    overruns: usize,
}

struct Setup {
    table: Table,
    period: Duration,
    snapshots: usize,
}

pub fn run(config: &Config) -> Result<()> {
    let table_mib: usize = config.pick(4, 256);
    let setup_period = Duration::from_millis(config.pick(20, 500));
    let snapshots = config.pick(2, 4);
    let reps = config.pick(config.reps.min(2), config.reps.div_ceil(2));
    let region = Region::new(table_mib * MIB)?;
    let table = Table {
        addr: region.ptr() as usize,
        rows: region.len() / ROW_BYTES,
    };
    table.fill();
    let unavailable = match unshare(&region, region.len()) {
        Ok(()) => None,
        Err(Failure::Unavailable(why)) => Some(why),
        Err(broken) => return Err(broken),
    };
    let setup = Setup {
        table,
        period: setup_period,
        snapshots,
    };
    let params = format!(
        "rows={};row_bytes={ROW_BYTES};table_mib={table_mib};period_ms={};snapshots={snapshots}",
        table.rows,
        setup.period.as_millis()
    );
    diag!("database: {params}, {reps} reps of each phase");
    let shared = Shared {
        lock: Mutex::new(()),
        wanted: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        transfers: AtomicU64::new(0),
    };
    let outcomes = std::thread::scope(|scope| {
        // Stops the writer however this closure ends (a panic included),
        // so that the scope's join cannot hang.
        let _stop = StopOnDrop(&shared.stop);
        let writer_thread = std::thread::Builder::new()
            .name("writer".into())
            .spawn_scoped(scope, || writer(table, &shared));
        if let Err(e) = writer_thread {
            return Err(Failure::Broken(format!("starting the writer thread: {e}")));
        }
        let phase = |kind| {
            let unavailable = unavailable.clone();
            let (setup, shared) = (&setup, &shared);
            move || match (&unavailable, kind) {
                (Some(why), Kind::Mmview) => Err(Failure::Unavailable(why.clone())),
                _ => run_phase(kind, setup, shared),
            }
        };
        let outcomes = interleave(
            reps,
            vec![
                Case::new("fork", phase(Kind::Fork)),
                Case::new("alone", phase(Kind::Alone)),
                Case::new("memcpy", phase(Kind::Memcpy)),
                Case::new("mmview", phase(Kind::Mmview)),
            ],
        );
        outcomes.map_err(Failure::Broken)
    })?;
    drop(region);
    report(&params, &outcomes)
}

fn report(params: &str, outcomes: &[Outcome<Phase>]) -> Result<()> {
    let [fork, alone, memcpy, mmview] = outcomes else {
        broken!("lost a phase");
    };
    if let Some(why) = &mmview.unavailable {
        diag!("database: mmview figures n/a on this kernel ({why}); fork() and memcpy measured");
    }
    for outcome in outcomes {
        let overruns: usize = outcome.values.iter().flatten().map(|p| p.overruns).sum();
        if overruns > 0 {
            diag!(
                "database: {}: {overruns} snapshot(s) took longer than the period",
                outcome.case
            );
        }
    }
    let latency = |o: &Outcome<Phase>| o.series(|p| p.latency_ns);
    let throughput = |o: &Outcome<Phase>| o.series(|p| Some(p.throughput));
    let memory = |o: &Outcome<Phase>| o.series(|p| p.memory_kib);
    let rows = |metric, unit| Rows {
        figure: "database",
        params,
        metric,
        unit,
    };
    rows("snapshot_latency", "ns").all(&latency(fork), &[&latency(memcpy), &latency(mmview)]);
    rows("writer_throughput", "tx_per_s").all(
        &throughput(alone),
        &[&throughput(fork), &throughput(memcpy), &throughput(mmview)],
    );
    rows("memory", "KiB").all(&memory(fork), &[&memory(memcpy), &memory(mmview)]);
    Ok(())
}

/// One phase: `snapshots` periods of `period`, a snapshot at the start of
/// each (none for `alone`).
fn run_phase(kind: Kind, setup: &Setup, shared: &Shared) -> Result<Phase> {
    let table = setup.table;
    let reference_kib = available_kib()?;
    let buffer = match kind {
        Kind::Memcpy => Some(Region::touched(table.bytes(), 0)?),
        _ => None,
    };
    let mut latencies = Vec::new();
    let mut memory = Vec::new();
    let mut overruns = 0;
    let transfers_before = shared.transfers.load(Ordering::Relaxed);
    let stamp = Stamp::now();
    let start = Instant::now();
    for k in 0..setup.snapshots {
        let tick = start + setup.period * k as u32;
        let now = Instant::now();
        if now < tick {
            std::thread::sleep(tick - now);
        } else if k > 0 {
            overruns += 1;
        }
        let snap = match kind {
            Kind::Alone => continue,
            Kind::Fork => snapshot_fork(table, shared)?,
            Kind::Memcpy => match &buffer {
                Some(buffer) => snapshot_memcpy(table, buffer, shared)?,
                None => broken!("no copy buffer"),
            },
            Kind::Mmview => snapshot_mmview(table, shared)?,
        };
        if snap.total != table.expected_total() {
            broken!(
                "inconsistent snapshot ({kind:?}): the balances sum to {}, expected {}",
                snap.total,
                table.expected_total()
            );
        }
        latencies.push(ns(snap.latency));
        memory.push(reference_kib as f64 - snap.available_kib as f64);
    }
    let end = start + setup.period * setup.snapshots as u32;
    let now = Instant::now();
    if now < end {
        std::thread::sleep(end - now);
    }
    let elapsed = stamp.elapsed();
    let transfers = shared.transfers.load(Ordering::Relaxed) - transfers_before;
    drop(buffer);
    Ok(Phase {
        latency_ns: Stats::of(latencies).map(|s| s.median),
        throughput: transfers as f64 / elapsed.as_secs_f64(),
        memory_kib: Stats::of(memory).map(|s| s.median),
        overruns,
    })
}

/// One snapshot, taken and scanned.
struct Snapshot {
    /// From asking for the lock until the snapshot existed.
    latency: Duration,
    /// What the scan found.
    total: u64,
    /// Available memory (KiB) after the scan, the snapshot still held.
    available_kib: u64,
}

/// fork() under the lock; the child scans its copy, reports the total and
/// waits to be released, so that available memory is read while it still
/// holds the snapshot.
fn snapshot_fork(table: Table, shared: &Shared) -> Result<Snapshot> {
    let (result_r, result_w) = pipe()?;
    let (release_r, release_w) = pipe()?;
    let (res_w, rel_r, rel_w) = (
        result_w.as_raw_fd(),
        release_r.as_raw_fd(),
        release_w.as_raw_fd(),
    );
    let (forked, latency) = locked(shared, || {
        fork_timed(|| {
            // Only async-signal-safe work here: the parent's writer thread
            // may have held any lock at the fork (except the table lock).
            let total = table.total();
            if !write_all(res_w, &total.to_ne_bytes()) {
                return 1;
            }
            wait_for_release(rel_r, rel_w);
            0
        })
    });
    let (child, _) = forked?;
    drop(result_w);
    drop(release_r);
    let mut bytes = [0u8; 8];
    if !read_exact(result_r.as_raw_fd(), &mut bytes) {
        broken!("the fork child did not report its scan");
    }
    let available_kib = available_kib()?;
    drop(release_w);
    child.wait()?;
    Ok(Snapshot {
        latency,
        total: u64::from_ne_bytes(bytes),
        available_kib,
    })
}

/// memcpy of the table under the lock, then a scan of the copy.
fn snapshot_memcpy(table: Table, buffer: &Region, shared: &Shared) -> Result<Snapshot> {
    if buffer.len() < table.bytes() {
        broken!("the copy buffer is smaller than the table");
    }
    let ((), latency) = locked(shared, || {
        // SAFETY: the buffer is at least as large as the table and does not
        // overlap it; the writer is held off by the lock.
        unsafe {
            std::ptr::copy_nonoverlapping(table.addr as *const u8, buffer.ptr(), table.bytes())
        }
    });
    let copy = Table {
        addr: buffer.ptr() as usize,
        rows: table.rows,
    };
    let total = copy.total();
    Ok(Snapshot {
        latency,
        total,
        available_kib: available_kib()?,
    })
}

/// MMVIEW_CREATE under the lock; the scan runs in the view.
fn snapshot_mmview(table: Table, shared: &Shared) -> Result<Snapshot> {
    let (created, latency) = locked(shared, View::create);
    let view = created?;
    // SAFETY: in the view, only the table (the one unshared range) is
    // accessed, through atomics made from its address.
    let total = unsafe { in_view(&view, || table.total()) }?;
    let available_kib = available_kib()?;
    view.delete()?;
    Ok(Snapshot {
        latency,
        total,
        available_kib,
    })
}
