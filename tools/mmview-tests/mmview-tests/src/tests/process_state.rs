//! Process-wide state with views: what a process has once (dumpable, MDWE,
//! the THP prctl, `mlockall(MCL_FUTURE)`, membarrier registration,
//! protection-key allocation) has one value for all views, and a change
//! made from any view applies to every view.
//!
//! Each view is an mm of its own, and these settings live in the mm: the
//! tests change a setting in one view after the others exist and read it
//! back, or watch its effect, in the others.
//!
//! The tests follow the memory rule of [`crate::util::view`]: every mapping
//! and thread they use is made before the first `MMVIEW_CREATE` (a mapping
//! made while views exist is only ever touched through [`Region`]).

use std::os::unix::fs::MetadataExt;

use mmview::ViewId;

use super::named_tests;
use crate::check::{
    check_all, check_eq, ensure, ensure_eq, fail, skip, Context, Failure, TestResult,
};
use crate::framework::Test;
use crate::util::child;
use crate::util::mem::{page_size, pattern_word};
use crate::util::process::{pipe, Receiver, Sender};
use crate::util::procfs::{set_temporarily, thread_smaps_entries, Restore};
use crate::util::sys::{errno_name, last_errno, mmap_anon, mprotect, sys, unlimit, ErrnoContext};
use crate::util::view::{create, prepare, threads_in_new_views, Region, ViewThread};

pub fn tests() -> Vec<Test> {
    named_tests![
        procstate_dumpable_prctl,
        procstate_dumpable_setuid,
        procstate_mdwe,
        procstate_thp_disable,
        procstate_mlockall_future,
        procstate_membarrier,
        procstate_pkey_alloc,
    ]
}

const BASE: ViewId = ViewId::BASE;

/// An unused prctl argument.
const NONE: libc::c_ulong = 0;

/// `prctl(option, arg2, 0, 0, 0)`: the value, or the errno.
fn prctl(option: libc::c_int, arg2: libc::c_ulong) -> Result<libc::c_long, i32> {
    // SAFETY: the options used here take integer arguments only.
    sys(unsafe { libc::prctl(option, arg2, NONE, NONE, NONE) })
}

/// `prctl(option, arg2)` that must succeed; `what` names it.
fn prctl_ok(option: libc::c_int, arg2: libc::c_ulong, what: &str) -> TestResult<libc::c_long> {
    prctl(option, arg2).errno_context(what)
}

/// `PR_GET_DUMPABLE` of the calling thread's view.
fn dumpable() -> TestResult<libc::c_long> {
    prctl_ok(libc::PR_GET_DUMPABLE, 0, "PR_GET_DUMPABLE")
}

