//! `mmview-demo`: the database use case of mmview(2), live.
//!
//! A table of accounts (rows of `{id, balance}`) lives in an *unshared*
//! range. A writer thread in the base view moves money between random rows
//! as fast as it can, so the balances always add up to the same total
//! between its batches. A reader thread takes snapshots: under the table
//! lock it creates a view (a copy-on-write copy of the table at that
//! moment), migrates into it and scans the frozen table while the writer
//! goes on in the base. The scan must find the total exactly, twice, and
//! the table's own transfer count equal to the one at CREATE; a counter in
//! ordinary (shared) memory shows that everything but the table is still
//! common to both threads.
//!
//! Exits with 0 when everything behaved as the specification says.
//!
//! Memory rule (what makes `mmview::migrate` sound here): the stacks, the
//! heap, stdout's lock and the table lock are in shared memory, the same in
//! every view; the table, the only unshared range, is touched only through
//! raw pointers with volatile loads and stores derived at each access, so
//! no reference into it is ever held across a migration. Nothing allocates
//! large blocks (no `realloc` that glibc would turn into `mremap`, which
//! views do not replicate yet).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use mmview::ViewId;

/// Rows of the table: 16 bytes each, 8 MiB in all.
const ROWS: usize = 1 << 19;
/// Words before the first row: the count of committed transfers, and the
/// row count.
const HEADER_WORDS: usize = 2;
/// The starting balance of every row.
const INITIAL: u64 = 1000;
/// The sum of all balances, always (between batches).
const TOTAL: u64 = ROWS as u64 * INITIAL;
/// Transfers per hold of the table lock.
const BATCH: usize = 64;
/// Snapshot rounds.
const ROUNDS: usize = 5;
/// Transfers the writer must commit before each snapshot and between the
/// reader's two scans, so that the base table has certainly moved on.
const PROGRESS: u64 = 50_000;
/// How long the reader waits for that progress before calling it a
/// surprise (a watchdog, not a timing assumption: the writer never stops).
const PATIENCE: Duration = Duration::from_secs(60);

/// Prints a line; a closed stdout is not worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Counts what did not go as expected (from any thread).
#[derive(Default)]
struct Tour {
    surprises: AtomicUsize,
}

impl Tour {
    fn surprise(&self, what: &str) {
        self.surprises.fetch_add(1, Ordering::Relaxed);
        say!("   !! unexpected: {what}");
    }

    /// Counts a surprise unless `ok`; `ok`.
    fn expect(&self, ok: bool, what: impl FnOnce() -> String) -> bool {
        if !ok {
            self.surprise(&what());
        }
        ok
    }

    fn count(&self) -> usize {
        self.surprises.load(Ordering::Relaxed)
    }
}

