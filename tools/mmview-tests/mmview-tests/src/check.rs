//! What a test returns, and the macros and helpers that build it.
//!
//! A test is a `fn() -> TestResult`. It fails by returning a [`Failure`],
//! usually through one of the macros:
//!
//! - `fail!("fmt", ..)` returns a failure,
//! - `ensure!(cond, "fmt", ..)` fails unless `cond` holds,
//! - `ensure_eq!(got, expected, "fmt", ..)` fails with both values shown,
//! - `skip!("fmt", ..)` ends the test as skipped,
//! - `diag!("fmt", ..)` prints a `# ` diagnostic line (see `framework::diag`),
//!
//! or with `?`: any `std::error::Error` converts into a failure, and
//! [`Context`] adds what was being done (`read(path).context("reading swaps")?`).

use std::fmt;

/// The result of a test (and of the helpers tests call).
pub type TestResult<T = ()> = Result<T, Failure>;

/// Why a test did not pass: a one-line reason, or a skip.
pub struct Failure {
    message: String,
    skip: bool,
}

impl Failure {
    /// A failure with the given reason.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            skip: false,
        }
    }

    /// Not a failure: the test does not apply here, for the given reason.
    #[allow(dead_code)] // used through skip!, which no test needs yet
    pub fn skip(reason: impl Into<String>) -> Self {
        Failure {
            message: reason.into(),
            skip: true,
        }
    }

    /// The reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether this is a skip rather than a failure.
    pub fn is_skip(&self) -> bool {
        self.skip
    }
}

/// Any error converts into a failure, so that tests can use `?`. (`Failure`
/// itself is deliberately not a `std::error::Error`, as with `anyhow`.)
impl<E: std::error::Error> From<E> for Failure {
    fn from(err: E) -> Self {
        Failure::new(err.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.skip { "Skip" } else { "Failure" };
        write!(f, "{kind}({:?})", self.message)
    }
}

/// Adds context to errors and turns `None` into a failure.
pub trait Context<T> {
    /// On error, a failure reading `"what: error"`.
    fn context(self, what: impl fmt::Display) -> TestResult<T>;

    /// Like [`Context::context`], with the text computed only on error.
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> TestResult<T>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> TestResult<T> {
        self.map_err(|e| Failure::new(format!("{what}: {e}")))
    }

    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> TestResult<T> {
        self.map_err(|e| Failure::new(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl fmt::Display) -> TestResult<T> {
        self.ok_or_else(|| Failure::new(what.to_string()))
    }

    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> TestResult<T> {
        self.ok_or_else(|| Failure::new(what().to_string()))
    }
}

/// Combines independent checks: every failure is printed as a diagnostic,
/// and the result fails with the first reason (and the count of others).
pub fn check_all(results: impl IntoIterator<Item = TestResult>) -> TestResult {
    let failures: Vec<Failure> = results.into_iter().filter_map(Result::err).collect();
    let Some(first) = failures.first() else {
        return Ok(());
    };
    if failures.len() == 1 {
        return Err(Failure::new(first.message()));
    }
    for failure in &failures {
        crate::framework::diag(format_args!("{failure}"));
    }
    Err(Failure::new(format!(
        "{} (and {} more failures)",
        first.message(),
        failures.len() - 1
    )))
}

/// Returns a failure with a formatted reason.
macro_rules! fail {
    ($($arg:tt)+) => {
        return Err($crate::check::Failure::new(format!($($arg)+)))
    };
}

/// Fails with a formatted reason unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::check::fail!($($arg)+);
        }
    };
}

/// Fails unless `got == expected`; the reason shows both (Debug) values.
macro_rules! ensure_eq {
    ($got:expr, $expected:expr, $($arg:tt)+) => {
        match (&$got, &$expected) {
            (got, expected) => {
                if got != expected {
                    $crate::check::fail!(
                        "{}: expected {:?}, got {:?}",
                        format_args!($($arg)+),
                        expected,
                        got
                    );
                }
            }
        }
    };
}

/// Ends the test as skipped, with a formatted reason.
#[allow(unused_macros)] // part of the test API; no test needs it yet
macro_rules! skip {
    ($($arg:tt)+) => {
        return Err($crate::check::Failure::skip(format!($($arg)+)))
    };
}

/// Prints a diagnostic (`# ...`) line for the running test.
macro_rules! diag {
    ($($arg:tt)+) => {
        $crate::framework::diag(format_args!($($arg)+))
    };
}

#[allow(unused_imports)] // skip! has no user yet; it is part of the test API.
pub(crate) use {diag, ensure, ensure_eq, fail, skip};

/// [`ensure_eq!`] as a value, for [`check_all`]: `Ok` if `got == want`,
/// else the failure `"what: expected .., got .."`.
pub fn check_eq<T: PartialEq + fmt::Debug>(got: T, want: T, what: &str) -> TestResult {
    ensure_eq!(got, want, "{what}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq_check(a: u32, b: u32) -> TestResult {
        ensure_eq!(a, b, "value of {}", "x");
        Ok(())
    }

    #[test]
    fn ensure_eq_shows_both_values() {
        assert!(eq_check(1, 1).is_ok());
        let err = eq_check(2, 1).err().map(|f| f.to_string());
        assert_eq!(err.as_deref(), Some("value of x: expected 1, got 2"));
    }

    #[test]
    fn check_eq_is_ensure_eq() {
        assert!(check_eq(3, 3, "x").is_ok());
        let err = check_eq(2, 1, "x").err().map(|f| f.to_string());
        assert_eq!(err.as_deref(), Some("x: expected 1, got 2"));
    }

    #[test]
    fn context_prefixes_errors() {
        let r: Result<(), std::io::Error> = Err(std::io::Error::from_raw_os_error(libc::ENOENT));
        let f = r
            .context("reading /nope")
            .err()
            .map(|f| f.to_string())
            .unwrap_or_default();
        assert!(
            f.starts_with("reading /nope: No such file or directory"),
            "{f}"
        );
        let none: Option<u8> = None;
        assert_eq!(
            none.context("missing")
                .err()
                .map(|f| f.to_string())
                .as_deref(),
            Some("missing")
        );
    }

    #[test]
    fn check_all_keeps_the_first_reason() {
        assert!(check_all([Ok(()), Ok(())]).is_ok());
        let one = check_all([Ok(()), Err(Failure::new("a"))])
            .err()
            .map(|f| f.to_string());
        assert_eq!(one.as_deref(), Some("a"));
        let two = check_all([Err(Failure::new("a")), Ok(()), Err(Failure::new("b"))]);
        assert_eq!(
            two.err().map(|f| f.to_string()).as_deref(),
            Some("a (and 1 more failures)")
        );
    }

    #[test]
    fn skip_is_not_a_failure() {
        fn skipped() -> TestResult {
            skip!("not here");
        }
        let f = skipped().err();
        assert!(f.as_ref().is_some_and(Failure::is_skip));
        assert_eq!(f.map(|f| f.to_string()).as_deref(), Some("not here"));
    }
}
