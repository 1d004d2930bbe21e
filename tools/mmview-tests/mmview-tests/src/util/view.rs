//! Helpers for tests with views: memory that stays mapped, threads that run
//! closures (in whatever view they migrated to), and the preparation of the
//! test process.
//!
//! The tests of views keep the layout of the address space fixed while
//! views exist, so that they check what views do to memory and nothing
//! else: every mapping a test uses ([`Region`]) is made before its first
//! `MMVIEW_CREATE` and never unmapped (the test child's exit cleans up),
//! every thread ([`ViewThread`]) is started before it, and [`prepare`]
//! arranges that the heap and the main thread's stack need no system call
//! afterwards.
//!
//! Memory rule (what makes `mmview::migrate` sound here): stacks, the heap
//! and locks are in shared ranges; unshared memory is only touched through
//! [`Region`]'s methods, which derive a raw pointer from the address at
//! each access and use volatile loads and stores.

use std::cell::UnsafeCell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use mmview::ViewId;

use crate::check::{diag, ensure, ensure_eq, Context, Failure, TestResult};
use crate::util::mem::{page_size, pattern_word};
use crate::util::procfs::thread_smaps_entries;
use crate::util::sys::sys;

/// Heap made available up front by [`prepare`] (besides the pad).
const HEAP_RESERVE: usize = 8 << 20;
/// The slack glibc adds to each extension of the heap.
const HEAP_TOP_PAD: libc::c_int = 16 << 20;
/// Allocations below this come from the heap, not from mmap.
const MMAP_THRESHOLD: libc::c_int = 16 << 20;
/// Main-thread stack grown (and touched) up front by [`prepare`].
const STACK_RESERVE: usize = 1 << 20;

/// Prepares the test process for views; call it first, before any thread
/// is started.
///
/// - glibc malloc gets one arena (no per-thread arena is mapped at a
///   thread's first allocation), never trims the heap, serves everything
///   below 16 MiB from the heap and grows it with 16 MiB of slack; then the
///   heap is grown by 8 MiB, so that the allocations of a test need no
///   `brk`/`mmap`/`munmap` afterwards.
/// - The main thread's stack (a growing mapping) is grown by 1 MiB.
pub fn prepare() -> TestResult {
    #[cfg(target_env = "gnu")]
    for (param, value, name) in [
        (libc::M_ARENA_MAX, 1, "M_ARENA_MAX"),
        (libc::M_TRIM_THRESHOLD, libc::c_int::MAX, "M_TRIM_THRESHOLD"),
        (libc::M_TOP_PAD, HEAP_TOP_PAD, "M_TOP_PAD"),
        (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD, "M_MMAP_THRESHOLD"),
    ] {
        // SAFETY: mallopt only changes malloc's tunables.
        let ok = unsafe { libc::mallopt(param, value) };
        ensure!(ok == 1, "mallopt({name}, {value}) failed");
    }
    let reserve: Vec<u8> = Vec::with_capacity(HEAP_RESERVE);
    drop(std::hint::black_box(reserve));
    grow_stack();
    Ok(())
}

/// Touches `STACK_RESERVE` bytes below the current stack pointer.
#[inline(never)]
fn grow_stack() {
    let mut probe = [0u8; STACK_RESERVE];
    let page = page_size();
    for offset in (0..STACK_RESERVE).step_by(page).rev() {
        probe[offset] = 1;
    }
    std::hint::black_box(&mut probe);
}

/// Ends `what` with the errno of the last failed libc call.
fn os_failure(what: impl std::fmt::Display) -> Failure {
    Failure::new(format!("{what}: {}", io::Error::last_os_error()))
}

/// A mapping made before the views of a test and never unmapped (it lives
/// until the test child exits). Only an address and a length: it is `Copy`,
/// and every access goes through a raw pointer derived on the spot, with
/// volatile loads and stores, so it may be used from any view, for shared
/// and unshared ranges alike.
///
/// Patterns are position-dependent: the 8 bytes at region offset `o` of the
/// pattern `seed` are `pattern_word(seed, o / 8)`, as
/// [`fill_pattern`](crate::util::mem::fill_pattern) writes them into a
/// buffer that starts at offset 0. Offsets and lengths are multiples of 8.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    addr: usize,
    len: usize,
}

