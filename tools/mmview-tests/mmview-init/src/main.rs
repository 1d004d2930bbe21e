//! `mmview-init`: PID 1 of the mmview test initramfs (installed as `/init`).
//!
//! 1. mounts /proc, /sys, /dev (devtmpfs), /sys/kernel/debug and
//!    /sys/fs/cgroup (cgroup2);
//! 2. turns on 64 MiB of swap on /dev/zram0;
//! 3. runs the program named by `mmview.run=` on the kernel command line
//!    (`tests` by default: /bin/mmview-tests; `demo`, `bench`, or a path),
//!    with the comma-separated arguments of `mmview.args=`, its output on the
//!    console, reaping every orphan meanwhile;
//! 4. prints `# mmview-init: <program> exited with status S` and
//!    `# mmview-init: done`, syncs and ends the machine: reboot on x86_64
//!    (QEMU runs with -no-reboot, so it exits), power-off elsewhere.
//!
//! All messages start with `# mmview-init: `, so they read as KTAP
//! diagnostics. Errors are reported and skipped: PID 1 never exits, and a
//! panic is caught and still leads to the power-off.

mod cmdline;
mod swap;

use std::ffi::CString;
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::panic;
use std::process::{Command, ExitStatus};

use cmdline::Config;

/// Prints one `# mmview-init: ` line on the console; never fails.
fn say(message: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "# mmview-init: {message}");
    let _ = out.flush();
}

fn main() {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        eprintln!("mmview-init: must run as PID 1 (it mounts file systems and powers off)");
        std::process::exit(2);
    }
    if panic::catch_unwind(run).is_err() {
        say("internal error (see the panic message above)");
    }
    power_off()
}

fn run() {
    mount_filesystems();
    match swap::enable_zram_swap() {
        Ok(done) => say(&done),
        Err(e) => say(&format!("no swap: {e}")),
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_else(|e| {
        say(&format!(
            "cannot read /proc/cmdline ({e}), using the defaults"
        ));
        String::new()
    });
    let config = Config::from_cmdline(&cmdline);
    let status = run_program(&config);
    say(&format!("{} exited with status {status}", config.run));
    say("done");
}

/// (source, target, type, flags, data) of the mounts, in order.
const MOUNTS: &[(&str, &str, &str, libc::c_ulong, &str)] = &[
    ("proc", "/proc", "proc", NOSUID_NODEV_NOEXEC, ""),
    ("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC, ""),
    ("devtmpfs", "/dev", "devtmpfs", libc::MS_NOSUID, "mode=0755"),
    (
        "debugfs",
        "/sys/kernel/debug",
        "debugfs",
        NOSUID_NODEV_NOEXEC,
        "",
    ),
    (
        "cgroup2",
        "/sys/fs/cgroup",
        "cgroup2",
        NOSUID_NODEV_NOEXEC,
        "",
    ),
];

const NOSUID_NODEV_NOEXEC: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

fn mount_filesystems() {
    for &(source, target, fstype, flags, data) in MOUNTS {
        if let Err(e) = mount(source, target, fstype, flags, data) {
            say(&format!("mounting {fstype} on {target} failed: {e}"));
        }
    }
}

fn mount(
    source: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    std::fs::create_dir_all(target)?;
    let cstr = |s: &str| CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let (source, target_c, fstype, data) =
        (cstr(source)?, cstr(target)?, cstr(fstype)?, cstr(data)?);
    let data_ptr = if data.as_bytes().is_empty() {
        std::ptr::null()
    } else {
        data.as_ptr()
    };
    // SAFETY: all strings are NUL-terminated and outlive the call.
    let r = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ptr(),
            flags,
            data_ptr.cast(),
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Runs the configured program to its end; its shell-style status (128 +
/// signal number if killed, 127 if it could not be started).
fn run_program(config: &Config) -> i32 {
    let program = config.program();
    if !program.exists() {
        say(&format!("{} not found", program.display()));
        return 127;
    }
    let mut line = format!("running {}", program.display());
    for arg in &config.args {
        line.push(' ');
        line.push_str(arg);
    }
    say(&line);
    // No Command::current_dir: in a static glibc binary it makes spawn fail
    // with ENOSYS. PID 1 starts in / anyway.
    let child = Command::new(&program)
        .args(&config.args)
        .env("PATH", "/bin:/sbin")
        .env("HOME", "/")
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            say(&format!("cannot start {}: {e}", program.display()));
            return 127;
        }
    };
    match reap_until(child.id()) {
        Some(status) => shell_status(status),
        None => {
            say("lost track of the program (waitpid failed)");
            127
        }
    }
}

/// Reaps every child (orphans get re-parented to PID 1) until `pid` exits.
fn reap_until(pid: u32) -> Option<ExitStatus> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out pointer.
        let reaped = unsafe { libc::waitpid(-1, &mut status, 0) };
        if reaped == pid {
            return Some(ExitStatus::from_raw(status));
        }
        if reaped < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

fn shell_status(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => {
            say(&format!("the program was killed by signal {signal}"));
            128 + signal
        }
        (None, None) => 128,
    }
}

/// Syncs and ends the machine. Never returns, even if the reboot fails.
fn power_off() -> ! {
    #[cfg(target_arch = "x86_64")]
    const HOW: libc::c_int = libc::RB_AUTOBOOT;
    #[cfg(not(target_arch = "x86_64"))]
    const HOW: libc::c_int = libc::RB_POWER_OFF;
    // SAFETY: sync and reboot take no pointers; we are PID 1 and done.
    unsafe {
        libc::sync();
        libc::reboot(HOW);
    }
    say(&format!(
        "reboot failed: {}; halting here",
        io::Error::last_os_error()
    ));
    loop {
        // SAFETY: pause has no preconditions.
        unsafe { libc::pause() };
    }
}
