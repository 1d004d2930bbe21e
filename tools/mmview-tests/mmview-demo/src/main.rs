//! `mmview-demo`: a short tour of the mmview(2) system call as this kernel
//! has it. Exits with 0 when everything behaved as the specification says.

use std::io::Write;
use std::thread;

use mmview::{Error, ViewId, MMVIEW_CREATE, MMVIEW_CURRENT};

/// Prints a line; a closed stdout is not worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Counts what did not go as expected.
#[derive(Default)]
struct Tour {
    surprises: usize,
}

impl Tour {
    fn surprise(&mut self, what: &str) {
        self.surprises += 1;
        say!("   !! unexpected: {what}");
    }
}

fn main() -> std::process::ExitCode {
    say!("mmview demo: several views of one address space");
    say!("=================================================");
    say!();
    let mut tour = Tour::default();
    if !which_view(&mut tour) {
        return std::process::ExitCode::FAILURE;
    }
    threads_share_the_view(&mut tour);
    arguments_are_checked(&mut tour);
    designating_a_table(&mut tour);
    what_comes_next(&mut tour);
    say!();
    if tour.surprises == 0 {
        say!("Everything behaved as the specification says.");
        std::process::ExitCode::SUCCESS
    } else {
        say!(
            "{} thing(s) did not behave as the specification says.",
            tour.surprises
        );
        std::process::ExitCode::FAILURE
    }
}

/// Step 1; false if the kernel has no mmview at all.
fn which_view(tour: &mut Tour) -> bool {
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

fn threads_share_the_view(tour: &mut Tour) {
    const THREADS: usize = 4;
    say!();
    say!("2. Views belong to threads. New threads start in their creator's view:");
    let results: Vec<_> = thread::scope(|scope| {
        let handles: Vec<_> = (1..=THREADS)
            .map(|_| scope.spawn(mmview::current))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    for (n, result) in results.into_iter().enumerate() {
        match result {
            Ok(Ok(view)) => {
                say!("   thread {} -> view {view}", n + 1);
                if view != ViewId::BASE {
                    tour.surprise("a new thread is not in its creator's view");
                }
            }
            Ok(Err(e)) => tour.surprise(&format!("thread {}: MMVIEW_CURRENT -> {e}", n + 1)),
            Err(_) => tour.surprise(&format!("thread {} panicked", n + 1)),
        }
    }
}

fn arguments_are_checked(tour: &mut Tour) {
    say!();
    say!("3. Bad arguments are refused, and change nothing:");
    let calls = [
        ("unknown op 42", 42, 0, 0),
        ("MMVIEW_CURRENT with arg1 = 1", MMVIEW_CURRENT, 1, 0),
        ("MMVIEW_CREATE with arg2 = 1", MMVIEW_CREATE, 0, 1),
    ];
    for (what, op, arg1, arg2) in calls {
        // SAFETY: none of these calls is MMVIEW_MIGRATE.
        let ret = unsafe { mmview::raw_mmview(op, arg1, arg2) };
        let shown = match i32::try_from(-ret) {
            Ok(errno) if ret < 0 => Error::from_errno(errno).to_string(),
            _ => format!("returned {ret}"),
        };
        say!("   {what:<30} -> {shown}");
        if ret != -i64::from(libc::EINVAL) {
            tour.surprise(&format!("{what} should fail with EINVAL"));
        }
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

fn designating_a_table(tour: &mut Tour) {
    const LEN: usize = 64 * 1024;
    say!();
    say!("4. A database keeps its table in an unshared range: each view will get");
    say!("   its own copy-on-write snapshot of it. Designating a 64 KiB table:");
    // The table, and one more page of ordinary (shared) memory after it.
    // SAFETY: a fresh anonymous mapping touches no existing memory.
    let table = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            LEN + 4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if table == libc::MAP_FAILED {
        tour.surprise("mmap of the table failed");
        return;
    }
    let addr = table as usize;
    match mmview::unshare(table as *const u8, LEN) {
        Ok(()) => say!("   MMVIEW_UNSHARE(table, 64 KiB) -> 0"),
        Err(e) => tour.surprise(&format!("MMVIEW_UNSHARE -> {e}")),
    }
    let flags = vm_flags(addr).unwrap_or_default();
    say!("   /proc/self/smaps: VmFlags: {flags}   (\"vu\": unshared)");
    if !flags.split_whitespace().any(|f| f == "vu") {
        tour.surprise("the table is not marked \"vu\" in smaps");
    }
    // SAFETY: mprotect of our own mapping.
    let mixed = unsafe { libc::mprotect(table, LEN + 4096, libc::PROT_READ) };
    let errno = std::io::Error::last_os_error();
    if mixed == 0 || errno.raw_os_error() != Some(libc::EACCES) {
        tour.surprise(&format!(
            "mprotect across the table and its neighbour: {errno}"
        ));
    } else {
        say!("   mprotect(table and the page after it) -> {errno}:");
        say!("   a range that mixes shared and unshared memory is refused.");
    }
    match mmview::share(table as *const u8, LEN) {
        Ok(()) => say!("   MMVIEW_SHARE(table, 64 KiB) -> 0: shared again"),
        Err(e) => tour.surprise(&format!("MMVIEW_SHARE -> {e}")),
    }
    // SAFETY: unmaps our own mapping, which nothing references.
    unsafe { libc::munmap(table, LEN + 4096) };
}

fn what_comes_next(tour: &mut Tour) {
    say!();
    say!("5. Creating views:");
    match mmview::create() {
        Err(e) if e.is(libc::EOPNOTSUPP) => {
            say!("   MMVIEW_CREATE -> {e}");
            say!("   Views themselves are not in this kernel yet. Until they are, every");
            say!("   process has only its base: MIGRATE(0) and SWITCH_BASE return 0,");
            say!("   DELETE(0) is EPERM. With views comes this demo's database snapshot.");
        }
        Ok(view) => {
            say!("   MMVIEW_CREATE -> view {view}: this kernel already has views!");
            say!("   (This demo predates them; it deletes the view again.)");
            if let Err(e) = mmview::delete(view) {
                tour.surprise(&format!("MMVIEW_DELETE({view}) -> {e}"));
            }
        }
        Err(e) => tour.surprise(&format!("MMVIEW_CREATE -> {e}")),
    }
}
