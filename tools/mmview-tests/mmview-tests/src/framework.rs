//! The test runner: one forked child per test, KTAP version 1 on stdout.
//!
//! Output:
//!
//! ```text
//! KTAP version 1
//! 1..N
//! # diagnostics of test 1, if any
//! ok 1 current_main_thread
//! not ok 2 some_test # reason
//! ok 3 other_test # SKIP reason
//! # mmview-tests: P passed, F failed
//! ```
//!
//! The summary line gets `, S skipped` appended when a test was skipped.
//!
//! Each test runs in a child process of its own (and its own process group),
//! so that a crash, a hang or view state left behind cannot affect the others.
//! The child reports diagnostics and the outcome through a pipe; the parent
//! prints them as they arrive. A child that dies without reporting, or runs
//! past its timeout (the whole process group is then killed), fails.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::check::TestResult;

/// The timeout of a test that sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A named test.
pub struct Test {
    name: String,
    timeout: Option<Duration>,
    func: Box<dyn Fn() -> TestResult>,
}

impl Test {
    /// A test named `name` that runs `func` in a child process.
    pub fn new(name: impl Into<String>, func: impl Fn() -> TestResult + 'static) -> Self {
        Test {
            name: name.into(),
            timeout: None,
            func: Box::new(func),
        }
    }

    /// Gives the test its own timeout instead of the runner's default.
    #[allow(dead_code)] // no test needs one yet
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The name printed on the KTAP result line.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed, for this (one-line) reason.
    Fail(String),
    /// It does not apply here, for this reason.
    Skip(String),
}

/// Counts of a run, as printed on the summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed (or crashed, or timed out).
    pub failed: usize,
    /// Tests that were skipped.
    pub skipped: usize,
}

/// Runs `tests` in order and prints the KTAP report. `default_timeout`
/// applies to tests that set no timeout of their own.
pub fn run(tests: &[Test], default_timeout: Duration) -> Summary {
    emit("KTAP version 1");
    emit(&format!("1..{}", tests.len()));
    let mut summary = Summary::default();
    for (index, test) in tests.iter().enumerate() {
        let outcome = run_one(test, test.timeout.unwrap_or(default_timeout));
        match &outcome {
            Outcome::Pass => summary.passed += 1,
            Outcome::Fail(_) => summary.failed += 1,
            Outcome::Skip(_) => summary.skipped += 1,
        }
        emit(&result_line(index + 1, test.name(), &outcome));
    }
    emit(&summary_line(&summary));
    summary
}

/// The KTAP result line of test number `number`.
pub fn result_line(number: usize, name: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Pass => format!("ok {number} {name}"),
        Outcome::Fail(reason) => format!("not ok {number} {name} # {}", one_line(reason)),
        Outcome::Skip(reason) => format!("ok {number} {name} # SKIP {}", one_line(reason)),
    }
}

/// The closing `# mmview-tests: P passed, F failed` line.
pub fn summary_line(summary: &Summary) -> String {
    let mut line = format!(
        "# mmview-tests: {} passed, {} failed",
        summary.passed, summary.failed
    );
    if summary.skipped > 0 {
        line.push_str(&format!(", {} skipped", summary.skipped));
    }
    line
}

fn one_line(text: &str) -> String {
    text.trim().replace('\n', "; ")
}

/// Writes one line to stdout, now. Errors (a closed pipe) are ignored: the
/// exit status still tells the outcome.
pub fn emit(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The pipe to the parent, in a test child; -1 in the parent.
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

/// Prints a diagnostic for the running test: each line of `args` becomes a
/// `# ` line of the report. Safe to call from any thread of a test.
pub fn diag(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    let fd = REPORT_FD.load(Ordering::Relaxed);
    if fd < 0 {
        for line in text.lines() {
            emit(&format!("# {line}"));
        }
        return;
    }
    let mut message = String::new();
    for line in text.lines() {
        message.push_str("D ");
        message.push_str(line);
        message.push('\n');
    }
    send(fd, &message);
}

/// Writes all of `message` to `fd` (the report pipe: atomically for up to
/// PIPE_BUF bytes), giving up on an error. Allocates nothing.
pub fn send(fd: RawFd, message: &str) {
    let mut bytes = message.as_bytes();
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid buffer of the given length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        match usize::try_from(n) {
            Ok(n) if n > 0 => bytes = &bytes[n..],
            _ => return,
        }
    }
}