impl Region {
    /// `len` bytes of private anonymous memory (shared between views unless
    /// unshared), in base pages (`MADV_NOHUGEPAGE`), not touched.
    pub fn anon(len: usize) -> TestResult<Region> {
        let region = Self::map(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1)?;
        // SAFETY: advice on our fresh mapping; its memory is not touched.
        if unsafe { libc::madvise(region.addr as *mut _, len, libc::MADV_NOHUGEPAGE) } != 0 {
            return Err(os_failure("madvise(MADV_NOHUGEPAGE)"));
        }
        Ok(region)
    }

    /// The memory at `[addr, addr + len)`, mapped by someone else (a heap
    /// grown with `sbrk`), which the caller keeps mapped while it uses it.
    pub fn at(addr: usize, len: usize) -> Region {
        Region { addr, len }
    }

    /// `len` bytes of `MAP_SHARED | MAP_ANONYMOUS` memory.
    pub fn anon_shared(len: usize) -> TestResult<Region> {
        Self::map(len, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1)
    }

    /// The first `len` bytes of `file`, mapped read-write with `flags`
    /// (`MAP_PRIVATE` or `MAP_SHARED`).
    pub fn file(file: &File, len: usize, flags: libc::c_int) -> TestResult<Region> {
        Self::map(len, flags, file.as_raw_fd())
    }

