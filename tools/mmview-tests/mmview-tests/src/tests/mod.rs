//! The tests, in groups. Each group module has a `tests()` function that
//! lists its tests; to add a group, add a module and extend [`all`].

mod advice;
mod designate;
mod forced;
mod futex_views;
mod guest;
mod heap;
mod invariant;
mod kunit;
mod lifecycle;
mod process_layout;
mod process_state;
mod stat;
mod syscall;
mod sysctl;
mod views;

use crate::framework::Test;

/// Whether the kernel under test was built with `CONFIG_MMVIEW`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    /// `CONFIG_MMVIEW=y`: the system call works.
    On,
    /// `CONFIG_MMVIEW=n`: the system call must fail with `ENOSYS`.
    Off,
}

/// Every test, in the order they run. Also enumerates the KUnit suites of
/// the running kernel, so call it before printing the plan.
pub fn all(config: Config) -> Vec<Test> {
    let groups = match config {
        Config::On => vec![
            syscall::tests(),
            sysctl::tests(),
            designate::tests(),
            views::tests(),
            process_state::tests(),
            lifecycle::tests(),
            invariant::tests(),
            forced::tests(),
            heap::tests(),
            futex_views::tests(),
            advice::tests(),
            process_layout::tests(),
            stat::tests(),
        ],
        Config::Off => vec![syscall::config_off_tests(), sysctl::config_off_tests()],
    };
    let mut tests: Vec<Test> = groups.into_iter().flatten().collect();
    tests.extend(guest::tests());
    tests.extend(kunit::tests(config == Config::On));
    tests
}

/// `named_tests![f, g]`: tests named after the functions `f` and `g`.
macro_rules! named_tests {
    ($($test:ident),* $(,)?) => {
        vec![$($crate::framework::Test::new(stringify!($test), $test)),*]
    };
}
use named_tests;