fn run_one(test: &Test, timeout: Duration) -> Outcome {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Outcome::Fail(format!("pipe2: {}", io::Error::last_os_error()));
    }
    // SAFETY: pipe2 just returned these descriptors; nothing else owns them.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let _ = io::stdout().flush();
    // SAFETY: the runner is single-threaded, so the child may run anything.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Outcome::Fail(format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(reader);
        child_main(test, writer);
    }
    drop(writer);
    // Also done by the child; doing it here too closes the race with kill().
    // SAFETY: plain system call on our own child.
    unsafe { libc::setpgid(pid, pid) };
    supervise(pid, File::from(reader), timeout)
}

/// The test child: runs the test, reports, exits. Never returns.
fn child_main(test: &Test, writer: OwnedFd) -> ! {
    use std::os::fd::IntoRawFd;
    let fd = writer.into_raw_fd();
    REPORT_FD.store(fd, Ordering::Relaxed);
    // SAFETY: plain system calls. Stray prints of the test go to stderr so
    // that stdout stays valid KTAP.
    unsafe {
        libc::setpgid(0, 0);
        libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO);
    }
    panic::set_hook(Box::new(|info| diag(format_args!("{info}"))));
    let report = match panic::catch_unwind(AssertUnwindSafe(|| (test.func)())) {
        Ok(Ok(())) => "R ok\n".to_string(),
        Ok(Err(f)) if f.is_skip() => format!("R skip {}\n", one_line(f.message())),
        Ok(Err(f)) => format!("R fail {}\n", one_line(f.message())),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_string());
            format!("R fail panicked: {}\n", one_line(&what))
        }
    };
    send(fd, &report);
    // SAFETY: ends the child without running the parent's exit handlers.
    unsafe { libc::_exit(0) }
}

/// Follows the child until it exits or times out; returns the outcome.
fn supervise(pid: libc::pid_t, mut reader: File, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut lines = LineBuffer::default();
    let mut report = None;
    let mut eof = false;
    let exited = loop {
        if eof {
            std::thread::sleep(Duration::from_millis(5));
        } else if readable(&reader, 100) {
            eof = !lines.fill(&mut reader, &mut report);
        }
        if has_exited(pid) {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
    };
    // Kill what is left of the test's process group (all of it on timeout).
    // The child is not reaped yet, so its pid still names this group.
    // SAFETY: plain system calls on our own child and its group.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    let status = wait(pid);
    while !eof && readable(&reader, 0) {
        eof = !lines.fill(&mut reader, &mut report);
    }
    lines.finish(&mut report);
    if !exited {
        return Outcome::Fail(format!("timed out after {} s", timeout.as_secs()));
    }
    let Some(status) = status else {
        return Outcome::Fail(format!("waitpid: {}", io::Error::last_os_error()));
    };
    let clean_exit = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    match report {
        Some(outcome) if clean_exit => outcome,
        Some(Outcome::Fail(reason)) => Outcome::Fail(format!(
            "{reason} (and the child {})",
            describe_status(status)
        )),
        Some(_) => Outcome::Fail(format!("child {} after reporting", describe_status(status))),
        None => Outcome::Fail(format!(
            "child {} without reporting a result",
            describe_status(status)
        )),
    }
}

/// Lines of the report pipe, split as they arrive.
#[derive(Default)]
struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Reads once and handles the complete lines; false at end of file.
    fn fill(&mut self, reader: &mut File, report: &mut Option<Outcome>) -> bool {
        let mut buf = [0u8; 4096];
        let n = match reader.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(_) => return false,
        };
        self.pending.extend_from_slice(&buf[..n]);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            handle_line(String::from_utf8_lossy(&line[..end]).as_ref(), report);
        }
        true
    }

    /// Handles a last line that had no newline.
    fn finish(&mut self, report: &mut Option<Outcome>) {
        if !self.pending.is_empty() {
            let line = String::from_utf8_lossy(&self.pending).into_owned();
            self.pending.clear();
            handle_line(&line, report);
        }
    }
}

/// One line of the child's report: `D text` (diagnostic) or `R outcome`.
fn handle_line(line: &str, report: &mut Option<Outcome>) {
    if let Some(text) = line.strip_prefix("D ") {
        emit(&format!("# {text}"));
    } else if let Some(result) = line.strip_prefix("R ") {
        *report = Some(parse_report(result));
    } else {
        emit(&format!("# {line}"));
    }
}