fn main() -> std::process::ExitCode {
    say!("mmview demo: consistent snapshots of a table that keeps changing");
    say!("================================================================");
    say!();
    let tour = Tour::default();
    if !which_view(&tour) {
        return std::process::ExitCode::FAILURE;
    }
    database(&tour);
    say!();
    match tour.count() {
        0 => {
            say!("Everything behaved as the specification says.");
            std::process::ExitCode::SUCCESS
        }
        n => {
            say!("{n} thing(s) did not behave as the specification says.");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Step 1; false if the kernel has no mmview at all.
fn which_view(tour: &Tour) -> bool {
    say!("1. Which view is this process in?");
    match mmview::current() {
        Ok(ViewId::BASE) => {
            say!("   MMVIEW_CURRENT -> view 0, the base view every process starts in.");
            true
        }
        Ok(view) => {
            tour.surprise(&format!("MMVIEW_CURRENT -> view {view}, expected 0"));
            true
        }
        Err(e) if e.is(libc::ENOSYS) => {
            say!("   MMVIEW_CURRENT -> {e}:");
            say!("   this kernel has no mmview system call (built without CONFIG_MMVIEW).");
            false
        }
        Err(e) => {
            tour.surprise(&format!("MMVIEW_CURRENT -> {e}"));
            true
        }
    }
}

/// The table: an address and nothing else, so that it can be used from any
/// view. Every access derives a raw pointer and uses a volatile load or
/// store (the memory rule). The mapping is never unmapped.
#[derive(Clone, Copy)]
struct Table {
    addr: usize,
}

/// What one scan of the table found.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Scan {
    /// The table's count of committed transfers.
    transfers: u64,
    /// The sum of all balances (wrapping).
    sum: u64,
    /// A checksum of every row (ids and balances, position-dependent).
    checksum: u64,
    /// Rows whose id is not their index.
    bad_ids: usize,
    /// Whether the header holds the row count.
    header_ok: bool,
}

impl Table {
    const BYTES: usize = (HEADER_WORDS + 2 * ROWS) * 8;

    fn ptr(&self, word: usize) -> *mut u64 {
        debug_assert!(word < HEADER_WORDS + 2 * ROWS);
        (self.addr + word * 8) as *mut u64
    }

    fn load(&self, word: usize) -> u64 {
        // SAFETY: the word lies in the table, which stays mapped, readable
        // and writable for the life of the process.
        unsafe { self.ptr(word).read_volatile() }
    }

    fn store(&self, word: usize, value: u64) {
        // SAFETY: as for `load`. Only the writer stores, under the table
        // lock, and only into the base's copy.
        unsafe { self.ptr(word).write_volatile(value) }
    }

    fn balance_word(row: usize) -> usize {
        HEADER_WORDS + 2 * row + 1
    }

    /// Sets every row to `{id: index, balance: INITIAL}`.
    fn fill(&self) {
        self.store(0, 0);
        self.store(1, ROWS as u64);
        for row in 0..ROWS {
            self.store(HEADER_WORDS + 2 * row, row as u64);
            self.store(Self::balance_word(row), INITIAL);
        }
    }

    /// Moves `amount` from row `from` to row `to` if `from` can afford it.
    fn transfer(&self, from: usize, to: usize, amount: u64) -> bool {
        let (a, b) = (Self::balance_word(from), Self::balance_word(to));
        let have = self.load(a);
        if from == to || have < amount {
            return false;
        }
        self.store(a, have - amount);
        self.store(b, self.load(b) + amount);
        true
    }

    fn scan(&self) -> Scan {
        let mut scan = Scan {
            transfers: self.load(0),
            sum: 0,
            checksum: 0xcbf2_9ce4_8422_2325,
            bad_ids: 0,
            header_ok: self.load(1) == ROWS as u64,
        };
        for row in 0..ROWS {
            let id = self.load(HEADER_WORDS + 2 * row);
            let balance = self.load(Self::balance_word(row));
            if id != row as u64 {
                scan.bad_ids += 1;
            }
            scan.sum = scan.sum.wrapping_add(balance);
            scan.checksum = (scan.checksum ^ id ^ balance.rotate_left(32))
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(5);
        }
        scan
    }
}

/// What the writer and the reader share (in ordinary, shared memory).
struct Shared {
    table: Table,
    /// The table lock: the writer holds it for each batch of transfers,
    /// the reader for each CREATE.
    lock: Mutex<()>,
    /// The reader is waiting for the lock: the writer lets it have it.
    wanted: AtomicBool,
    stop: AtomicBool,
    /// Transfers committed, counted by the writer under the lock (so, under
    /// the lock, equal to the table's own count in the base).
    transfers: AtomicU64,
}

impl Shared {
    /// Runs `f` under the table lock, on behalf of the reader.
    fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        self.wanted.store(true, Ordering::Relaxed);
        let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.wanted.store(false, Ordering::Relaxed);
        let result = f();
        drop(guard);
        result
    }
}

/// Sets the flag when dropped (however the scope that holds it ends).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The writer: batches of random transfers, as fast as it can, until told
/// to stop. Stays in the base view.
fn writer(shared: &Shared) {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let table = shared.table;
    while !shared.stop.load(Ordering::Relaxed) {
        if shared.wanted.load(Ordering::Relaxed) {
            thread::yield_now();
            continue;
        }
        let guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut committed = 0;
        for _ in 0..BATCH {
            let r = next();
            let from = (r as usize) % ROWS;
            let to = ((r >> 32) as usize) % ROWS;
            if table.transfer(from, to, 1 + (r >> 20) % 100) {
                committed += 1;
            }
        }
        table.store(0, table.load(0) + committed);
        shared.transfers.fetch_add(committed, Ordering::Relaxed);
        drop(guard);
    }
}

/// The `VmFlags` of the mapping at `addr` in /proc/self/smaps.
fn vm_flags(addr: usize) -> Option<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut inside = false;
    for line in smaps.lines() {
        let range = line
            .split_whitespace()
            .next()
            .and_then(|r| r.split_once('-'));
        if let Some((start, end)) = range.and_then(|(s, e)| {
            Some((
                usize::from_str_radix(s, 16).ok()?,
                usize::from_str_radix(e, 16).ok()?,
            ))
        }) {
            inside = (start..end).contains(&addr);
        } else if inside {
            if let Some(flags) = line.strip_prefix("VmFlags:") {
                return Some(flags.trim().to_string());
            }
        }
    }
    None
}

