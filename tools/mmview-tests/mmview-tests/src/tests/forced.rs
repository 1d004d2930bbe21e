//! Forced accesses into a view: writes through `/proc/<pid>/task/<tid>/mem`
//! and `PTRACE_POKEDATA` (both `FOLL_FORCE`, so they write read-only
//! private mappings too) behave as without views, and reach every view of
//! the shared memory; a core dump of a thread in a view holds the shared
//! memory that view never touched.
//!
//! The tests follow the memory rule of [`crate::util::view`]: every mapping
//! and thread is made before the first `MMVIEW_CREATE`, and unshared memory
//! is only touched through [`Region`].

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::named_tests;
use crate::check::{check_all, diag, ensure, ensure_eq, fail, skip, Context, Failure, TestResult};
use crate::framework::{describe_status, Test};
use crate::util::child;
use crate::util::mem::{page_size, pattern, pattern_word, verify_pattern};
use crate::util::process::fork;
use crate::util::procfs::set_temporarily;
use crate::util::sys::{errno_name, last_errno, mprotect, unlimit, ErrnoContext};
use crate::util::view::{prepare, threads_in_new_views, Region};

pub fn tests() -> Vec<Test> {
    named_tests![
        forced_proc_mem_write_readonly,
        forced_ptrace_poke,
        forced_core_dump_shared_untouched,
    ]
}

/// Seconds a forced write may take before the writer's alarm ends it (a
/// hang in the kernel, not a slow write: the writes are a few pages).
const HANG_ALARM: libc::c_uint = 30;

/// `mprotect(PROT_READ)` of the whole region (before the views exist).
fn make_read_only(region: &Region) -> TestResult {
    // SAFETY: our own mapping, which the test only reads from now on.
    unsafe { mprotect(region.addr(), region.len(), libc::PROT_READ) }
        .errno_context("mprotect(PROT_READ)")
}

/// Arms the alarm that ends a writer child whose forced access hangs.
fn arm_alarm() {
    // SAFETY: arms a timer for the calling process only.
    unsafe { libc::alarm(HANG_ALARM) };
}

/// A failure of a child that makes a forced access, explained if its
/// alarm ended it.
fn explain_alarm(failure: Failure) -> Failure {
    if failure.message().contains("SIGALRM") {
        Failure::new(format!(
            "{} (the forced access hung for {HANG_ALARM} s, and the child's alarm ended it)",
            failure.message()
        ))
    } else {
        failure
    }
}

/// Writes `data` at `addr` through the `mem` file at `path`, in one pwrite.
fn write_mem(path: &str, addr: usize, data: &[u8]) -> TestResult {
    let file = File::options()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {path} for writing"))?;
    let n = file
        .write_at(data, addr as u64)
        .with_context(|| format!("pwrite of {} bytes at {addr:#x} through {path}", data.len()))?;
    ensure_eq!(n, data.len(), "bytes written at {addr:#x} through {path}");
    Ok(())
}

/// Another process writes through /proc/<pid>/task/<tid>/mem, with tid a
/// thread in a view, into read-only private mappings (a FOLL_FORCE write):
/// 4 pages the base wrote before the views (view 1 had read two of them),
/// through view 1's thread, and 2 pages nobody touched, through view 2's.
/// The writes finish (a hang ends the writer by its alarm), write every
/// byte, and the base and both views read the written bytes.
fn forced_proc_mem_write_readonly() -> TestResult {
    const S0: u64 = 0xf00;
    const S1: u64 = 0xf01;
    const S2: u64 = 0xf02;
    prepare()?;
    let page = page_size();
    let written = Region::anon(4 * page)?;
    written.fill_all(S0);
    make_read_only(&written)?;
    let fresh = Region::anon(2 * page)?;
    make_read_only(&fresh)?;
    let data1 = pattern(written.len(), S1);
    let data2 = pattern(fresh.len(), S2);
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    a.run(|| {
        std::hint::black_box(written.read_pages(0, 2 * page));
        Ok(())
    })?;
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let path_a = format!("/proc/{pid}/task/{}/mem", a.tid());
    let path_b = format!("/proc/{pid}/task/{}/mem", b.tid());
    let writer = || {
        arm_alarm();
        write_mem(&path_a, written.addr(), &data1)?;
        write_mem(&path_b, fresh.addr(), &data2)?;
        Ok(0)
    };
    // SAFETY: the other threads wait idle in futex waits (they hold no lock
    // and are not allocating); glibc's malloc works in a forked child.
    let wrote = unsafe { child::run("the writer", writer) };
    wrote.map_err(explain_alarm)?;
    let check = || -> TestResult {
        written
            .verify_all(S1)
            .context("the pages written through view 1's thread")?;
        fresh
            .verify_all(S2)
            .context("the pages written through view 2's thread")
    };
    check_all([
        check().context("the base"),
        a.run(check).context("view 1"),
        b.run(check).context("view 2"),
    ])
}