fn parse_report(result: &str) -> Outcome {
    if result == "ok" {
        Outcome::Pass
    } else if let Some(reason) = result.strip_prefix("skip ") {
        Outcome::Skip(reason.to_string())
    } else {
        Outcome::Fail(result.strip_prefix("fail ").unwrap_or(result).to_string())
    }
}

/// Waits up to `timeout_ms` for the report pipe to be readable (or closed).
fn readable(reader: &File, timeout_ms: i32) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: reader.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    n > 0 && pfd.revents != 0
}

/// Whether `pid` has exited, without reaping it.
fn has_exited(pid: libc::pid_t) -> bool {
    // SAFETY: an all-zero siginfo_t is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let options = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a valid out pointer.
    let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, options) };
    // SAFETY: waitid filled in `info` (si_pid stays 0 if nothing exited).
    r == 0 && unsafe { info.si_pid() } != 0
}

/// Blocks until `pid` exits; its wait status (None if waitpid failed).
pub fn wait(pid: libc::pid_t) -> Option<libc::c_int> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Some(status);
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// "exited with status 3", "was killed by signal 11 (SIGSEGV)".
pub fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        match signal_name(sig) {
            Some(name) => format!("was killed by signal {sig} ({name})"),
            None => format!("was killed by signal {sig}"),
        }
    } else {
        format!("ended with wait status {status:#x}")
    }
}

fn signal_name(sig: libc::c_int) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{ensure, fail};

    #[test]
    fn result_lines_are_ktap() {
        assert_eq!(result_line(1, "a", &Outcome::Pass), "ok 1 a");
        assert_eq!(
            result_line(2, "b", &Outcome::Fail("bad\nthing".into())),
            "not ok 2 b # bad; thing"
        );
        assert_eq!(
            result_line(3, "c", &Outcome::Skip("no swap".into())),
            "ok 3 c # SKIP no swap"
        );
    }

    #[test]
    fn summary_line_format() {
        let s = Summary {
            passed: 5,
            failed: 1,
            skipped: 0,
        };
        assert_eq!(summary_line(&s), "# mmview-tests: 5 passed, 1 failed");
        let s = Summary {
            passed: 5,
            failed: 0,
            skipped: 2,
        };
        assert_eq!(
            summary_line(&s),
            "# mmview-tests: 5 passed, 0 failed, 2 skipped"
        );
    }

    #[test]
    fn status_descriptions() {
        assert_eq!(describe_status(3 << 8), "exited with status 3");
        assert_eq!(
            describe_status(libc::SIGSEGV),
            "was killed by signal 11 (SIGSEGV)"
        );
    }

    // The runner itself, end to end: every kind of ending in a real child.
    //
    // fork() is only safe in a single-threaded process, and libtest runs the
    // tests on parallel threads (a child forked while another test thread
    // holds the allocator's or stdout's lock hangs). So this test runs the
    // real check, below, in a fresh copy of the test binary that runs just
    // that one test.
    #[test]
    fn children_report_every_outcome() {
        let exe = std::env::current_exe().expect("path of the test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "--ignored", "--test-threads=1"])
            .arg("framework::tests::children_report_every_outcome_alone")
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "run by children_report_every_outcome in a process of its own"]
    fn children_report_every_outcome_alone() {
        let t = Duration::from_secs(10);
        assert_eq!(run_one(&Test::new("pass", || Ok(())), t), Outcome::Pass);
        let failing = Test::new("fail", || {
            ensure!(1 + 1 == 3, "arithmetic is {}", "fine");
            Ok(())
        });
        assert_eq!(
            run_one(&failing, t),
            Outcome::Fail("arithmetic is fine".into())
        );
        let skipping = Test::new("skip", || Err(crate::check::Failure::skip("n/a")));
        assert_eq!(run_one(&skipping, t), Outcome::Skip("n/a".into()));
        let panicking = Test::new("panic", || panic!("boom"));
        assert_eq!(
            run_one(&panicking, t),
            Outcome::Fail("panicked: boom".into())
        );
        let crashing = Test::new("crash", || {
            // SAFETY: deliberately ends the child.
            unsafe { libc::raise(libc::SIGKILL) };
            fail!("still alive")
        });
        assert_eq!(
            run_one(&crashing, t),
            Outcome::Fail(
                "child was killed by signal 9 (SIGKILL) without reporting a result".into()
            )
        );
        let hanging = Test::new("hang", || loop {
            std::thread::sleep(Duration::from_secs(1));
        });
        assert_eq!(
            run_one(&hanging, Duration::from_secs(1)),
            Outcome::Fail("timed out after 1 s".into())
        );
    }
}
