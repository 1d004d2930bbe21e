//! `mmview-bench`: mmview against `fork()` and the userspace alternatives,
//! measured inside the guest.
//!
//! ```text
//! mmview-bench [--smoke] [--only FIG[,FIG]] [--reps N] [--list]
//! ```
//!
//! Prints KTAP version 1 on stdout: the plan, `# META,key,value` lines about
//! the machine, the CSV header `# CSV,figure,...` and then, per figure, its
//! `# CSV,...` rows and `ok N bench_<figure>` (`not ok` only when the
//! benchmark itself broke: an unexpected errno, an inconsistent snapshot, a
//! crash or a timeout). See `report` for the CSV columns.
//!
//! Each figure runs in a child process of its own, forked from this process,
//! which never calls mmview: a crash or left-over view cannot affect the next
//! figure, and the `unused` figure measures a process that has never called
//! mmview.

mod clock;
mod figures;
mod measure;
mod report;
mod runner;
mod sys;

use std::process::ExitCode;

use figures::{Config, Figure};
use report::{emit, HEADER};

const USAGE: &str = "\
usage: mmview-bench [--smoke] [--only FIG[,FIG]] [--reps N] [--list]

Benchmarks mmview against fork() and userspace alternatives and prints KTAP
with the results as '# CSV,' lines. Figures run in this order:

  create       1. MMVIEW_CREATE vs fork() (S MiB touched, U % unshared)
  switch       2. MMVIEW_MIGRATE round trip vs getppid()
  first_touch  3. first read of shared memory in a view vs a minor fault
  cow          4. first store to an unshared page in a view vs after fork()
  database     5. snapshots of a table under writes: mmview, fork(), memcpy
  unused       6. page faults and fork() normalised to a CPU loop

  --smoke        tiny sizes and few repetitions (seconds in all)
  --only FIGS    run only these figures (comma-separated; may be repeated)
  --reps N       repetitions of each measurement (default 11, smoke 3)
  --list         print the figure names and exit
  --help         print this help

Exit status: 0 if every figure ran, 1 if one broke, 2 on a usage error.";

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    smoke: bool,
    only: Vec<&'static Figure>,
    reps: Option<usize>,
    list: bool,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Run(Options),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        smoke: false,
        only: Vec::new(),
        reps: None,
        list: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--smoke" => options.smoke = true,
            "--list" => options.list = true,
            "--only" => {
                let value = args.next().ok_or("--only needs figure names")?;
                for name in value.split(',').filter(|n| !n.is_empty()) {
                    let figure =
                        figures::by_name(name).ok_or_else(|| format!("no figure {name:?}"))?;
                    if !options.only.contains(&figure) {
                        options.only.push(figure);
                    }
                }
            }
            "--reps" => {
                let value = args.next().ok_or("--reps needs a number")?;
                let reps: usize = value
                    .parse()
                    .ok()
                    .filter(|&n| (1..=1000).contains(&n))
                    .ok_or_else(|| format!("bad --reps {value:?} (1 to 1000)"))?;
                options.reps = Some(reps);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Command::Run(options))
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            emit(USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mmview-bench: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Keep the run order of ALL whatever the order on the command line.
    let selected: Vec<&Figure> = figures::ALL
        .iter()
        .filter(|f| options.only.is_empty() || options.only.contains(f))
        .collect();
    if options.list {
        for figure in &selected {
            emit(&format!("{:<12} {}", figure.name, figure.about));
        }
        return ExitCode::SUCCESS;
    }
    let config = Config {
        smoke: options.smoke,
        reps: options.reps.unwrap_or(if options.smoke { 3 } else { 11 }),
    };
    emit("KTAP version 1");
    emit(&format!("1..{}", selected.len()));
    let clock = clock::init();

    for (key, value) in runner::machine_info(&config) {
        emit(&format!("# META,{key},{value}"));
    }
    emit(&format!("# META,clock,{}", clock.replace(',', ";")));
    emit(&format!("# CSV,{HEADER}"));
    let mut broken = 0;
    for (index, figure) in selected.iter().enumerate() {
        let number = index + 1;
        match runner::run(figure, &config) {
            Ok(()) => emit(&format!("ok {number} bench_{}", figure.name)),
            Err(reason) => {
                broken += 1;
                emit(&format!(
                    "not ok {number} bench_{} # {}",
                    figure.name,
                    reason.replace('\n', "; ")
                ));
            }
        }
    }
    emit(&format!(
        "# mmview-bench: {} figures ran, {broken} broke",
        selected.len() - broken
    ));
    if broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_options() {
        let Ok(Command::Run(o)) = parse(&["--smoke", "--only", "cow,create", "--reps", "5"]) else {
            panic!("did not parse");
        };
        assert!(o.smoke && !o.list);
        assert_eq!(o.reps, Some(5));
        let names: Vec<&str> = o.only.iter().map(|f| f.name).collect();
        assert_eq!(names, ["cow", "create"]);
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert!(parse(&["--only", "nope"]).is_err());
        assert!(parse(&["--only"]).is_err());
        assert!(parse(&["--reps", "0"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn figure_names_are_unique_and_listed_in_the_usage() {
        for (i, f) in figures::ALL.iter().enumerate() {
            assert!(USAGE.contains(&format!("  {:<12} ", f.name)), "{}", f.name);
            assert!(figures::ALL[i + 1..].iter().all(|g| g.name != f.name));
        }
    }
}