/// PR_SET_DUMPABLE from the base reaches threads in views (also a view no
/// thread had been in when it was made), and PR_SET_DUMPABLE from a view
/// reaches the base.
fn procstate_dumpable_prctl() -> TestResult {
    prepare()?;
    prctl_ok(
        libc::PR_SET_DUMPABLE,
        1,
        "PR_SET_DUMPABLE(1) before the views",
    )?;
    let a = ViewThread::spawn("in-view-1")?;
    let b = ViewThread::spawn("in-view-2")?;
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    // SAFETY: the memory rule.
    unsafe { a.migrate_from(v1, BASE)? };

    prctl_ok(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE(0) in the base")?;
    ensure_eq!(
        dumpable()?,
        0,
        "PR_GET_DUMPABLE in the base after setting 0"
    );
    let in_v1 = a.run(dumpable)?;
    // View 2 had no thread when the base changed the setting.
    // SAFETY: the memory rule.
    unsafe { b.migrate_from(v2, BASE)? };
    let in_v2 = b.run(dumpable)?;
    check_all([
        check_eq(in_v1, 0, "PR_GET_DUMPABLE in view 1 after the base set 0"),
        check_eq(in_v2, 0, "PR_GET_DUMPABLE in view 2 after the base set 0"),
    ])?;

    a.run(|| prctl_ok(libc::PR_SET_DUMPABLE, 1, "PR_SET_DUMPABLE(1) in view 1"))?;
    ensure_eq!(
        a.run(dumpable)?,
        1,
        "PR_GET_DUMPABLE in view 1 after setting 1"
    );
    check_all([
        check_eq(
            dumpable()?,
            1,
            "PR_GET_DUMPABLE in the base after view 1 set 1",
        ),
        check_eq(
            b.run(dumpable)?,
            1,
            "PR_GET_DUMPABLE in view 2 after view 1 set 1",
        ),
    ])
}

/// The uid and gid the tests drop to.
const UNPRIVILEGED: libc::uid_t = 23456;
/// The pattern of the memory an unprivileged process must not read.
const SECRET: u64 = 0x5ec2_e700;

/// `setresgid` then `setresuid` to [`UNPRIVILEGED`] of the calling thread
/// only: the raw system calls, not glibc's, which change every thread.
fn drop_privileges_of_thread() -> TestResult {
    let id = libc::c_long::from(UNPRIVILEGED);
    for (nr, name) in [
        (libc::SYS_setresgid, "setresgid"),
        (libc::SYS_setresuid, "setresuid"),
    ] {
        // SAFETY: changes the calling thread's credentials only.
        sys(unsafe { libc::syscall(nr, id, id, id) })
            .with_errno_context(|| format!("raw {name}({UNPRIVILEGED}) of one thread"))?;
    }
    Ok(())
}

/// A thread whose euid changes makes the process non-dumpable (with
/// `fs.suid_dumpable` = 0): the base thread drops its privileges with the
/// raw system call (only that thread's credentials change), and a thread in
/// view 1 must then see PR_GET_DUMPABLE 0. Then that thread drops its
/// privileges too and moves to view 2, which no thread had been in: it
/// must still be non-dumpable there, so its /proc files stay owned by root
/// and an unprivileged process of its uid cannot open its `mem`.
fn procstate_dumpable_setuid() -> TestResult {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip!("needs root (the guest runs the tests as root)");
    }
    let _suid = set_temporarily("/proc/sys/fs/suid_dumpable", "0")?;
    let yama = relax_yama()?;
    let info = Region::anon_shared(page_size())?;
    let (ready_rx, ready_tx) = pipe()?;
    let (done_rx, done_tx) = pipe()?;
    // SAFETY: the test child is single-threaded here.
    let subject = unsafe { child::spawn(|| dumpable_subject(&info, &ready_tx, &done_rx)) }?;
    drop(ready_tx);
    drop(done_rx);
    let ready = ready_rx.recv() == Some(1);
    let outside = if ready {
        let tid = libc::pid_t::try_from(info.load(0)).unwrap_or(0);
        let secret = usize::try_from(info.load(8)).unwrap_or(0);
        check_from_outside(subject.pid(), tid, secret, yama.is_some())
    } else {
        Ok(())
    };
    done_tx.send(1);
    let inside = subject.finish("the process whose threads dropped their privileges");
    check_all([inside.map(drop), outside])
}

/// Sets `kernel.yama.ptrace_scope` to 0 for the test (Yama would refuse
/// the unprivileged `mem` open whatever the dumpable state); `None` if
/// Yama is not there or cannot be relaxed.
fn relax_yama() -> TestResult<Option<Option<Restore>>> {
    const SCOPE: &str = "/proc/sys/kernel/yama/ptrace_scope";
    let Ok(scope) = std::fs::read_to_string(SCOPE) else {
        return Ok(Some(None));
    };
    if scope.trim() == "0" {
        return Ok(Some(None));
    }
    match set_temporarily(SCOPE, "0") {
        Ok(restore) => Ok(Some(Some(restore))),
        Err(e) => {
            crate::check::diag!("cannot relax Yama ({e}): the mem check is left out");
            Ok(None)
        }
    }
}

