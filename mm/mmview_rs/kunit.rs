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
use kernel::error::code::{EINVAL, ENOSPC, EPERM};
use kernel::ffi::{c_char, c_long, c_ulong};

use crate::op::{user_range, Op, Request};
use crate::registry::{Registry, Slot, State, BASE_ID};

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
    let bad: [c_long; 7] = [8, 9, 1000, -1, c_long::MIN, c_long::MAX, 1 << 32];
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

/// A kernel thread (KUnit runs cases in one) has no address space: it is
/// in the base, and cannot create views.
extern "C" fn syscall_results(_test: *mut kunit) {
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
        einval
    );
    check_eq!(
        "syscall_results",
        crate::mmview_rs_syscall(kernel::uapi::MMVIEW_MIGRATE as c_long, 0, 0),
        kernel::uapi::MMVIEW_BASE_ID as c_long
    );
}

/// UNSHARE/SHARE ranges: page-aligned start, non-zero length rounded up to
/// a page, no wrap, within the user address space.
extern "C" fn user_range_rules(_test: *mut kunit) {
    let page = kernel::page::PAGE_SIZE as c_ulong;
    let limit = 1000 * page;
    check_eq!(
        "user_range_rules",
        user_range(page, page, limit),
        Ok((page, 2 * page))
    );
    check_eq!(
        "user_range_rules",
        user_range(page, 1, limit),
        Ok((page, 2 * page))
    );
    check_eq!(
        "user_range_rules",
        user_range(0, page + 1, limit),
        Ok((0, 2 * page))
    );
    check_eq!(
        "user_range_rules",
        user_range(999 * page, page, limit),
        Ok((999 * page, limit))
    );
    check_eq!(
        "user_range_rules",
        user_range(999 * page, page + 1, limit),
        Err(EINVAL)
    );
    check_eq!(
        "user_range_rules",
        user_range(page + 1, page, limit),
        Err(EINVAL)
    );
    check_eq!("user_range_rules", user_range(page, 0, limit), Err(EINVAL));
    let top = c_ulong::MAX - page + 1;
    check_eq!(
        "user_range_rules",
        user_range(top, page, c_ulong::MAX),
        Err(EINVAL)
    );
    check_eq!(
        "user_range_rules",
        user_range(page, c_ulong::MAX, c_ulong::MAX),
        Err(EINVAL)
    );
    check_eq!(
        "user_range_rules",
        user_range(top - page, page, c_ulong::MAX),
        Ok((top - page, top))
    );
}

/// Inserts view `v` into `reg` under `limit`.
fn add(reg: &mut Registry<u32>, v: u32, limit: usize) -> kernel::error::Result<u64> {
    reg.insert(Slot::new()?, v, limit)
}

/// Ids start at 1 after the base's 0, grow, and are never reused.
extern "C" fn registry_ids(_test: *mut kunit) {
    let Ok(mut reg) = Registry::new(100u32) else {
        check!("registry_ids", false);
        return;
    };
    check_eq!("registry_ids", reg.base_id(), BASE_ID);
    check_eq!("registry_ids", reg.len(), 1);
    check_eq!("registry_ids", add(&mut reg, 101, 1024), Ok(1));
    check_eq!("registry_ids", add(&mut reg, 102, 1024), Ok(2));
    check_eq!("registry_ids", reg.delete(2).copied(), Ok(102));
    check_eq!("registry_ids", reg.remove(2), Some(102));
    check_eq!("registry_ids", add(&mut reg, 103, 1024), Ok(3));
    check_eq!("registry_ids", reg.get_live(3).copied(), Ok(103));
    check_eq!("registry_ids", reg.get_live(2).copied(), Err(EINVAL));
    check_eq!("registry_ids", reg.len(), 3);
    let ids = [0u64, 1, 3];
    check!("registry_ids", reg.iter().map(|(id, _, _)| id).eq(ids));
}

/// DELETE: `EPERM` on the base, `EINVAL` on unknown and deleted views; a
/// deleted view cannot be looked up but stays until it is removed, and only
/// deleted views can be removed.
extern "C" fn registry_delete(_test: *mut kunit) {
    let Ok(mut reg) = Registry::new(0u32) else {
        check!("registry_delete", false);
        return;
    };
    check_eq!("registry_delete", add(&mut reg, 1, 1024), Ok(1));
    check_eq!("registry_delete", reg.delete(BASE_ID).copied(), Err(EPERM));
    check_eq!("registry_delete", reg.delete(7).copied(), Err(EINVAL));
    check_eq!("registry_delete", reg.remove(1), None);
    check_eq!("registry_delete", reg.delete(1).copied(), Ok(1));
    check_eq!("registry_delete", reg.delete(1).copied(), Err(EINVAL));
    check_eq!("registry_delete", reg.get_live(1).copied(), Err(EINVAL));
    check_eq!("registry_delete", reg.get(1).copied(), Some(1));
    check_eq!("registry_delete", reg.state(1), Some(State::Deleted));
    check_eq!("registry_delete", reg.remove(1), Some(1));
    check_eq!("registry_delete", reg.get(1).copied(), None);
    check_eq!("registry_delete", reg.remove(BASE_ID), None);
    check_eq!("registry_delete", reg.len(), 1);
}

