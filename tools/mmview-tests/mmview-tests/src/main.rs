//! `mmview-tests`: the mmview test suite, run inside the guest.
//!
//! Prints KTAP version 1 to stdout (see [`framework`]) and exits with 0 when
//! no test failed, 1 when one did, 2 on a usage error.
//!
//! ```text
//! mmview-tests [--list] [--timeout SECONDS] [--config-off] [FILTER...]
//! ```
//!
//! Without filters every test runs; with filters, the tests whose name
//! contains one of them.

mod check;
mod framework;
mod tests;
mod util;

use std::process::ExitCode;
use std::time::Duration;

use framework::{Test, DEFAULT_TIMEOUT};
use tests::Config;

const USAGE: &str = "\
usage: mmview-tests [--list] [--timeout SECONDS] [--config-off] [FILTER...]

Runs the mmview tests, each in a child process of its own, and prints the
results as KTAP version 1. With FILTERs, only the tests whose name contains
one of them run.

  --list             print the names of the (selected) tests and exit
  --timeout SECONDS  time limit of each test (default 120)
  --config-off       the kernel was built without CONFIG_MMVIEW: check that
                     the system call fails with ENOSYS instead
  --help             print this help

Exit status: 0 if no test failed, 1 if one did, 2 on a usage error.";

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    list: bool,
    timeout: Duration,
    config: Config,
    filters: Vec<String>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Run(Options),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        list: false,
        timeout: DEFAULT_TIMEOUT,
        config: Config::On,
        filters: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--list" => options.list = true,
            "--config-off" => options.config = Config::Off,
            "--timeout" => {
                let value = args.next().ok_or("--timeout needs a number of seconds")?;
                let seconds: u64 = value
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("bad --timeout {value:?}"))?;
                options.timeout = Duration::from_secs(seconds);
            }
            "--" => options.filters.extend(args.by_ref()),
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ => options.filters.push(arg),
        }
    }
    Ok(Command::Run(options))
}

fn selected(test: &Test, filters: &[String]) -> bool {
    filters.is_empty() || filters.iter().any(|f| test.name().contains(f.as_str()))
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            framework::emit(USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mmview-tests: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let tests: Vec<Test> = tests::all(options.config)
        .into_iter()
        .filter(|t| selected(t, &options.filters))
        .collect();
    if tests.is_empty() {
        eprintln!("mmview-tests: no test matches {:?}", options.filters);
        return ExitCode::from(2);
    }
    if options.list {
        for test in &tests {
            framework::emit(test.name());
        }
        return ExitCode::SUCCESS;
    }
    let summary = framework::run(&tests, options.timeout);
    if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod main_tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_options_and_filters() {
        assert_eq!(
            parse(&["--list", "current", "--timeout", "5", "--", "--odd"]),
            Ok(Command::Run(Options {
                list: true,
                timeout: Duration::from_secs(5),
                config: Config::On,
                filters: vec!["current".into(), "--odd".into()],
            }))
        );
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert!(parse(&["--timeout"]).is_err());
        assert!(parse(&["--timeout", "0"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn filters_match_substrings() {
        let t = Test::new("current_from_threads", || Ok(()));
        assert!(selected(&t, &[]));
        assert!(selected(&t, &["threads".into()]));
        assert!(!selected(&t, &["swap".into()]));
    }
}
