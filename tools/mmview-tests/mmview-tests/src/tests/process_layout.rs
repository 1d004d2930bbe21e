//! The layout description of the process (`PR_SET_MM` fields: where the
//! command line, the environment, the code, data, heap and stack are) is
//! the process's: set from any view, every view has it. Each view is an
//! mm of its own, and /proc/PID/task/TID/cmdline and .../stat read the
//! fields of the named thread's view.
//!
//! The tests follow the memory rule of [`crate::util::view`]: every mapping
//! and thread they use is made before the first `MMVIEW_CREATE`.

use super::named_tests;
use crate::check::{check_all, ensure_eq, fail, skip, Context, Failure, TestResult};
use crate::framework::Test;
use crate::util::child;
use crate::util::mem::page_size;
use crate::util::procfs::read_file;
use crate::util::sys::{errno_name, gettid, sys};
use crate::util::view::{prepare, threads_in_new_views, Region};

pub fn tests() -> Vec<Test> {
    named_tests![procstate_mm_fields]
}

/// The command line the tests install.
const CMDLINE: &[u8] = b"mmview\0test\0";

/// `prctl(PR_SET_MM, opt, addr, 0, 0)`; the errno on failure.
fn set_mm(opt: libc::c_int, addr: usize) -> Result<(), i32> {
    let none: libc::c_ulong = 0;
    // SAFETY: PR_SET_MM with ARG_START/ARG_END only records an address of
    // ours; the kernel reads the memory there when /proc asks for it.
    sys(unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            opt as libc::c_ulong,
            addr as libc::c_ulong,
            none,
            none,
        )
    })
    .map(drop)
}

/// The `arg_start` and `arg_end` fields (48 and 49) of a
/// /proc/.../stat line.
fn parse_arg_range(stat: &str) -> Option<(usize, usize)> {
    // The fields after the command name, which is in parentheses and may
    // hold spaces, start with field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(48 - 3);
    let start = fields.next()?.parse().ok()?;
    let end = fields.next()?.parse().ok()?;
    Some((start, end))
}

/// `arg_start` and `arg_end` of the view of the thread `tid` (of this
/// process), from /proc/self/task/TID/stat.
fn arg_range_of(tid: libc::pid_t) -> TestResult<(usize, usize)> {
    let path = format!("/proc/self/task/{tid}/stat");
    let stat = read_file(&path)?;
    parse_arg_range(&stat).with_context(|| format!("{path}: no arg_start/arg_end in {stat:?}"))
}

/// Moves the calling thread's view's command line to `[start, end)` with
/// PR_SET_MM_ARG_START and PR_SET_MM_ARG_END, in the order that keeps
/// `arg_start <= arg_end` after each call (kernel/sys.c,
/// validate_prctl_map_addr()); the name and errno of a refused call.
fn set_arg_range(start: usize, end: usize) -> Result<(), (&'static str, i32)> {
    let start_first = match arg_range_of(gettid()) {
        Ok((_, old_end)) => start <= old_end,
        Err(_) => true,
    };
    let set_start = || set_mm(libc::PR_SET_MM_ARG_START, start).map_err(|e| ("ARG_START", e));
    let set_end = || set_mm(libc::PR_SET_MM_ARG_END, end).map_err(|e| ("ARG_END", e));
    if start_first {
        set_start()?;
        set_end()
    } else {
        set_end()?;
        set_start()
    }
}

/// The command line of the view of the thread `tid` (of this process), as
/// /proc/self/task/TID/cmdline reads it.
fn cmdline_of(tid: libc::pid_t) -> TestResult<Vec<u8>> {
    let path = format!("/proc/self/task/{tid}/cmdline");
    std::fs::read(&path).with_context(|| format!("reading {path}"))
}

