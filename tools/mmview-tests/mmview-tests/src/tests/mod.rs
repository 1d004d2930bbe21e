//! The tests, in groups. Each group module has a `tests()` function that
//! lists its tests; to add a group, add a module and extend [`all`].

mod guest;
mod kunit;
mod syscall;

use crate::framework::Test;

/// Every test, in the order they run. Also enumerates the KUnit suites of
/// the running kernel, so call it before printing the plan.
pub fn all() -> Vec<Test> {
    let mut tests = syscall::tests();
    tests.extend(guest::tests());
    tests.extend(kunit::tests());
    tests
}

/// `named_tests![f, g]`: tests named after the functions `f` and `g`.
macro_rules! named_tests {
    ($($test:ident),* $(,)?) => {
        vec![$($crate::framework::Test::new(stringify!($test), $test)),*]
    };
}
use named_tests;
