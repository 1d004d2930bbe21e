//! One test per KUnit suite of the running kernel: the suite's verdict, as
//! `/sys/kernel/debug/kunit/<suite>/results` reports it.

use std::path::Path;

use crate::check::{diag, fail, TestResult};
use crate::framework::Test;
use crate::util::procfs::read_file;

const KUNIT_DIR: &str = "/sys/kernel/debug/kunit";

/// Suites the kernel must have: their absence is a failure.
const REQUIRED_SUITES: &[&str] = &["mmview_rs"];

/// A `kernel_kunit_<suite>` test for every suite found, and, if `mmview` is
/// built in, for every required suite even if it is not.
pub fn tests(mmview: bool) -> Vec<Test> {
    let mut suites = find_suites(Path::new(KUNIT_DIR));
    let required = if mmview { REQUIRED_SUITES } else { &[] };
    for required in required {
        if !suites.iter().any(|s| s == required) {
            suites.push(required.to_string());
        }
    }
    suites.sort();
    suites
        .into_iter()
        .map(|suite| Test::new(test_name(&suite), move || check_suite(&suite)))
        .collect()
}

/// `kernel_kunit_<suite>`, with characters other than ASCII letters and
/// digits replaced by `_`.
fn test_name(suite: &str) -> String {
    let suite: String = suite
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("kernel_kunit_{suite}")
}

/// The suites that have a results file under `dir` (none if it is missing).
fn find_suites(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("results").is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect()
}

fn check_suite(suite: &str) -> TestResult {
    let path = format!("{KUNIT_DIR}/{suite}/results");
    if !Path::new(KUNIT_DIR).is_dir() {
        fail!("no {KUNIT_DIR}: debugfs not mounted, or no CONFIG_KUNIT_DEBUGFS (suite {suite})");
    }
    if !Path::new(&path).is_file() {
        fail!("KUnit suite {suite} is absent (no {path})");
    }
    let results = parse_results(&read_file(&path)?);
    for case in &results.failed_cases {
        diag!("{suite}: {case}");
    }
    diag!(
        "{suite}: {} of {} cases ok",
        results.cases_ok,
        results.cases
    );
    match results.verdict {
        Some(true) => Ok(()),
        Some(false) => fail!("KUnit suite {suite} failed"),
        None => fail!("{path} has no top-level result line"),
    }
}

/// What a suite's results file says.
#[derive(Debug, Default, PartialEq, Eq)]
struct SuiteResults {
    /// The last top-level (unindented) result line: ok or not ok.
    verdict: Option<bool>,
    /// Test cases (first nesting level) and how many are ok.
    cases: usize,
    cases_ok: usize,
    /// The `not ok` lines of the cases (and their parameters), trimmed.
    failed_cases: Vec<String>,
}

/// Parses the KTAP of a debugfs results file:
///
/// ```text
/// KTAP version 1
/// 1..1
///     KTAP version 1
///     # Subtest: suite
///     1..2
///     ok 1 case_a
///     not ok 2 case_b
/// not ok 1 suite
/// ```
fn parse_results(text: &str) -> SuiteResults {
    let mut results = SuiteResults::default();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let ok = if trimmed.starts_with("ok ") {
            true
        } else if trimmed.starts_with("not ok ") {
            false
        } else {
            continue;
        };
        if indent == 0 {
            results.verdict = Some(ok);
            continue;
        }
        if indent == 4 {
            results.cases += 1;
            results.cases_ok += usize::from(ok);
        }
        if !ok {
            results.failed_cases.push(trimmed.to_string());
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSING: &str =
        "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: mmview_rs\n    \
        1..2\n    ok 1 current_is_zero\n        ok 1 param_a\n        ok 2 param_b # SKIP x\n    \
        ok 2 args_checked\nok 1 mmview_rs\n";

    #[test]
    fn reads_a_passing_suite() {
        let r = parse_results(PASSING);
        assert_eq!(r.verdict, Some(true));
        assert_eq!((r.cases, r.cases_ok), (2, 2));
    }

    #[test]
    fn reads_a_failing_suite() {
        let text = PASSING
            .replace("        ok 1 param_a", "        not ok 1 param_a")
            .replace(
                "    ok 2 args_checked\nok 1",
                "    not ok 2 args_checked\nnot ok 1",
            );
        let r = parse_results(&text);
        assert_eq!(r.verdict, Some(false));
        assert_eq!((r.cases, r.cases_ok), (2, 1));
        assert_eq!(
            r.failed_cases,
            vec!["not ok 1 param_a", "not ok 2 args_checked"]
        );
    }

    #[test]
    fn no_verdict_without_a_top_level_line() {
        assert_eq!(
            parse_results("KTAP version 1\n1..1\n    ok 1 a\n").verdict,
            None
        );
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(test_name("mmview_rs"), "kernel_kunit_mmview_rs");
        assert_eq!(test_name("list-kunit.test"), "kernel_kunit_list_kunit_test");
    }

    #[test]
    fn the_required_suite_is_always_listed() {
        let names: Vec<String> = tests(true).iter().map(|t| t.name().to_string()).collect();
        assert!(
            names.iter().any(|n| n == "kernel_kunit_mmview_rs"),
            "{names:?}"
        );
    }
}