/// The words [`forced_ptrace_poke`] pokes: one per page of each region,
/// at a different offset in each page.
fn pokes(regions: &[Region]) -> Vec<(usize, u64)> {
    let page = page_size();
    let mut out = Vec::new();
    for (r, region) in regions.iter().enumerate() {
        for p in 0..region.len() / page {
            let offset = p * page + 8 * (p + 1);
            let value = 0x9042_0000_0000_0000 | ((r as u64) << 16) | p as u64;
            out.push((region.addr() + offset, value));
        }
    }
    out
}

/// Checks that `region` holds the pattern `seed` except at the poked
/// words, which hold their values.
fn verify_poked(region: &Region, seed: u64, pokes: &[(usize, u64)]) -> TestResult {
    let mut wrong = 0;
    let mut first = None;
    for index in 0..region.len() / 8 {
        let addr = region.addr() + index * 8;
        let want = pokes
            .iter()
            .find(|&&(at, _)| at == addr)
            .map(|&(_, value)| value)
            .unwrap_or_else(|| u64::from_le_bytes(pattern_word(seed, index as u64)));
        let got = region.load(index * 8);
        if got != want {
            wrong += 1;
            first.get_or_insert((index * 8, got, want));
        }
    }
    match first {
        None => Ok(()),
        Some((offset, got, want)) => fail!(
            "{wrong} words wrong; first at offset {offset:#x}: got {got:#x}, expected {want:#x}"
        ),
    }
}

/// `ptrace(request, tid, addr, data)`: the result, or the errno.
fn ptrace(request: libc::c_uint, tid: libc::pid_t, addr: usize, data: usize) -> Result<i64, i32> {
    // SAFETY: errno is thread-local; clears it to tell a peeked -1 from an
    // error.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: the requests used here take integers (addresses in the
    // tracee are not dereferenced by us).
    let r = unsafe {
        libc::ptrace(
            request,
            tid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    };
    let errno = last_errno();
    if r == -1 && errno != 0 {
        Err(errno)
    } else {
        Ok(r)
    }
}

/// The tracer's work: seizes `tid`, stops it, pokes each word and peeks it
/// back, detaches.
fn poke_words(tid: libc::pid_t, words: &[(usize, u64)]) -> TestResult {
    ptrace(libc::PTRACE_SEIZE, tid, 0, 0).with_errno_context(|| format!("PTRACE_SEIZE({tid})"))?;
    ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0)
        .with_errno_context(|| format!("PTRACE_INTERRUPT({tid})"))?;
    let mut status = 0;
    // SAFETY: `status` is a valid out pointer.
    let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
    ensure!(r == tid, "waitpid({tid}): {}", errno_name(last_errno()));
    ensure!(
        libc::WIFSTOPPED(status),
        "the tracee did not stop: wait status {status:#x}"
    );
    for &(addr, value) in words {
        ptrace(libc::PTRACE_POKEDATA, tid, addr, value as usize)
            .with_errno_context(|| format!("PTRACE_POKEDATA at {addr:#x}"))?;
        let peeked = ptrace(libc::PTRACE_PEEKDATA, tid, addr, 0)
            .with_errno_context(|| format!("PTRACE_PEEKDATA at {addr:#x}"))?;
        ensure_eq!(
            peeked as u64,
            value,
            "PTRACE_PEEKDATA at {addr:#x} right after the poke"
        );
    }
    ptrace(libc::PTRACE_DETACH, tid, 0, 0).errno_context("PTRACE_DETACH")?;
    Ok(())
}