    fn map(len: usize, flags: libc::c_int, fd: libc::c_int) -> TestResult<Region> {
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a new mapping at an address the kernel picks touches no
        // existing memory.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(os_failure(format_args!(
                "mmap of {len} bytes (flags {flags:#x}, fd {fd})"
            )));
        }
        Ok(Region {
            addr: ptr as usize,
            len,
        })
    }

    /// The start address.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// A new anonymous private region filled with the pattern `seed`, then
    /// designated unshared (before the views it is meant for exist).
    pub fn anon_unshared(len: usize, seed: u64) -> TestResult<Region> {
        let region = Region::anon(len)?;
        region.fill_all(seed);
        region.unshare()?;
        Ok(region)
    }

    /// `MMVIEW_UNSHARE` of the whole region.
    pub fn unshare(&self) -> TestResult {
        mmview::unshare(self.addr as *const u8, self.len)
            .with_context(|| format!("MMVIEW_UNSHARE({:#x}, {:#x})", self.addr, self.len))
    }

    /// `madvise(advice)` on `[offset, offset + len)` of the region, from the
    /// calling thread's view; the errno on failure. The region's memory is
    /// only reached through `Region` (raw pointers), so advice that drops
    /// pages only makes them read as zeros.
    pub fn madvise(&self, offset: usize, len: usize, advice: libc::c_int) -> Result<(), i32> {
        // SAFETY: advice on memory of the region (the caller's own mapping),
        // which no reference points into (see above).
        sys(unsafe { libc::madvise((self.addr + offset) as *mut libc::c_void, len, advice) })
            .map(drop)
    }

    /// The word at `offset`, as a pointer. Panics outside the region.
    fn word(&self, offset: usize) -> *mut u64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len,
            "offset {offset:#x} in a {:#x}-byte region",
            self.len
        );
        (self.addr + offset) as *mut u64
    }

    /// Checks that `[offset, offset + len)` lies in the region, in words.
    fn words(&self, offset: usize, len: usize) -> std::ops::Range<usize> {
        assert!(
            offset.is_multiple_of(8) && len.is_multiple_of(8) && offset + len <= self.len,
            "range {offset:#x}+{len:#x} in a {:#x}-byte region",
            self.len
        );
        offset / 8..(offset + len) / 8
    }

    /// Loads the word at `offset`.
    pub fn load(&self, offset: usize) -> u64 {
        // SAFETY: the word lies in the region, which stays mapped and
        // readable for the life of the process.
        unsafe { self.word(offset).read_volatile() }
    }

    /// Stores `value` at `offset`.
    pub fn store(&self, offset: usize, value: u64) {
        // SAFETY: as for `load`; the region is writable.
        unsafe { self.word(offset).write_volatile(value) }
    }

    /// Writes the pattern `seed` into `[offset, offset + len)`.
    pub fn fill(&self, offset: usize, len: usize, seed: u64) {
        for index in self.words(offset, len) {
            let value = u64::from_le_bytes(pattern_word(seed, index as u64));
            self.store(index * 8, value);
        }
    }

    /// Writes the pattern `seed` into the whole region.
    pub fn fill_all(&self, seed: u64) {
        self.fill(0, self.len, seed);
    }

    /// The offset of the first word in `[offset, offset + len)` that is
    /// not `want(index)`, with what it holds, and the count of wrong words.
    fn first_mismatch(
        &self,
        offset: usize,
        len: usize,
        want: impl Fn(usize) -> u64,
    ) -> Option<(usize, u64, u64, usize)> {
        let mut first = None;
        let mut wrong = 0;
        for index in self.words(offset, len) {
            let got = self.load(index * 8);
            if got != want(index) {
                wrong += 1;
                first.get_or_insert((index * 8, got, want(index)));
            }
        }
        first.map(|(at, got, want)| (at, got, want, wrong))
    }

    /// Whether `[offset, offset + len)` holds the pattern `seed`. Allocates
    /// nothing (usable in a child forked from a multithreaded process).
    pub fn matches(&self, offset: usize, len: usize, seed: u64) -> bool {
        self.first_mismatch(offset, len, |i| pattern_word_u64(seed, i))
            .is_none()
    }

    /// Checks that `[offset, offset + len)` holds the pattern `seed`; the
    /// failure names the first wrong word and how many are wrong.
    pub fn verify(&self, offset: usize, len: usize, seed: u64) -> TestResult {
        match self.first_mismatch(offset, len, |i| pattern_word_u64(seed, i)) {
            None => Ok(()),
            Some((at, got, want, wrong)) => Err(Failure::new(format!(
                "{wrong} of {} words differ from pattern {seed:#x} in {offset:#x}+{len:#x}; \
                 first at offset {at:#x}: got {got:#018x}, expected {want:#018x}{}",
                len / 8,
                describe_word(got)
            ))),
        }
    }

    /// Checks that the whole region holds the pattern `seed`.
    pub fn verify_all(&self, seed: u64) -> TestResult {
        self.verify(0, self.len, seed)
    }

    /// Checks that `[offset, offset + len)` reads as zeros.
    pub fn verify_zero(&self, offset: usize, len: usize) -> TestResult {
        match self.first_mismatch(offset, len, |_| 0) {
            None => Ok(()),
            Some((at, got, _, wrong)) => Err(Failure::new(format!(
                "{wrong} of {} words in {offset:#x}+{len:#x} are not zero; first at offset \
                 {at:#x}: {got:#018x}",
                len / 8
            ))),
        }
    }

    /// Loads one word of every page of `[offset, offset + len)` (a read
    /// fault where nothing is mapped yet); their wrapping sum.
    pub fn read_pages(&self, offset: usize, len: usize) -> u64 {
        let page = page_size();
        self.words(offset, len)
            .step_by(page / 8)
            .fold(0u64, |sum, index| sum.wrapping_add(self.load(index * 8)))
    }

    /// The word at `offset` as an atomic. The region must be shared, or the
    /// reference must not outlive the statement that uses it (in unshared
    /// memory it is the calling thread's view's copy, and it must not see
    /// different memory after a migration).
    pub fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: the word is in the region (aligned, as `word` checks),
        // which stays mapped for the life of the process; the caller keeps
        // it shared, and all its accesses are atomic.
        unsafe { AtomicU64::from_ptr(self.word(offset)) }
    }

    /// The 4 bytes at `offset` (a multiple of 8) as an atomic, e.g. a futex
    /// word. The region must be shared.
    pub fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: as for `atomic_u64`; the first half of an aligned word is
        // aligned for a u32.
        unsafe { AtomicU32::from_ptr(self.word(offset).cast()) }
    }
}