/// The process of [`procstate_dumpable_setuid`]. Stores the tid of its
/// thread in view 2 and the address of its secret into `info`, reports
/// ready and waits for the parent's checks.
fn dumpable_subject(info: &Region, ready: &Sender, done: &Receiver) -> TestResult<u8> {
    prepare()?;
    let secret = Region::anon(page_size())?;
    secret.fill_all(SECRET);
    prctl_ok(
        libc::PR_SET_DUMPABLE,
        1,
        "PR_SET_DUMPABLE(1) before the views",
    )?;
    ensure_eq!(dumpable()?, 1, "PR_GET_DUMPABLE of the process as root");
    let a = ViewThread::spawn("in-view-1")?;
    let v1 = create("view 1")?;
    let v2 = create("view 2")?;
    // SAFETY: the memory rule.
    unsafe { a.migrate_from(v1, BASE)? };
    ensure_eq!(a.run(dumpable)?, 1, "PR_GET_DUMPABLE in view 1 as root");

    drop_privileges_of_thread().context("the base thread")?;
    ensure_eq!(
        dumpable()?,
        0,
        "PR_GET_DUMPABLE in the base after its thread changed its euid (fs.suid_dumpable = 0)"
    );
    let in_v1 = a.run(dumpable)?;
    let first = check_eq(
        in_v1,
        0,
        "PR_GET_DUMPABLE in view 1 (thread still root) after the base thread changed its euid",
    );

    a.run(drop_privileges_of_thread)
        .context("the thread in view 1")?;
    // SAFETY: the memory rule.
    unsafe { a.migrate_from(v2, v1)? };
    let in_v2 = a.run(dumpable)?;
    let second = check_eq(
        in_v2,
        0,
        "PR_GET_DUMPABLE in view 2 (no thread was there when the threads changed their euid)",
    );
    info.store(0, a.tid() as u64);
    info.store(8, secret.addr() as u64);
    let told = ready.send(1);
    let released = done.recv() == Some(1);
    check_all([first, second])?;
    ensure!(told && released, "lost the parent");
    Ok(0)
}

/// What the parent of [`dumpable_subject`] checks while its thread `tid`
/// (uid [`UNPRIVILEGED`]) is in view 2 of process `pid`: the thread's
/// /proc files are owned by root, and an unprivileged process of the same
/// uid cannot open its `mem` (when `mem_check`).
fn check_from_outside(
    pid: libc::pid_t,
    tid: libc::pid_t,
    secret: usize,
    mem_check: bool,
) -> TestResult {
    let status = format!("/proc/{pid}/task/{tid}/status");
    let owner = std::fs::metadata(&status)
        .with_context(|| format!("stat {status}"))?
        .uid();
    let owned = check_eq(
        libc::c_long::from(owner),
        0,
        &format!(
            "owner of {status} (a non-dumpable thread's /proc files belong to root; uid \
             {UNPRIVILEGED} means the kernel takes it for dumpable)"
        ),
    );
    if !mem_check {
        return owned;
    }
    let mem = format!("/proc/{pid}/task/{tid}/mem");
    // SAFETY: the test child is single-threaded.
    let peek = unsafe { child::run("an unprivileged process", || peek_mem(&mem, secret)) };
    check_all([owned, peek.map(drop)])
}

/// The unprivileged process: drops to [`UNPRIVILEGED`] and tries to read
/// the secret through `mem`; it must not be able to open it.
fn peek_mem(mem: &str, secret: usize) -> TestResult<u8> {
    let id = UNPRIVILEGED;
    // SAFETY: plain system calls of a single-threaded process.
    if unsafe { libc::setresgid(id, id, id) } != 0 || unsafe { libc::setresuid(id, id, id) } != 0 {
        fail!("dropping to uid {id}: {}", errno_name(last_errno()));
    }
    let file = match std::fs::File::open(mem) {
        Ok(file) => file,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => return Ok(0),
        Err(e) => fail!("opening {mem}: expected EACCES, got {e}"),
    };
    let mut word = [0u8; 8];
    use std::os::unix::fs::FileExt;
    let read = file.read_exact_at(&mut word, secret as u64);
    let leaked =
        read.is_ok() && u64::from_le_bytes(word) == u64::from_le_bytes(pattern_word(SECRET, 0));
    fail!(
        "uid {id} opened {mem} of a thread that dropped its privileges ({})",
        if leaked {
            "and read its secret"
        } else {
            "the read did not return the secret"
        }
    )
}