/// A tracer process seizes a thread in view 1, stops it and pokes
/// (PTRACE_POKEDATA) one word into each page of a read-only private
/// mapping (a FOLL_FORCE write) and of a writable one, peeking each back;
/// the pokes finish (a hang ends the tracer by its alarm) and succeed, and
/// the base and both views read the poked words, the rest unchanged.
fn forced_ptrace_poke() -> TestResult {
    const S0: u64 = 0x9040;
    prepare()?;
    let page = page_size();
    let read_only = Region::anon(4 * page)?;
    read_only.fill_all(S0);
    make_read_only(&read_only)?;
    let writable = Region::anon(4 * page)?;
    writable.fill_all(S0);
    let words = pokes(&[read_only, writable]);
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    // View 1 maps some of the pages (read, and written) before the pokes.
    a.run(|| {
        std::hint::black_box(read_only.read_pages(0, 2 * page));
        std::hint::black_box(writable.read_pages(0, 2 * page));
        writable.fill(page, page, S0);
        Ok(())
    })?;
    let tid = a.tid();
    let tracer = || {
        arm_alarm();
        poke_words(tid, &words)?;
        Ok(0)
    };
    // SAFETY: as in forced_proc_mem_write_readonly: the other threads are
    // idle; the tracer allocates only to report a failure.
    let traced = unsafe { child::run("the tracer", tracer) };
    traced.map_err(explain_alarm)?;
    let check = || -> TestResult {
        verify_poked(&read_only, S0, &words).context("the read-only mapping")?;
        verify_poked(&writable, S0, &words).context("the writable mapping")
    };
    check_all([
        check().context("the base"),
        a.run(check).context("view 1 (the tracee's)"),
        b.run(check).context("view 2"),
    ])
}

/// A PT_LOAD segment of an ELF core file.
#[derive(Debug)]
struct Load {
    vaddr: u64,
    offset: u64,
    filesz: u64,
    memsz: u64,
}

/// The little-endian number in `bytes[at..at + N]`.
fn le<const N: usize>(bytes: &[u8], at: usize) -> TestResult<u64> {
    let field: [u8; N] = bytes
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("ELF header field at {at} out of bounds"))?;
    let mut word = [0u8; 8];
    word[..N].copy_from_slice(&field);
    Ok(u64::from_le_bytes(word))
}

/// The PT_LOAD segments of the 64-bit little-endian ELF core `file`.
fn core_loads(file: &File) -> TestResult<Vec<Load>> {
    const PT_LOAD: u64 = 1;
    const ET_CORE: u64 = 4;
    const PN_XNUM: u64 = 0xffff;
    let mut ehdr = [0u8; 64];
    file.read_exact_at(&mut ehdr, 0)
        .context("reading the ELF header")?;
    ensure!(
        ehdr[..4] == *b"\x7fELF" && ehdr[4] == 2 && ehdr[5] == 1,
        "not a 64-bit little-endian ELF file: {:02x?}",
        &ehdr[..6]
    );
    ensure_eq!(le::<2>(&ehdr, 0x10)?, ET_CORE, "e_type");
    let phoff = le::<8>(&ehdr, 0x20)?;
    let shoff = le::<8>(&ehdr, 0x28)?;
    let phentsize = le::<2>(&ehdr, 0x36)?;
    let mut phnum = le::<2>(&ehdr, 0x38)?;
    ensure!(phentsize >= 56, "e_phentsize {phentsize}");
    if phnum == PN_XNUM {
        // The count is in sh_info of section header 0.
        let mut shdr = [0u8; 64];
        file.read_exact_at(&mut shdr, shoff)
            .context("reading section header 0")?;
        phnum = le::<4>(&shdr, 0x2c)?;
    }
    let mut loads = Vec::new();
    for i in 0..phnum {
        let mut phdr = [0u8; 56];
        file.read_exact_at(&mut phdr, phoff + i * phentsize)
            .with_context(|| format!("reading program header {i}"))?;
        if le::<4>(&phdr, 0)? == PT_LOAD {
            loads.push(Load {
                offset: le::<8>(&phdr, 8)?,
                vaddr: le::<8>(&phdr, 16)?,
                filesz: le::<8>(&phdr, 32)?,
                memsz: le::<8>(&phdr, 40)?,
            });
        }
    }
    Ok(loads)
}

/// The bytes of `region` as the core `file` holds them (the part of a
/// segment beyond its file size reads as zeros, as a debugger shows it).
fn core_bytes(file: &File, loads: &[Load], region: &Region) -> TestResult<Vec<u8>> {
    let (start, len) = (region.addr() as u64, region.len() as u64);
    let Some(load) = loads
        .iter()
        .find(|l| l.vaddr <= start && start + len <= l.vaddr + l.memsz)
    else {
        fail!("no PT_LOAD segment of the core covers {start:#x}+{len:#x}");
    };
    let mut buf = vec![0u8; region.len()];
    let skip = start - load.vaddr;
    let in_file = load.filesz.saturating_sub(skip).min(len) as usize;
    file.read_exact_at(&mut buf[..in_file], load.offset + skip)
        .with_context(|| format!("reading {start:#x} from the core"))?;
    if (in_file as u64) < len {
        diag!("the core has only {in_file} of the {len} bytes at {start:#x} (segment {load:?})");
    }
    Ok(buf)
}