/// Bytes as a string for messages (`"mmview\0test\0"`).
fn shown(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// Fails unless the thread `tid`'s view has the command line at `[start,
/// end)` holding [`CMDLINE`]: its cmdline file and its stat fields.
fn expect_cmdline(tid: libc::pid_t, start: usize, end: usize, who: &str) -> TestResult {
    let got = cmdline_of(tid)?;
    let cmdline = if got == CMDLINE {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "/proc/self/task/{tid}/cmdline of {who}: expected {}, got {}",
            shown(CMDLINE),
            shown(&got)
        )))
    };
    let stat = arg_range_of(tid).and_then(|(got_start, got_end)| {
        ensure_eq!(
            format!("{got_start:#x}-{got_end:#x}"),
            format!("{start:#x}-{end:#x}"),
            "arg_start-arg_end in /proc/self/task/{tid}/stat of {who}"
        );
        Ok(())
    });
    check_all([cmdline, stat])
}

/// PR_SET_MM_ARG_START/ARG_END set in the base are the command line of a
/// view (/proc/.../task/<view thread>/cmdline reads the view's fields),
/// and set in a view, the base's. (In children: each direction starts from
/// the original fields.)
fn procstate_mm_fields() -> TestResult {
    // SAFETY: the test child is single-threaded.
    unsafe {
        child::run_both_directions(
            "PR_SET_MM in the base",
            "PR_SET_MM in view 1",
            mm_fields_case,
        )
    }
}

/// One direction of [`procstate_mm_fields`]: the command line moved in
/// view 1 (`in_view`) or in the base, read on the other side.
fn mm_fields_case(in_view: bool) -> TestResult<u8> {
    prepare()?;
    let buf = Region::anon(page_size())?;
    for (i, chunk) in CMDLINE.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        buf.store(i * 8, u64::from_ne_bytes(word));
    }
    let (start, end) = (buf.addr(), buf.addr() + CMDLINE.len());
    let base_tid = gettid();

    // Without views, the calls work and /proc shows the new command line;
    // then the original one is put back. A refusal here is not about views.
    let original = arg_range_of(base_tid)?;
    let original_cmdline = cmdline_of(base_tid)?;
    if let Err((what, errno)) = set_arg_range(start, end) {
        skip!(
            "PR_SET_MM_{what} without views: {} (needs CAP_SYS_RESOURCE)",
            errno_name(errno)
        );
    }
    expect_cmdline(base_tid, start, end, "the process without views")?;
    if let Err((what, errno)) = set_arg_range(original.0, original.1) {
        fail!(
            "PR_SET_MM_{what} putting back {:#x}-{:#x}: {}",
            original.0,
            original.1,
            errno_name(errno)
        );
    }
    let restored = cmdline_of(base_tid)?;
    ensure_eq!(
        shown(&restored),
        shown(&original_cmdline),
        "the command line put back before the views"
    );

    // SAFETY: the memory rule (see the module comment).
    let [(a, _)] = unsafe { threads_in_new_views()? };
    let set = || -> TestResult {
        set_arg_range(start, end).map_err(|(what, errno)| {
            Failure::new(format!(
                "PR_SET_MM_{what}({:#x}): {} (it worked without views)",
                if what == "ARG_START" { start } else { end },
                errno_name(errno)
            ))
        })
    };
    if in_view {
        a.run(set).context("view 1")?;
        check_all([
            expect_cmdline(a.tid(), start, end, "view 1, which set it"),
            expect_cmdline(base_tid, start, end, "the base, after view 1 set it"),
        ])?;
    } else {
        set().context("the base")?;
        check_all([
            expect_cmdline(base_tid, start, end, "the base, which set it"),
            expect_cmdline(a.tid(), start, end, "view 1, after the base set it"),
        ])?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_arg_fields_of_stat() {
        let mut stat = String::from("123 (a b) c) S");
        for field in 4..=47 {
            stat.push_str(&format!(" {field}"));
        }
        stat.push_str(" 140000 140012 140020 140030 0");
        assert_eq!(parse_arg_range(&stat), Some((140000, 140012)));
        assert_eq!(parse_arg_range("1 (x) S 2 3"), None);
    }
}