/// `PR_MDWE_REFUSE_EXEC_GAIN` as the `u64` prctl takes.
const MDWE_REFUSE_EXEC_GAIN: libc::c_ulong = libc::PR_MDWE_REFUSE_EXEC_GAIN as libc::c_ulong;

/// PR_SET_MDWE(REFUSE_EXEC_GAIN) in the base refuses executable-and-writable
/// memory, and gaining exec, in a view; and set in a view, in the base.
/// (In children: MDWE cannot be cleared.)
fn procstate_mdwe() -> TestResult {
    // SAFETY: the test child is single-threaded.
    unsafe { child::run_both_directions("MDWE set in the base", "MDWE set in view 1", mdwe_case) }
}

/// One direction of [`procstate_mdwe`]: MDWE set in view 1 (`in_view`) or
/// in the base, checked on the other side.
fn mdwe_case(in_view: bool) -> TestResult<u8> {
    prepare()?;
    let region = Region::anon(page_size())?;
    region.fill_all(0x3d3e);
    // SAFETY: the memory rule (see the module comment).
    let [(a, _)] = unsafe { threads_in_new_views()? };
    let set = || -> TestResult {
        match prctl(libc::PR_SET_MDWE, MDWE_REFUSE_EXEC_GAIN) {
            Ok(_) => Ok(()),
            Err(libc::EINVAL) => skip!("PR_SET_MDWE: EINVAL (no MDWE in this kernel)"),
            Err(e) => fail!("PR_SET_MDWE(REFUSE_EXEC_GAIN): {}", errno_name(e)),
        }
    };
    let check = move || mdwe_refused(&region);
    if in_view {
        a.run(set)?;
        check().context("the base, after view 1 set MDWE")?;
    } else {
        set()?;
        a.run(check).context("view 1, after the base set MDWE")?;
    }
    Ok(0)
}

/// Checks in the calling thread's view that MDWE is on: PR_GET_MDWE, and
/// EACCES for an executable writable mmap and for mprotect gaining exec on
/// `region` (read-write, not executable).
fn mdwe_refused(region: &Region) -> TestResult {
    let flags = prctl_ok(libc::PR_GET_MDWE, 0, "PR_GET_MDWE")?;
    let got_flags = check_eq(flags, MDWE_REFUSE_EXEC_GAIN as libc::c_long, "PR_GET_MDWE");
    let page = page_size();
    let rwx = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
    let mmap = match mmap_anon(page, rwx, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) {
        Err(e) => check_eq(
            libc::c_long::from(e),
            libc::c_long::from(libc::EACCES),
            "errno of mmap(PROT_READ|PROT_WRITE|PROT_EXEC) (EACCES expected)",
        ),
        Ok(addr) => {
            // SAFETY: our own new mapping, used by nobody.
            unsafe { libc::munmap(addr as *mut libc::c_void, page) };
            Err(Failure::new(
                "mmap(PROT_READ|PROT_WRITE|PROT_EXEC) succeeded under MDWE",
            ))
        }
    };
    let protect = |prot: libc::c_int, what: &str| -> TestResult {
        // SAFETY: changes the protection of our own mapping, which only
        // Region accesses touch (it is put back if the kernel grants it).
        match unsafe { mprotect(region.addr(), page, prot) } {
            Ok(()) => {
                // SAFETY: as above.
                let _ =
                    unsafe { mprotect(region.addr(), page, libc::PROT_READ | libc::PROT_WRITE) };
                fail!("mprotect({what}) of a read-write mapping succeeded under MDWE");
            }
            Err(e) => check_eq(
                libc::c_long::from(e),
                libc::c_long::from(libc::EACCES),
                &format!("errno of mprotect({what}) (EACCES expected)"),
            ),
        }
    };
    check_all([
        got_flags,
        mmap,
        protect(rwx, "PROT_READ|PROT_WRITE|PROT_EXEC"),
        protect(libc::PROT_READ | libc::PROT_EXEC, "PROT_READ|PROT_EXEC"),
    ])
}