/// The pattern word at word index `index`, as the little-endian number a
/// load of it returns.
fn pattern_word_u64(seed: u64, index: usize) -> u64 {
    u64::from_le_bytes(pattern_word(seed, index as u64))
}

/// A hint for a wrong word: zeros usually mean a page that was never
/// copied (or a lost one).
fn describe_word(got: u64) -> &'static str {
    if got == 0 {
        " (zero)"
    } else {
        ""
    }
}

/// `futex(2)` on `word` with `op` (`FUTEX_WAIT`, `FUTEX_WAKE`, possibly
/// with `FUTEX_PRIVATE_FLAG`): what it returned, or the errno.
pub fn futex(
    word: &AtomicU32,
    op: libc::c_int,
    value: u32,
    timeout: Option<&libc::timespec>,
) -> Result<i64, i32> {
    let timeout = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32; `timeout` is null or a valid
    // timespec; WAIT and WAKE do not use the other arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            value,
            timeout,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(ret)
    }
}

/// The longest a helper sleeps in one FUTEX_WAIT before it looks again.
const POLL: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 10_000_000,
};

/// Waits while `pending(value of word)` holds; returns the value that ended
/// the wait. Sleeps in FUTEX_WAIT, but at most [`POLL`] at a time: the
/// helpers must not depend on wake-ups crossing views (that is what the
/// futex tests check), so a lost one costs 10 ms, not a hang.
fn wait_while(word: &AtomicU32, pending: impl Fn(u32) -> bool) -> u32 {
    loop {
        let value = word.load(Ordering::Acquire);
        if !pending(value) {
            return value;
        }
        let _ = futex(
            word,
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            value,
            Some(&POLL),
        );
    }
}

/// Wakes every thread in FUTEX_WAIT on `word`.
fn wake_all(word: &AtomicU32) {
    let _ = futex(
        word,
        libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
        i32::MAX as u32,
        None,
    );
}

/// A one-shot meeting point for `n` threads, in any views: [`wait`]
/// returns once all `n` have called it. Unlike `std::sync::Barrier` it
/// does not depend on wake-ups crossing views.
///
/// [`wait`]: Rendezvous::wait
pub struct Rendezvous {
    arrived: AtomicU32,
    n: u32,
}

impl Rendezvous {
    /// A meeting point for `n` threads.
    pub fn new(n: usize) -> Rendezvous {
        Rendezvous {
            arrived: AtomicU32::new(0),
            n: u32::try_from(n).unwrap_or(u32::MAX),
        }
    }

    /// Arrives and waits for the others.
    pub fn wait(&self) {
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 >= self.n {
            wake_all(&self.arrived);
        } else {
            wait_while(&self.arrived, |arrived| arrived < self.n);
        }
    }
}

/// A thread that runs closures on request, in whatever view it migrated
/// to. Start every one a test needs before its first `MMVIEW_CREATE` (a new
/// thread's stack is a new mapping): `spawn` returns once the thread runs.
///
/// [`ViewThread::run`] hands it a closure and waits for the result;
/// [`run_together`] starts closures on several threads at once. Neither
/// allocates per call nor takes a lock, and a wake-up lost between views
/// only delays them (see [`wait_while`]). A panic in a closure is reported
/// as a failure.
///
/// The thread is not joined: dropping the handle leaves it parked (in its
/// view) until the test child exits, so that no thread exits while views
/// exist (its stack would be unmapped).
pub struct ViewThread {
    name: String,
    shared: Arc<Shared>,
    tid: libc::pid_t,
}

