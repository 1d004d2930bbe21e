//! The figures of the benchmark, one module each.
//!
//! A figure measures its subjects and baselines (see [`crate::measure`]),
//! prints `# CSV,` rows (see [`crate::report`]) and returns `Ok` unless the
//! benchmark itself broke. An mmview operation the kernel does not provide
//! yet makes the mmview rows of a figure empty (with a note), never a
//! failure: the baselines are still measured.

mod cow;
mod create;
mod database;
mod first_touch;
mod switch;
mod unused;

use std::time::Duration;

use crate::measure::Result;

/// How big and how long: from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Tiny sizes, for the test command.
    pub smoke: bool,
    /// Repetitions of every measurement.
    pub reps: usize,
}

impl Config {
    /// `smoke` if this is a smoke run, else `full`.
    pub fn pick<T>(&self, smoke: T, full: T) -> T {
        if self.smoke {
            smoke
        } else {
            full
        }
    }
}

/// A figure of the benchmark.
pub struct Figure {
    /// Its name: `--only` takes it, the KTAP line is `bench_<name>`.
    pub name: &'static str,
    /// One line on what it measures.
    pub about: &'static str,
    /// Runs it.
    pub run: fn(&Config) -> Result<()>,
    /// Time limit in a full run (smoke runs get a fifth of it).
    pub timeout: Duration,
}

impl Figure {
    /// The time limit for this configuration.
    pub fn timeout(&self, config: &Config) -> Duration {
        config.pick(self.timeout / 5, self.timeout)
    }
}

impl std::fmt::Debug for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Figures are the same when their names are.
impl PartialEq for Figure {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Figure {}

/// Every figure, in the order they run.
pub const ALL: &[Figure] = &[
    Figure {
        name: "create",
        about: "1. MMVIEW_CREATE vs fork() of a process with S MiB touched, U % unshared",
        run: create::run,
        timeout: Duration::from_secs(900),
    },
    Figure {
        name: "switch",
        about: "2. MMVIEW_MIGRATE round trip (base -> view -> base) vs getppid()",
        run: switch::run,
        timeout: Duration::from_secs(300),
    },
    Figure {
        name: "first_touch",
        about: "3. first read of shared memory in a view vs a minor fault in the base",
        run: first_touch::run,
        timeout: Duration::from_secs(300),
    },
    Figure {
        name: "cow",
        about: "4. first store to an unshared page in a view vs after fork()",
        run: cow::run,
        timeout: Duration::from_secs(300),
    },
    Figure {
        name: "database",
        about: "5. consistent snapshots of a table under writes: mmview vs fork() vs memcpy",
        run: database::run,
        timeout: Duration::from_secs(900),
    },
    Figure {
        name: "unused",
        about: "6. page faults and fork() normalised to a CPU loop (compare CONFIG_MMVIEW=y/n)",
        run: unused::run,
        timeout: Duration::from_secs(300),
    },
];

/// The figure named `name`.
pub fn by_name(name: &str) -> Option<&'static Figure> {
    ALL.iter().find(|f| f.name == name)
}