/// PR_SET_THP_DISABLE from a view is seen by PR_GET_THP_DISABLE in the
/// base (and another view), and clearing it in the base is seen in views.
fn procstate_thp_disable() -> TestResult {
    let get = || prctl_ok(libc::PR_GET_THP_DISABLE, 0, "PR_GET_THP_DISABLE");
    prepare()?;
    prctl_ok(
        libc::PR_SET_THP_DISABLE,
        0,
        "PR_SET_THP_DISABLE(0) before the views",
    )?;
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    a.run(|| {
        prctl_ok(
            libc::PR_SET_THP_DISABLE,
            1,
            "PR_SET_THP_DISABLE(1) in view 1",
        )
    })?;
    ensure_eq!(
        a.run(get)?,
        1,
        "PR_GET_THP_DISABLE in view 1 after setting it"
    );
    check_all([
        check_eq(
            get()?,
            1,
            "PR_GET_THP_DISABLE in the base after view 1 set it",
        ),
        check_eq(
            b.run(get)?,
            1,
            "PR_GET_THP_DISABLE in view 2 after view 1 set it",
        ),
    ])?;
    prctl_ok(
        libc::PR_SET_THP_DISABLE,
        0,
        "PR_SET_THP_DISABLE(0) in the base",
    )?;
    check_all([
        check_eq(
            get()?,
            0,
            "PR_GET_THP_DISABLE in the base after clearing it",
        ),
        check_eq(
            a.run(get)?,
            0,
            "PR_GET_THP_DISABLE in view 1 after the base cleared it",
        ),
        check_eq(
            b.run(get)?,
            0,
            "PR_GET_THP_DISABLE in view 2 after the base cleared it",
        ),
    ])
}

/// Whether every mapping over `region` in the calling thread's view is
/// locked (`lo` in its smaps VmFlags); none: an error.
fn locked(region: &Region) -> TestResult<bool> {
    let entries = thread_smaps_entries(region.addr(), region.addr() + region.len())?;
    ensure!(
        !entries.is_empty(),
        "no mapping at {:#x} in /proc/thread-self/smaps",
        region.addr()
    );
    Ok(entries.iter().all(|e| e.has_flag("lo")))
}

/// mlockall(MCL_FUTURE) in the base locks a mapping that a thread in view 1
/// makes afterwards, in every view; munlockall() in view 2 ends it for a
/// mapping the base makes afterwards. (In a child: MCL_FUTURE stays.)
fn procstate_mlockall_future() -> TestResult {
    // SAFETY: the test child is single-threaded.
    unsafe { child::run("the process with views", mlockall_case) }.map(drop)
}