/// Step 2: maps, fills and unshares the table. None if that failed.
fn make_table(tour: &Tour) -> Option<Table> {
    say!();
    say!("2. The table: {ROWS} rows of {{id, balance}} (u64 each, 8 MiB), every");
    say!("   balance {INITIAL}, so the balances add up to {TOTAL}.");
    // SAFETY: a fresh anonymous mapping touches no existing memory.
    let table = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            Table::BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if table == libc::MAP_FAILED {
        tour.surprise(&format!(
            "mmap of the table: {}",
            std::io::Error::last_os_error()
        ));
        return None;
    }
    let table = Table {
        addr: table as usize,
    };
    table.fill();
    if let Err(e) = mmview::unshare(table.addr as *const u8, Table::BYTES) {
        tour.surprise(&format!("MMVIEW_UNSHARE of the table -> {e}"));
        say!("   Without an unshared table there is nothing to snapshot; stopping.");
        return None;
    }
    let flags = vm_flags(table.addr).unwrap_or_default();
    say!("   MMVIEW_UNSHARE(table) -> 0: every view will have its own copy-on-write");
    say!("   copy of it; all other memory stays shared. smaps: VmFlags: {flags}");
    tour.expect(flags.split_whitespace().any(|f| f == "vu"), || {
        "the table is not marked \"vu\" (unshared) in smaps".into()
    });
    Some(table)
}

/// Steps 2 to 4: the table, the writer, the snapshots.
fn database(tour: &Tour) {
    let Some(table) = make_table(tour) else {
        return;
    };
    let shared = Shared {
        table,
        lock: Mutex::new(()),
        wanted: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        transfers: AtomicU64::new(0),
    };
    say!();
    say!("3. A writer thread in the base moves random amounts between random rows,");
    say!("   {BATCH} transfers per hold of the table lock, without pause. A reader");
    say!("   thread takes {ROUNDS} snapshots: under the lock it CREATEs a view, then");
    say!("   MIGRATEs into it and scans the table twice. Before each CREATE and");
    say!("   between the scans it waits until the writer has committed {PROGRESS}");
    say!("   more transfers. The transfer counter is ordinary (shared) memory: the");
    say!("   reader watches it from inside its view.");
    let spawned = thread::scope(|scope| {
        // Stops the writer however this closure ends, so that the scope's
        // join cannot hang.
        let _stop = StopOnDrop(&shared.stop);
        let shared = &shared;
        thread::Builder::new()
            .name("writer".into())
            .spawn_scoped(scope, move || writer(shared))?;
        let reader = thread::Builder::new()
            .name("reader".into())
            .spawn_scoped(scope, move || reader(shared, tour))?;
        if reader.join().is_err() {
            tour.surprise("the reader thread panicked");
        }
        Ok::<(), std::io::Error>(())
    });
    if let Err(e) = spawned {
        tour.surprise(&format!("starting a thread: {e}"));
    }
    // The writer has stopped (the scope joined it): a last look.
    let total = shared.transfers.load(Ordering::Relaxed);
    let end = table.scan();
    say!();
    say!(
        "4. The writer stopped after {total} transfers. The base table: sum {},",
        end.sum
    );
    say!(
        "   {} transfers recorded, {} rows with a wrong id.",
        end.transfers,
        end.bad_ids
    );
    check_consistent(tour, &end, "the base table at the end");
    tour.expect(end.transfers == total, || {
        format!(
            "the base table recorded {} transfers, the writer counted {total}",
            end.transfers
        )
    });
}