/// The limit counts the base and deleted views still in use; `ENOSPC`
/// changes nothing.
extern "C" fn registry_limit(_test: *mut kunit) {
    let Ok(mut reg) = Registry::new(0u32) else {
        check!("registry_limit", false);
        return;
    };
    check_eq!("registry_limit", add(&mut reg, 1, 3), Ok(1));
    check_eq!("registry_limit", add(&mut reg, 2, 3), Ok(2));
    check_eq!("registry_limit", add(&mut reg, 3, 3), Err(ENOSPC));
    check_eq!("registry_limit", reg.next_id(3), Err(ENOSPC));
    check_eq!("registry_limit", reg.delete(2).copied(), Ok(2));
    check_eq!("registry_limit", add(&mut reg, 3, 3), Err(ENOSPC));
    check_eq!("registry_limit", reg.remove(2), Some(2));
    check_eq!("registry_limit", add(&mut reg, 3, 3), Ok(3));
    check_eq!("registry_limit", reg.len(), 3);
    check_eq!("registry_limit", add(&mut reg, 4, 1), Err(ENOSPC));
}

/// Switching the base changes no id; the new base cannot be deleted and the
/// old one can.
extern "C" fn registry_switch_base(_test: *mut kunit) {
    let Ok(mut reg) = Registry::new(0u32) else {
        check!("registry_switch_base", false);
        return;
    };
    check_eq!("registry_switch_base", add(&mut reg, 1, 1024), Ok(1));
    check_eq!("registry_switch_base", reg.set_base(5), Err(EINVAL));
    check_eq!("registry_switch_base", reg.set_base(1), Ok(()));
    check_eq!("registry_switch_base", reg.base_id(), 1);
    check_eq!("registry_switch_base", reg.delete(1).copied(), Err(EPERM));
    check_eq!("registry_switch_base", reg.delete(BASE_ID).copied(), Ok(0));
    check_eq!("registry_switch_base", reg.set_base(BASE_ID), Err(EINVAL));
    check_eq!("registry_switch_base", add(&mut reg, 2, 1024), Ok(2));
}

/// The limit comes from `vm.mmview_max_views`, 1024 at boot.
extern "C" fn sysctl_default(_test: *mut kunit) {
    check_eq!(
        "sysctl_default",
        crate::max_views(),
        kernel::bindings::MMVIEW_DEFAULT_MAX_VIEWS as usize
    );
}

/// Builds a `struct kunit_case` as `KUNIT_CASE()` does.
const fn case(run: extern "C" fn(*mut kunit), name: &'static core::ffi::CStr) -> kunit_case {
    kunit_case {
        run_case: Some(run),
        name: name.as_ptr().cast::<c_char>(),
        module_name: c"mmview_rs".as_ptr().cast_mut().cast::<c_char>(),
        // The remaining C fields are null pointers, `None` or enumerators.
        // SAFETY: All-zero is a valid value for them, as with a C initialiser.
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
static mut CASES: [kunit_case; 11] = [
    case(decode_known_ops, c"decode_known_ops"),
    case(reject_unknown_ops, c"reject_unknown_ops"),
    case(reject_unused_args, c"reject_unused_args"),
    case(syscall_results, c"syscall_results"),
    case(registry_ids, c"registry_ids"),
    case(registry_delete, c"registry_delete"),
    case(registry_limit, c"registry_limit"),
    case(registry_switch_base, c"registry_switch_base"),
    case(sysctl_default, c"sysctl_default"),
    case(user_range_rules, c"user_range_rules"),
    // SAFETY: The all-zero `struct kunit_case` terminates the array.
    unsafe { core::mem::zeroed() },
];

/// The suite. KUnit writes its private fields while running it.
static mut SUITE: kunit_suite = kunit_suite {
    name: suite_name(b"mmview_rs"),
    test_cases: addr_of_mut!(CASES).cast::<kunit_case>(),
    // SAFETY: All-zero is a valid value for the remaining fields, as in C.
    ..unsafe { core::mem::zeroed() }
};

/// The entry KUnit finds at boot, as `kunit_test_suite()` would emit it.
#[used]
#[link_section = ".kunit_test_suites"]
static mut SUITE_ENTRY: *mut kunit_suite = addr_of_mut!(SUITE);