/// A closure to run, with its type erased: `call(data)` runs it.
struct Job {
    call: unsafe fn(*mut ()),
    data: *mut (),
}

/// The states of a [`ViewThread`]: starting, waiting for a job, a job
/// posted, the job returned or panicked, asked to stop.
const STARTING: u32 = 0;
const IDLE: u32 = 1;
const POSTED: u32 = 2;
const RETURNED: u32 = 3;
const PANICKED: u32 = 4;
const QUIT: u32 = 5;

/// What a [`ViewThread`] and its callers share.
///
/// Protocol: a caller takes `busy` (0 → 1), puts its job into `job` and
/// sets `state` to POSTED (release); the thread sees POSTED (acquire),
/// takes the job, runs it and sets RETURNED or PANICKED (release); the
/// caller sees that (acquire), sets IDLE and frees `busy`.
struct Shared {
    state: AtomicU32,
    busy: AtomicU32,
    tid: AtomicI32,
    job: UnsafeCell<Option<Job>>,
}

// SAFETY: `job` is written only by the caller holding `busy` while the
// state is IDLE, and read only by the thread after it saw POSTED; the
// release/acquire pairs on `state` order those accesses. A Job is only made
// (in `post`) from a closure that is `Send`.
unsafe impl Sync for Shared {}
// SAFETY: as above.
unsafe impl Send for Shared {}

impl ViewThread {
    /// Starts a thread named `name`, in the caller's view; returns once it
    /// runs (and has done its first allocation).
    pub fn spawn(name: &str) -> TestResult<ViewThread> {
        let shared = Arc::new(Shared {
            state: AtomicU32::new(STARTING),
            busy: AtomicU32::new(0),
            tid: AtomicI32::new(0),
            job: UnsafeCell::new(None),
        });
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || worker_main(&worker))
            .with_context(|| format!("starting thread {name}"))?;
        wait_while(&shared.state, |state| state == STARTING);
        let tid = shared.tid.load(Ordering::Acquire);
        Ok(ViewThread {
            name: name.to_string(),
            shared,
            tid,
        })
    }

    /// `n` threads named `prefix-0`, ..., `prefix-<n-1>`.
    pub fn spawn_many(prefix: &str, n: usize) -> TestResult<Vec<ViewThread>> {
        (0..n)
            .map(|i| ViewThread::spawn(&format!("{prefix}-{i}")))
            .collect()
    }

    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The thread's kernel id (for /proc/self/task/<tid>).
    #[allow(dead_code)] // part of the helper's API; no test needs it yet
    pub fn tid(&self) -> libc::pid_t {
        self.tid
    }

    /// Runs `f` on the thread and returns its result.
    pub fn run<T, F>(&self, f: F) -> TestResult<T>
    where
        T: Send,
        F: FnOnce() -> TestResult<T> + Send,
    {
        let mut f = Some(f);
        let mut out = None;
        let returned = {
            let mut job = || {
                if let Some(f) = f.take() {
                    out = Some(f());
                }
            };
            // SAFETY: `job` lives until the end of this block, and `collect`
            // returns only once the thread is done with it.
            unsafe { self.post(&mut job) };
            self.collect()
        };
        self.outcome(returned, out)
    }

    /// `MMVIEW_MIGRATE(view)` on the thread; the view it was in.
    ///
    /// # Safety
    ///
    /// As for [`mmview::migrate`]: the closures the thread runs afterwards
    /// touch unshared memory only through [`Region`] (the module's rule).
    pub unsafe fn migrate(&self, view: ViewId) -> TestResult<ViewId> {
        self.run(move || {
            // SAFETY: the thread's stack and the heap are shared, and the
            // caller vouches for the closures that run after it.
            let previous = unsafe { mmview::migrate(view) };
            previous.with_context(|| format!("MMVIEW_MIGRATE({view})"))
        })
        .with_context(|| format!("thread {}", self.name))
    }

    /// [`ViewThread::migrate`], failing unless the thread was in `from`.
    ///
    /// # Safety
    ///
    /// As for [`ViewThread::migrate`].
    pub unsafe fn migrate_from(&self, view: ViewId, from: ViewId) -> TestResult {
        // SAFETY: forwarded to the caller.
        let previous = unsafe { self.migrate(view) }?;
        ensure!(
            previous == from,
            "thread {}: MMVIEW_MIGRATE({view}) returned {previous}, expected {from} (the view \
             it was in)",
            self.name
        );
        Ok(())
    }

    /// `MMVIEW_CURRENT` on the thread.
    pub fn current(&self) -> TestResult<ViewId> {
        self.run(|| mmview::current().context("MMVIEW_CURRENT"))
            .with_context(|| format!("thread {}", self.name))
    }

    /// Posts a job and returns at once; [`ViewThread::collect`] waits for it.
    ///
    /// # Safety
    ///
    /// `job` must stay alive (and not be used) until `collect` returns.
    unsafe fn post<J: FnMut() + Send>(&self, job: &mut J) {
        /// Runs the `J` at `data`.
        ///
        /// # Safety
        ///
        /// `data` points to a live `J` that nothing else uses meanwhile.
        unsafe fn call<J: FnMut()>(data: *mut ()) {
            // SAFETY: guaranteed by the caller.
            unsafe { (*data.cast::<J>())() }
        }
        let job = Job {
            call: call::<J>,
            data: (job as *mut J).cast(),
        };
        let shared = &*self.shared;
        while shared
            .busy
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            wait_while(&shared.busy, |busy| busy != 0);
        }
        // SAFETY: we hold `busy` and the state is IDLE: the thread does not
        // touch the slot (see `Shared`).
        unsafe { *shared.job.get() = Some(job) };
        shared.state.store(POSTED, Ordering::Release);
        wake_all(&shared.state);
    }

    /// Waits until the posted job is done; false if it panicked.
    fn collect(&self) -> bool {
        let shared = &*self.shared;
        let state = wait_while(&shared.state, |state| state == POSTED);
        shared.state.store(IDLE, Ordering::Release);
        shared.busy.store(0, Ordering::Release);
        wake_all(&shared.busy);
        state == RETURNED
    }

    fn outcome<T>(&self, returned: bool, out: Option<TestResult<T>>) -> TestResult<T> {
        match out {
            Some(result) if returned => result,
            _ => Err(Failure::new(format!(
                "thread {} panicked (see the diagnostics)",
                self.name
            ))),
        }
    }
}