/// Counts a surprise for each way `scan` is not a consistent table.
fn check_consistent(tour: &Tour, scan: &Scan, what: &str) -> bool {
    let sum = tour.expect(scan.sum == TOTAL, || {
        format!(
            "{what}: the balances add up to {}, not {TOTAL} (off by {})",
            scan.sum,
            scan.sum.wrapping_sub(TOTAL) as i64
        )
    });
    let ids = tour.expect(scan.bad_ids == 0 && scan.header_ok, || {
        format!(
            "{what}: {} rows have a wrong id{}",
            scan.bad_ids,
            if scan.header_ok {
                ""
            } else {
                ", the header is damaged"
            }
        )
    });
    sum && ids
}

/// The reader: the snapshot rounds.
fn reader(shared: &Shared, tour: &Tour) {
    say!();
    let mut last = ViewId::BASE;
    for round in 1..=ROUNDS {
        match snapshot_round(shared, tour, round, last) {
            Some(view) => last = view,
            None => {
                say!("   (no further rounds)");
                return;
            }
        }
    }
}

/// What the reader saw inside a view.
struct Inside {
    current: mmview::Result<ViewId>,
    first: Scan,
    second: Scan,
    /// The shared transfer counter before and after the first scan, and
    /// before and after the second.
    seen: [u64; 4],
    waited_enough: bool,
}

