//! Runs each figure in a forked child with a time limit, and describes the
//! machine.
//!
//! The child gets its own process group (the figure's own fork children are
//! in it too) and prints its rows and diagnostics straight to stdout. It
//! exits with 0 when the figure ran, 1 when it broke (after printing why as
//! a diagnostic). The parent kills the whole group on a timeout and whatever
//! is left of it at the end.

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::clock::Stamp;
use crate::figures::{Config, Figure};
use crate::measure::Failure;
use crate::report::{diag, diag_lines};

/// Runs one figure; Err(reason) if it broke.
pub fn run(figure: &Figure, config: &Config) -> Result<(), String> {
    let timeout = figure.timeout(config);
    let _ = io::stdout().flush();
    let start = Instant::now();
    let stamp = Stamp::now();
    // SAFETY: the runner is single-threaded, so the child may run anything.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        child_main(figure, config);
    }
    // Also done by the child; doing it here too closes the race with kill().
    // SAFETY: plain system call on our own child.
    unsafe { libc::setpgid(pid, pid) };
    let exited = loop {
        if has_exited(pid) {
            break true;
        }
        if start.elapsed() >= timeout {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The child is not reaped yet, so its pid still names its group.
    // SAFETY: plain system calls on our own child and its group.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    let status = crate::sys::waitpid(pid);
    diag!(
        "bench_{}: {:.1} s",
        figure.name,
        stamp.elapsed().as_secs_f64()
    );
    if !exited {
        return Err(format!("timed out after {} s", timeout.as_secs()));
    }
    match status {
        Some(s) if libc::WIFEXITED(s) && libc::WEXITSTATUS(s) == 0 => Ok(()),
        Some(s) if libc::WIFEXITED(s) => Err("the benchmark broke (see above)".into()),
        Some(s) if libc::WIFSIGNALED(s) => Err(format!(
            "the figure's process was killed by signal {}",
            libc::WTERMSIG(s)
        )),
        Some(s) => Err(format!("the figure's process ended with status {s:#x}")),
        None => Err(format!("waitpid: {}", io::Error::last_os_error())),
    }
}

/// The figure's child: runs it and exits. Never returns.
fn child_main(figure: &Figure, config: &Config) -> ! {
    // SAFETY: plain system call.
    unsafe { libc::setpgid(0, 0) };
    panic::set_hook(Box::new(|info| diag_lines(&format!("panic: {info}"))));
    let code = match panic::catch_unwind(AssertUnwindSafe(|| (figure.run)(config))) {
        Ok(Ok(())) => 0,
        Ok(Err(Failure::Unavailable(why))) => {
            diag!("{}: unavailable on this kernel: {why}", figure.name);
            0
        }
        Ok(Err(Failure::Broken(why))) => {
            diag!("{}: {why}", figure.name);
            1
        }
        Err(_) => 1,
    };
    let _ = io::stdout().flush();
    // SAFETY: ends the child without running the parent's exit handlers.
    unsafe { libc::_exit(code) }
}

/// Whether `pid` has exited, without reaping it.
fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: an all-zero siginfo_t is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let options = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a valid out pointer.
    let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, options) };
    // SAFETY: waitid filled in `info` (si_pid stays 0 if nothing exited).
    r != 0 || unsafe { info.si_pid() } != 0
}

/// `key, value` pairs about the machine, for `# META,` lines. Reads /proc
/// and /sys only: this process never calls mmview.
pub fn machine_info(config: &Config) -> Vec<(&'static str, String)> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().replace([',', '\n'], ";"))
            .unwrap_or_else(|_| "?".into())
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |key| {
        crate::sys::parse_meminfo(&meminfo, key)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into())
    };
    // SAFETY: sysconf has no memory effects.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    vec![
        ("arch", std::env::consts::ARCH.to_string()),
        ("kernel", read("/proc/sys/kernel/osrelease")),
        ("kernel_version", read("/proc/sys/kernel/version")),
        ("mem_total_kib", field("MemTotal")),
        ("mem_available_kib", field("MemAvailable")),
        ("cpus", cpus.to_string()),
        ("page_size", crate::sys::page_size().to_string()),
        ("thp", read("/sys/kernel/mm/transparent_hugepage/enabled")),
        (
            "clocksource",
            read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        ),
        ("mode", (if config.smoke { "smoke" } else { "full" }).into()),
        ("reps", config.reps.to_string()),
    ]
}