impl Drop for ViewThread {
    fn drop(&mut self) {
        // No job is in flight: `run` and `run_together` collect theirs.
        self.shared.state.store(QUIT, Ordering::Release);
        wake_all(&self.shared.state);
    }
}

/// The body of a [`ViewThread`].
fn worker_main(shared: &Shared) {
    // The thread's first allocation, before any view exists (with several
    // malloc arenas it would map one; it also sets up glibc's tcache).
    drop(std::hint::black_box(Box::new([0u8; 64])));
    // SAFETY: gettid has no preconditions.
    shared
        .tid
        .store(unsafe { libc::gettid() }, Ordering::Release);
    shared.state.store(IDLE, Ordering::Release);
    wake_all(&shared.state);
    loop {
        let state = wait_while(&shared.state, |state| state != POSTED && state != QUIT);
        if state == QUIT {
            break;
        }
        // SAFETY: the state is POSTED, so the caller is done with the slot.
        let job = unsafe { (*shared.job.get()).take() };
        let returned = job.is_some_and(|job| {
            let run = || {
                // SAFETY: the poster keeps the closure alive and unused
                // until it collects the result, which it cannot before the
                // state is set below.
                unsafe { (job.call)(job.data) }
            };
            panic::catch_unwind(AssertUnwindSafe(run)).is_ok()
        });
        let done = if returned { RETURNED } else { PANICKED };
        shared.state.store(done, Ordering::Release);
        wake_all(&shared.state);
    }
    // Stay until the process exits: an exiting thread unmaps its stack.
    loop {
        std::thread::park();
    }
}