fn mlockall_case() -> TestResult<u8> {
    if let Err(e) = unlimit(libc::RLIMIT_MEMLOCK) {
        crate::check::diag!("raising RLIMIT_MEMLOCK: {} (going on)", errno_name(e));
    }
    prepare()?;
    let page = page_size();
    // SAFETY: the memory rule.
    let [(a, _), (b, _)] = unsafe { threads_in_new_views()? };
    // SAFETY: plain system call.
    sys(unsafe { libc::mlockall(libc::MCL_FUTURE) })
        .errno_context("mlockall(MCL_FUTURE) in the base")?;
    let made_in_v1 = a.run(|| Region::anon(4 * page)).context("mmap in view 1")?;
    check_all([
        expect_locked(locked(&made_in_v1)?, true, "the base"),
        expect_locked(a.run(|| locked(&made_in_v1))?, true, "view 1"),
        expect_locked(b.run(|| locked(&made_in_v1))?, true, "view 2"),
    ])
    .context("a mapping made in view 1 after mlockall(MCL_FUTURE) in the base")?;

    b.run(|| {
        // SAFETY: plain system call.
        sys(unsafe { libc::munlockall() })
            .errno_context("munlockall in view 2")
            .map(drop)
    })?;
    let made_in_base = Region::anon(4 * page).context("mmap in the base")?;
    check_all([
        expect_locked(locked(&made_in_base)?, false, "the base"),
        expect_locked(a.run(|| locked(&made_in_base))?, false, "view 1"),
        expect_locked(b.run(|| locked(&made_in_base))?, false, "view 2"),
    ])
    .context("a mapping made in the base after munlockall() in view 2")?;
    Ok(0)
}

fn expect_locked(got: bool, want: bool, who: &str) -> TestResult {
    ensure!(
        got == want,
        "{who}: the mapping is {}locked (VmFlags {} \"lo\")",
        if got { "" } else { "not " },
        if got { "has" } else { "lacks" }
    );
    Ok(())
}

/// membarrier(2) commands.
const MEMBARRIER_CMD_QUERY: libc::c_int = 0;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
const MEMBARRIER_CMD_GET_REGISTRATIONS: libc::c_int = 1 << 9;

/// `membarrier(cmd, 0, 0)`: the value, or the errno.
fn membarrier(cmd: libc::c_int) -> Result<libc::c_long, i32> {
    // SAFETY: membarrier takes integer arguments only.
    sys(unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) })
}

/// Registration for private expedited membarriers is one for the process:
/// registered in the base, a thread in a view may issue them (and sees the
/// registration); registered in a view, the base may. (In children: a
/// registration cannot be undone.)
fn procstate_membarrier() -> TestResult {
    let supported = match membarrier(MEMBARRIER_CMD_QUERY) {
        Ok(mask) => mask,
        Err(e) => skip!("membarrier(QUERY): {}", errno_name(e)),
    };
    let needed = libc::c_long::from(
        MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
    );
    if supported & needed != needed {
        skip!("membarrier has no private expedited commands here ({supported:#x})");
    }
    // SAFETY: the test child is single-threaded.
    unsafe {
        child::run_both_directions(
            "registered in the base",
            "registered in view 1",
            membarrier_case,
        )
    }
}

/// One direction of [`procstate_membarrier`].
fn membarrier_case(in_view: bool) -> TestResult<u8> {
    prepare()?;
    // SAFETY: the memory rule (see the module comment).
    let [(a, _)] = unsafe { threads_in_new_views()? };
    let early = a.run(|| Ok(membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)))?;
    ensure_eq!(
        early,
        Err(libc::EPERM),
        "PRIVATE_EXPEDITED in view 1 before any registration"
    );
    let register = || -> TestResult {
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)
            .map(drop)
            .errno_context("REGISTER_PRIVATE_EXPEDITED")
    };
    let check = || -> TestResult {
        let issued = match membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) {
            Ok(_) => Ok(()),
            Err(e) => Err(Failure::new(format!(
                "PRIVATE_EXPEDITED: {} (the registration is not seen here)",
                errno_name(e)
            ))),
        };
        let listed = match membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS) {
            Ok(mask)
                if mask & libc::c_long::from(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0 =>
            {
                Ok(())
            }
            Ok(mask) => Err(Failure::new(format!(
                "GET_REGISTRATIONS returns {mask:#x}, without REGISTER_PRIVATE_EXPEDITED"
            ))),
            Err(libc::EINVAL) => Ok(()), // no GET_REGISTRATIONS in this kernel
            Err(e) => Err(Failure::new(format!(
                "GET_REGISTRATIONS: {}",
                errno_name(e)
            ))),
        };
        check_all([issued, listed])
    };
    if in_view {
        a.run(register).context("view 1")?;
        check().context("the base, after view 1 registered")?;
    } else {
        register().context("the base")?;
        a.run(check).context("view 1, after the base registered")?;
    }
    Ok(0)
}