/// The files in /tmp whose path starts with `prefix` (the core file named
/// after the core pattern, with whatever suffix the kernel added).
fn dumped_cores(prefix: &str) -> TestResult<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/tmp").context("listing /tmp")? {
        let path = entry.context("listing /tmp")?.path();
        let path = path.to_string_lossy().into_owned();
        if path.starts_with(prefix) {
            out.push(path);
        }
    }
    Ok(out)
}

/// The child of [`forced_core_dump_shared_untouched`]: fills the regions
/// in the base, unshares one, creates a view, moves its only thread there,
/// writes in the view, and aborts with core dumps enabled. Returns an exit
/// code only when a step fails.
fn core_child(untouched: Region, written: Region, unshared: Region) -> i32 {
    if prepare().is_err() {
        return 10;
    }
    untouched.fill_all(CORE_S0);
    written.fill_all(CORE_S0);
    unshared.fill_all(CORE_U0);
    if unshared.unshare().is_err() {
        return 11;
    }
    let Ok(view) = mmview::create() else {
        return 12;
    };
    // SAFETY: the memory rule: the stack and heap are shared, the unshared
    // range is only touched through Region.
    if unsafe { mmview::migrate(view) }.is_err() {
        return 13;
    }
    written.fill_all(CORE_S1);
    unshared.fill_all(CORE_U1);
    if unlimit(libc::RLIMIT_CORE).is_err() {
        return 14;
    }
    // SAFETY: plain system call with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) } != 0 {
        return 15;
    }
    // SAFETY: ends the process with SIGABRT (and a core dump).
    unsafe { libc::abort() }
}

const CORE_S0: u64 = 0xc0de0;
const CORE_S1: u64 = 0xc0de1;
const CORE_U0: u64 = 0xc0de2;
const CORE_U1: u64 = 0xc0de3;

/// A process whose only thread is in a view dumps core (SIGABRT): the core
/// holds that view's memory, including shared memory the base wrote before
/// the view existed and the view never touched, shared memory the view
/// wrote, and the view's own copy of unshared memory.
fn forced_core_dump_shared_untouched() -> TestResult {
    const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
    if std::fs::metadata(CORE_PATTERN).is_err() {
        skip!("no {CORE_PATTERN} (core dumps not built in)");
    }
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let prefix = format!("/tmp/mmview-forced-core-{me}");
    let _pattern = set_temporarily(CORE_PATTERN, &format!("{prefix}.%p"))?;
    let page = page_size();
    let untouched = Region::anon(8 * page)?;
    let written = Region::anon(4 * page)?;
    let unshared = Region::anon(4 * page)?;
    // SAFETY: the test child is single-threaded.
    let child = unsafe { fork(|| core_child(untouched, written, unshared)) }?;
    let status = child.wait()?;
    let cores = dumped_cores(&prefix)?;
    let core = cores.first().map(File::open);
    for path in &cores {
        let _ = std::fs::remove_file(path);
    }
    ensure!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGABRT,
        "the child {} (expected SIGABRT; exit codes 10-15 are setup steps that failed)",
        describe_status(status)
    );
    ensure!(
        libc::WCOREDUMP(status),
        "the child was killed by SIGABRT without dumping core"
    );
    let Some(core) = core else {
        fail!("the child dumped core, but no file {prefix}.* is there");
    };
    let core = core.with_context(|| format!("opening the core {}", cores[0]))?;
    let loads = core_loads(&core)?;
    let check = |region: &Region, seed: u64, what: &str| -> TestResult {
        let bytes = core_bytes(&core, &loads, region).context(what.to_string())?;
        let zero_pages = bytes
            .chunks(page)
            .filter(|p| p.iter().all(|&b| b == 0))
            .count();
        verify_pattern(&bytes, seed).with_context(|| {
            format!(
                "{what} in the core ({zero_pages} of {} pages all zeros)",
                region.len() / page
            )
        })
    };
    check_all([
        check(
            &untouched,
            CORE_S0,
            "shared memory the base wrote and the view never touched",
        ),
        check(&written, CORE_S1, "shared memory the view wrote"),
        check(&unshared, CORE_U1, "the view's copy of unshared memory"),
    ])
}