/// Runs `f(0)`, ..., `f(n - 1)` at the same time on the `n` (distinct)
/// `threads` and waits for all of them. Fails with the first failure (the
/// others become diagnostics).
pub fn run_together<T, F>(threads: &[&ViewThread], f: F) -> TestResult<Vec<T>>
where
    T: Send,
    F: Fn(usize) -> TestResult<T> + Sync,
{
    for (i, a) in threads.iter().enumerate() {
        if threads[..i]
            .iter()
            .any(|b| Arc::ptr_eq(&a.shared, &b.shared))
        {
            return Err(Failure::new(format!(
                "run_together: thread {} is listed twice",
                a.name
            )));
        }
    }
    let f = &f;
    let mut outs: Vec<Option<TestResult<T>>> = threads.iter().map(|_| None).collect();
    let mut returned: Vec<bool> = Vec::with_capacity(threads.len());
    {
        let mut jobs: Vec<_> = outs
            .iter_mut()
            .enumerate()
            .map(|(i, out)| move || *out = Some(f(i)))
            .collect();
        for (thread, job) in threads.iter().zip(jobs.iter_mut()) {
            // SAFETY: `jobs` lives until the end of this block, after every
            // thread's job is collected below.
            unsafe { thread.post(job) };
        }
        returned.extend(threads.iter().map(|thread| thread.collect()));
    }
    let mut values = Vec::with_capacity(threads.len());
    let mut failures = Vec::new();
    for ((thread, out), returned) in threads.iter().zip(outs).zip(returned) {
        match thread.outcome(returned, out) {
            Ok(value) => values.push(value),
            Err(failure) => failures.push(Failure::new(format!("{}: {failure}", thread.name))),
        }
    }
    match failures.len() {
        0 => Ok(values),
        1 => Err(failures.remove(0)),
        n => {
            for failure in &failures {
                diag!("{failure}");
            }
            Err(Failure::new(format!(
                "{} (and {} more failures)",
                failures[0],
                n - 1
            )))
        }
    }
}

/// `MMVIEW_CREATE`, with `what` in the failure.
pub fn create(what: &str) -> TestResult<ViewId> {
    mmview::create().with_context(|| format!("MMVIEW_CREATE ({what})"))
}

/// Fails unless the calling thread is in `view`.
pub fn expect_current(view: ViewId, what: &str) -> TestResult {
    let current = mmview::current().context("MMVIEW_CURRENT")?;
    ensure_eq!(current, view, "MMVIEW_CURRENT of {what}");
    Ok(())
}

/// `MMVIEW_MIGRATE(view)` of the calling thread; fails unless it was in
/// `from`.
///
/// # Safety
///
/// As for [`mmview::migrate`]; the tests follow the memory rule.
pub unsafe fn migrate_from(view: ViewId, from: ViewId, what: &str) -> TestResult {
    // SAFETY: forwarded to the caller.
    let previous = unsafe { mmview::migrate(view) }
        .with_context(|| format!("MMVIEW_MIGRATE({view}) of {what}"))?;
    ensure_eq!(
        previous,
        from,
        "MMVIEW_MIGRATE({view}) of {what}: the previous view"
    );
    Ok(())
}

/// `N` views and a thread in each: starts the threads `in-view-1`, ...,
/// `in-view-N`, creates views 1 to N (`MMVIEW_CREATE (view i)` in a
/// failure), then moves thread i from the base into view i. Returns each
/// thread with its view. Call it once the caller has mapped what it needs
/// (the threads start before the first `MMVIEW_CREATE`).
///
/// # Safety
///
/// As for [`ViewThread::migrate`]: the closures the threads run afterwards
/// follow the memory rule of this module.
pub unsafe fn threads_in_new_views<const N: usize>() -> TestResult<[(ViewThread, ViewId); N]> {
    let threads = (1..=N)
        .map(|i| ViewThread::spawn(&format!("in-view-{i}")))
        .collect::<TestResult<Vec<_>>>()?;
    let views = (1..=N)
        .map(|i| create(&format!("view {i}")))
        .collect::<TestResult<Vec<_>>>()?;
    for (thread, &view) in threads.iter().zip(&views) {
        // SAFETY: forwarded to the caller.
        unsafe { thread.migrate_from(view, ViewId::BASE)? };
    }
    let pairs: Vec<(ViewThread, ViewId)> = threads.into_iter().zip(views).collect();
    pairs
        .try_into()
        .map_err(|_| Failure::new(format!("threads_in_new_views: not {N} threads")))
}