/// Protection keys are allocated process-wide: a key the base allocated is
/// not handed out again in a view, a view may use it (pkey_mprotect, which
/// acts as mprotect: in every view) and free it, and then it is free for
/// the base too.
#[cfg(target_arch = "x86_64")]
fn procstate_pkey_alloc() -> TestResult {
    prepare()?;
    let page = page_size();
    let region = Region::anon(page)?;
    region.fill_all(0x9e7);
    // SAFETY: the memory rule (see the module comment).
    let [(a, _)] = unsafe { threads_in_new_views()? };
    let alloc = || -> Result<libc::c_long, i32> {
        // SAFETY: pkey_alloc takes integer arguments only.
        sys(unsafe { libc::syscall(libc::SYS_pkey_alloc, 0, 0) })
    };
    let free = |key: libc::c_long| -> Result<libc::c_long, i32> {
        // SAFETY: pkey_free takes an integer; no mapping uses the keys
        // but `region`, which stays accessible (PKRU allows a fresh key).
        sys(unsafe { libc::syscall(libc::SYS_pkey_free, key) })
    };
    let k1 = match alloc() {
        Ok(key) => key,
        Err(e @ (libc::ENOSPC | libc::EINVAL | libc::ENOSYS)) => {
            skip!("pkey_alloc: {} (no protection keys here)", errno_name(e))
        }
        Err(e) => fail!("pkey_alloc in the base: {}", errno_name(e)),
    };
    let k2 = a
        .run(|| Ok(alloc()))?
        .errno_context("pkey_alloc in view 1")?;
    ensure!(
        k2 != k1,
        "pkey_alloc in view 1 returned key {k2}, which the base already holds"
    );
    let protected = a.run(|| {
        // SAFETY: gives our own mapping the key; access rights stay.
        Ok(sys(unsafe {
            libc::syscall(
                libc::SYS_pkey_mprotect,
                region.addr(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                k1,
            )
        }))
    })?;
    if let Err(e) = protected {
        fail!(
            "pkey_mprotect in view 1 with key {k1}, allocated in the base: {}",
            errno_name(e)
        );
    }
    let key_of = |who: &str| -> TestResult<Option<u64>> {
        let entries = thread_smaps_entries(region.addr(), region.addr() + page)?;
        let entry = entries
            .first()
            .with_context(|| format!("{who}: no mapping at {:#x}", region.addr()))?;
        Ok(entry.fields.get("ProtectionKey").copied())
    };
    let keys = [key_of("the base")?, a.run(|| key_of("view 1"))?];
    if keys[0].is_none() {
        crate::check::diag!("smaps shows no ProtectionKey: that check is left out");
    } else {
        ensure_eq!(
            keys,
            [Some(k1 as u64); 2],
            "ProtectionKey of the mapping in the base and in view 1 after pkey_mprotect in view 1"
        );
    }
    region
        .verify_all(0x9e7)
        .context("base: data of the mapping")?;
    let freed = a.run(|| Ok(free(k1)))?;
    ensure_eq!(
        freed,
        Ok(0),
        "pkey_free in view 1 of key {k1}, allocated in the base"
    );
    ensure_eq!(
        free(k1),
        Err(libc::EINVAL),
        "pkey_free in the base of key {k1}, which view 1 freed"
    );
    ensure_eq!(
        free(k2),
        Ok(0),
        "pkey_free in the base of key {k2}, allocated in view 1"
    );
    Ok(())
}

#[cfg(not(target_arch = "x86_64"))]
fn procstate_pkey_alloc() -> TestResult {
    skip!("protection keys are tested on x86_64 only")
}