/// One round: CREATE under the lock, MIGRATE in, scan, MIGRATE back,
/// DELETE, check. The new view, or None if the rounds cannot go on.
fn snapshot_round(shared: &Shared, tour: &Tour, round: usize, last: ViewId) -> Option<ViewId> {
    let table = shared.table;
    if !wait_for_progress(shared, shared.transfers.load(Ordering::Relaxed)) {
        tour.surprise(&format!(
            "round {round}: the writer did not commit {PROGRESS} transfers in {} s",
            PATIENCE.as_secs()
        ));
        return None;
    }
    let (created, at_create) =
        shared.locked(|| (mmview::create(), shared.transfers.load(Ordering::Relaxed)));
    let view = match created {
        Ok(view) => view,
        Err(e) => {
            tour.surprise(&format!("round {round}: MMVIEW_CREATE -> {e}"));
            return None;
        }
    };
    say!("   round {round}: CREATE -> view {view}, at transfer {at_create} (under the lock)");
    tour.expect(view > last, || {
        format!("view id {view} is not above the previous one, {last}")
    });

    // SAFETY: the memory rule (see the top of this file): this thread's
    // stack, the heap, stdout's lock and the table lock are shared memory,
    // identical in both views; the table, the only unshared range, is read
    // only through raw pointers with volatile loads derived after the
    // migration, and no reference into it is live across the call.
    let previous = unsafe { mmview::migrate(view) };
    match previous {
        Ok(ViewId::BASE) => {}
        Ok(other) => tour.surprise(&format!("MIGRATE({view}) returned {other}, expected 0")),
        Err(e) => {
            tour.surprise(&format!("MIGRATE({view}) -> {e}"));
            if let Err(e) = mmview::delete(view) {
                tour.surprise(&format!("DELETE({view}) -> {e}"));
            }
            return None;
        }
    }
    let inside = scan_in_view(shared);
    // SAFETY: as above; back to the base, whose copy of the table only the
    // writer touches (and this thread only under the lock).
    let back = unsafe { mmview::migrate(ViewId::BASE) };
    let back_ok = tour.expect(back == Ok(view), || {
        format!(
            "MIGRATE(0) from view {view} -> {}, expected {view}",
            shown(back)
        )
    });
    if let Err(e) = mmview::delete(view) {
        tour.surprise(&format!("DELETE({view}) -> {e}"));
    }

    let Inside {
        current,
        first,
        second,
        seen,
        waited_enough,
    } = inside;
    tour.expect(current == Ok(view), || {
        format!("MMVIEW_CURRENT in view {view} -> {}", shown(current))
    });
    say!(
        "            in view {view}: {ROWS} rows, sum {}{}, table at transfer {}",
        first.sum,
        if first.sum == TOTAL { " = total" } else { "" },
        first.transfers
    );
    check_consistent(tour, &first, &format!("the snapshot in view {view}"));
    tour.expect(first.transfers == at_create, || {
        format!(
            "the snapshot records {} transfers, {at_create} were committed at CREATE",
            first.transfers
        )
    });
    let same = first == second;
    say!(
        "            scanned twice: checksum {:#018x}{}",
        first.checksum,
        if same {
            " both times".to_string()
        } else {
            format!(", then {:#018x}", second.checksum)
        }
    );
    tour.expect(same, || {
        format!(
            "the snapshot changed between the scans (sum {} -> {}, transfers {} -> {})",
            first.sum, second.sum, first.transfers, second.transfers
        )
    });
    let (during1, during2) = (seen[1].wrapping_sub(seen[0]), seen[3].wrapping_sub(seen[2]));
    say!(
        "            shared counter read in view {view}: {} -> {} during scan 1 (+{during1}),",
        seen[0],
        seen[1],
    );
    say!(
        "            {} -> {} during scan 2 (+{during2}): {}",
        seen[2],
        seen[3],
        if during1 > 0 || during2 > 0 {
            "the writer kept going meanwhile"
        } else {
            "the writer did not get to run during the scans"
        }
    );
    tour.expect(
        seen[0] >= at_create && seen.windows(2).all(|w| w[0] <= w[1]),
        || format!("the shared counter went backwards in the view: {at_create}, then {seen:?}"),
    );
    tour.expect(waited_enough, || {
        format!(
            "the shared counter did not advance by {PROGRESS} in view {view} within {} s \
             (the writer never stops: is memory outside the table shared?)",
            PATIENCE.as_secs()
        )
    });
    if !back_ok {
        return None;
    }
    let (now, counted) = shared.locked(|| (table.scan(), shared.transfers.load(Ordering::Relaxed)));
    say!(
        "            back in view 0, view {view} deleted; the base table: transfer {}, sum {}",
        now.transfers,
        now.sum
    );
    check_consistent(tour, &now, "the base table");
    tour.expect(now.transfers == counted && now.transfers >= seen[3], || {
        format!(
            "the base table records {} transfers; the writer counted {counted}, the reader saw {}",
            now.transfers, seen[3]
        )
    });
    Some(view)
}

/// A view id, or the error, for a message.
fn shown(result: mmview::Result<ViewId>) -> String {
    match result {
        Ok(view) => format!("{view}"),
        Err(e) => e.to_string(),
    }
}

/// Waits until the writer's counter is `PROGRESS` above `from`; false if
/// that took longer than [`PATIENCE`].
fn wait_for_progress(shared: &Shared, from: u64) -> bool {
    let target = from.saturating_add(PROGRESS);
    let start = Instant::now();
    while shared.transfers.load(Ordering::Relaxed) < target {
        if start.elapsed() > PATIENCE {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// The reader's work inside the view.
fn scan_in_view(shared: &Shared) -> Inside {
    let counter = || shared.transfers.load(Ordering::Relaxed);
    let current = mmview::current();
    let seen0 = counter();
    let first = shared.table.scan();
    let seen1 = counter();
    let waited_enough = wait_for_progress(shared, seen1);
    let seen2 = counter();
    let second = shared.table.scan();
    let seen3 = counter();
    Inside {
        current,
        first,
        second,
        seen: [seen0, seen1, seen2, seen3],
        waited_enough,
    }
}