/// The sum of the smaps field `field` (`Rss`, `Swap`: kB) of the calling
/// thread's view over the mappings that overlap `region` (a mapping merged
/// with a neighbour counts the neighbour's pages too).
pub fn thread_smaps_kib(region: &Region, field: &str) -> TestResult<u64> {
    thread_smaps_entries(region.addr(), region.addr() + region.len())?
        .iter()
        .map(|e| e.field(field))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_patterns_are_positional() -> TestResult {
        let region = Region::anon(4 * page_size())?;
        region.verify_zero(0, region.len())?;
        region.fill_all(5);
        region.verify_all(5)?;
        region.verify(page_size(), page_size(), 5)?;
        assert!(region.matches(8, 16, 5));
        let mut buf = vec![0u8; region.len()];
        crate::util::mem::fill_pattern(&mut buf, 5);
        // SAFETY: the region is readable and `len` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(region.addr() as *const u8, region.len()) };
        assert_eq!(bytes, &buf[..]);
        region.store(2 * page_size() + 8, 0);
        let msg = region
            .verify_all(5)
            .err()
            .map(|f| f.to_string())
            .unwrap_or_default();
        assert!(msg.starts_with("1 of 2048 words differ"), "{msg}");
        assert!(
            msg.contains("offset 0x2008") && msg.ends_with("(zero)"),
            "{msg}"
        );
        assert!(!region.matches(0, region.len(), 5));
        assert!(region.verify_zero(0, 8).is_err());
        region.atomic_u64(16).fetch_add(1, Ordering::SeqCst);
        region.atomic_u32(24).store(7, Ordering::SeqCst);
        assert_eq!(region.load(24) & 0xffff_ffff, 7);
        Ok(())
    }

    #[test]
    fn threads_run_closures() -> TestResult {
        let a = ViewThread::spawn("a")?;
        let b = ViewThread::spawn("b")?;
        assert_ne!(a.tid(), b.tid());
        let mut local = 5;
        let got = a.run(|| {
            local += 1;
            // SAFETY: gettid has no preconditions.
            Ok(unsafe { libc::gettid() })
        })?;
        assert_eq!((got, local), (a.tid(), 6));
        let failed = b.run(|| -> TestResult { Err(Failure::new("no")) });
        assert_eq!(failed.err().map(|f| f.to_string()).as_deref(), Some("no"));
        let meet = Rendezvous::new(2);
        let tids = run_together(&[&a, &b], |i| {
            meet.wait();
            // SAFETY: gettid has no preconditions.
            Ok((i, unsafe { libc::gettid() }))
        })?;
        assert_eq!(tids, vec![(0, a.tid()), (1, b.tid())]);
        let twice = run_together(&[&a, &a], |_| Ok(()));
        assert!(twice.is_err());
        let failing = run_together(&[&a, &b], |i| {
            crate::check::ensure!(i == 0, "thread {i} fails");
            Ok(())
        });
        assert_eq!(
            failing.err().map(|f| f.to_string()).as_deref(),
            Some("b: thread 1 fails")
        );
        Ok(())
    }

    #[test]
    fn a_panicking_closure_fails() -> TestResult {
        let a = ViewThread::spawn("p")?;
        let r = a.run(|| -> TestResult { panic!("expected in this test") });
        assert!(r.is_err());
        assert_eq!(a.run(|| Ok(3))?, 3);
        Ok(())
    }
}
