// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `mmview_rs`: the argument rules of `mmview(2)`, tested in
//! isolation at boot.
//!
//! The 6.12 `kernel` crate has no macro to declare a KUnit suite, so the
//! suite is laid out here as the C macros `KUNIT_CASE()` and
//! `kunit_test_suite()` would lay it out: a zero-terminated array of
//! `struct kunit_case`, a `struct kunit_suite`, and a pointer to the suite in
//! the `.kunit_test_suites` section, from where KUnit runs built-in suites.

use core::ptr::addr_of_mut;

use kernel::bindings::{kunit, kunit_case, kunit_suite};
use kernel::error::code::EINVAL;
use kernel::ffi::{c_char, c_long, c_ulong};

use crate::op::{Op, Request};

/// Fails the running KUnit case, with the location, unless `$cond` holds.
macro_rules! check {
    ($name:literal, $cond:expr $(,)?) => {
        kernel::kunit_assert!($name, "mmview_rs/kunit.rs", 0, $cond)
    };
}

/// Fails the running KUnit case, with the location, unless `$left == $right`.
macro_rules! check_eq {
    ($name:literal, $left:expr, $right:expr $(,)?) => {
        kernel::kunit_assert_eq!($name, "mmview_rs/kunit.rs", 0, $left, $right)
    };
}

/// Every known operation decodes to itself, with its arguments kept.
extern "C" fn decode_known_ops(_test: *mut kunit) {
    for (value, op) in Op::ALL.into_iter().enumerate() {
        let args: [c_ulong; 2] = match op.nr_args() {
            0 => [0, 0],
            1 => [7, 0],
            _ => [0x1000, 0x2000],
        };
        let req = Request::decode(value as c_long, args[0], args[1]);
        check_eq!("decode_known_ops", req, Ok(Request { op, args }));
    }
}

/// Unknown operations, negative ones included, are `EINVAL`.
extern "C" fn reject_unknown_ops(_test: *mut kunit) {
    let bad: [c_long; 7] = [7, 8, 1000, -1, c_long::MIN, c_long::MAX, 1 << 32];
    for op in bad {
        check_eq!("reject_unknown_ops", Request::decode(op, 0, 0), Err(EINVAL));
    }
}

/// A non-zero argument that the operation does not use is `EINVAL`; the
/// arguments it uses may take any value.
extern "C" fn reject_unused_args(_test: *mut kunit) {
    for (value, op) in Op::ALL.into_iter().enumerate() {
        for slot in 0..2 {
            let mut args: [c_ulong; 2] = [0, 0];
            args[slot] = c_ulong::MAX;
            let got = Request::decode(value as c_long, args[0], args[1]);
            let used = slot < op.nr_args();
            check!("reject_unused_args", used == got.is_ok());
            if !used {
                check_eq!("reject_unused_args", got, Err(EINVAL));
            }
        }
    }
}

/// Without views every thread is in the base, and the other operations are
/// not available yet.
extern "C" fn syscall_results(_test: *mut kunit) {
    let eopnotsupp = -(kernel::bindings::EOPNOTSUPP as c_long);
    let einval = -(kernel::bindings::EINVAL as c_long);
    check_eq!(
        "syscall_results",
        crate::mmview_rs_syscall(kernel::uapi::MMVIEW_CURRENT as c_long, 0, 0),
        kernel::uapi::MMVIEW_BASE_ID as c_long
    );
    check_eq!(
        "syscall_results",
        crate::mmview_rs_syscall(kernel::uapi::MMVIEW_CURRENT as c_long, 1, 0),
        einval
    );
    check_eq!(
        "syscall_results",
        crate::mmview_rs_syscall(kernel::uapi::MMVIEW_CREATE as c_long, 0, 0),
        eopnotsupp
    );
}

/// Builds a `struct kunit_case` as `KUNIT_CASE()` does.
const fn case(run: extern "C" fn(*mut kunit), name: &'static core::ffi::CStr) -> kunit_case {
    kunit_case {
        run_case: Some(run),
        name: name.as_ptr().cast::<c_char>(),
        module_name: c"mmview_rs".as_ptr().cast_mut().cast::<c_char>(),
        // SAFETY: All-zero is a valid value for the remaining C fields (null
        // pointers, `None`, the first enumerators), as with a C initialiser.
        ..unsafe { core::mem::zeroed() }
    }
}

/// The suite's name as the `char name[256]` of `struct kunit_suite`.
const fn suite_name(name: &[u8]) -> [c_char; 256] {
    let mut out = [0 as c_char; 256];
    let mut i = 0;
    while i < name.len() && i < out.len() - 1 {
        out[i] = name[i] as c_char;
        i += 1;
    }
    out
}

/// The test cases, terminated by an all-zero entry as KUnit expects.
static mut CASES: [kunit_case; 5] = [
    case(decode_known_ops, c"decode_known_ops"),
    case(reject_unknown_ops, c"reject_unknown_ops"),
    case(reject_unused_args, c"reject_unused_args"),
    case(syscall_results, c"syscall_results"),
    // SAFETY: The all-zero `struct kunit_case` terminates the array.
    unsafe { core::mem::zeroed() },
];

/// The suite. KUnit writes its private fields while running it.
static mut SUITE: kunit_suite = kunit_suite {
    name: suite_name(b"mmview_rs"),
    test_cases: addr_of_mut!(CASES).cast::<kunit_case>(),
    // SAFETY: All-zero is a valid value for the remaining fields, as with a
    // C initialiser.
    ..unsafe { core::mem::zeroed() }
};

/// The entry KUnit finds at boot, as `kunit_test_suite()` would emit it.
#[used]
#[link_section = ".kunit_test_suites"]
static mut SUITE_ENTRY: *mut kunit_suite = addr_of_mut!(SUITE);
