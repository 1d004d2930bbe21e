//! Checks on mmview(2) results.

use std::fmt::Debug;

use crate::check::{fail, TestResult};

/// The name and description of an errno: `EINVAL (Invalid argument)`.
pub fn errno_name(errno: i32) -> String {
    mmview::Error::from_errno(errno).to_string()
}

/// What a raw return value means: `returned 3` or `EINVAL (Invalid argument)`.
pub fn describe_raw(ret: i64) -> String {
    match ret.checked_neg().map(i32::try_from) {
        Some(Ok(errno)) if ret < 0 => errno_name(errno),
        _ => format!("returned {ret}"),
    }
}

/// Fails unless `result` is the error `errno`; `what` names the call.
pub fn expect_errno<T: Debug>(result: mmview::Result<T>, errno: i32, what: &str) -> TestResult {
    match result {
        Err(e) if e.is(errno) => Ok(()),
        Err(e) => fail!("{what}: expected {}, got {e}", errno_name(errno)),
        Ok(value) => fail!(
            "{what}: expected {}, but it succeeded with {value:?}",
            errno_name(errno)
        ),
    }
}

/// Issues the raw call `mmview(op, arg1, arg2)` and fails unless it returns
/// `-errno`.
///
/// Meant for calls that must be refused. Should a buggy kernel accept an
/// `MMVIEW_MIGRATE` here, the move is confined to the disposable test child
/// that reports the failure.
pub fn expect_raw_errno(op: i64, arg1: u64, arg2: u64, errno: i32) -> TestResult {
    // SAFETY: the call is expected to fail and change nothing; see above for
    // the case where the kernel is wrong.
    let ret = unsafe { mmview::raw_mmview(op, arg1, arg2) };
    if ret != -i64::from(errno) {
        fail!(
            "mmview({op}, {arg1:#x}, {arg2:#x}): expected {}, got {}",
            errno_name(errno),
            describe_raw(ret)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions() {
        assert_eq!(describe_raw(3), "returned 3");
        assert_eq!(describe_raw(-22), "EINVAL (Invalid argument)");
        assert_eq!(describe_raw(i64::MIN), format!("returned {}", i64::MIN));
    }

    #[test]
    fn expect_errno_checks_the_value() {
        let einval: mmview::Result<u8> = Err(mmview::Error::from_errno(libc::EINVAL));
        assert!(expect_errno(einval, libc::EINVAL, "x").is_ok());
        let msg = expect_errno(einval, libc::EPERM, "x")
            .err()
            .map(|f| f.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("x: expected EPERM (Operation not permitted), got EINVAL (Invalid argument)")
        );
        let msg = expect_errno(Ok(5u8), libc::EPERM, "x")
            .err()
            .map(|f| f.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("x: expected EPERM (Operation not permitted), but it succeeded with 5")
        );
    }
}
