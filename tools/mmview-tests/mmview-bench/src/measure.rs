//! Repetitions, interleaving and statistics.
//!
//! Timings under TCG are emulated, so no figure stands alone: every subject
//! is measured together with its baseline, in the same process, with their
//! repetitions interleaved (the order rotates each repetition, so a slow
//! drift of the machine hits both alike). A repetition yields one value per
//! case; a figure is the median over repetitions with the min and max, and
//! its ratio to the baseline is taken per repetition (subject and baseline of
//! the same repetition) before the median, min and max of those ratios.

use std::fmt;

/// Why a measurement did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The kernel does not provide what the measurement needs (an mmview op
    /// returned `EOPNOTSUPP`, or `ENOSYS` on a kernel without mmview). Not an
    /// error of the benchmark: the figure is reported as unavailable.
    Unavailable(String),
    /// The benchmark itself broke (a system call failed unexpectedly, a
    /// snapshot was inconsistent, ...): the figure is `not ok`.
    Broken(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Unavailable(why) => write!(f, "unavailable: {why}"),
            Failure::Broken(why) => f.write_str(why),
        }
    }
}

/// What a measurement returns.
pub type Result<T, E = Failure> = std::result::Result<T, E>;

/// Returns a [`Failure::Broken`] with a formatted reason.
macro_rules! broken {
    ($($arg:tt)+) => {
        return Err($crate::measure::Failure::Broken(format!($($arg)+)))
    };
}
pub(crate) use broken;

/// Turns the result of an mmview call into a measurement result: `EOPNOTSUPP`
/// (not implemented yet) and `ENOSYS` (no mmview) make the measurement
/// unavailable, any other error breaks it. `what` names the call.
pub fn mm<T>(what: &str, result: mmview::Result<T>) -> Result<T> {
    result.map_err(|e| {
        if e.is(libc::EOPNOTSUPP) || e.is(libc::ENOSYS) {
            Failure::Unavailable(format!("{what}: {e}"))
        } else {
            Failure::Broken(format!("{what}: {e}"))
        }
    })
}

/// Median, min and max of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// The median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values there were.
    pub count: usize,
}

impl Stats {
    /// The statistics of `values`; None if there are none (NaNs are left out).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stats> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Stats {
            median,
            min: v[0],
            max: v[n - 1],
            count: n,
        })
    }
}

/// The values of one case, one per repetition (None where it has none), and
/// why it has none, if it was unavailable.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The case name, as it appears in the CSV.
    pub case: String,
    /// A value per repetition.
    pub values: Vec<Option<f64>>,
    /// Why there are no values (the case was unavailable).
    pub unavailable: Option<String>,
}

impl Series {
    /// A series with these values.
    #[cfg(test)]
    pub fn new(case: &str, values: Vec<Option<f64>>, unavailable: Option<String>) -> Self {
        Series {
            case: case.to_string(),
            values,
            unavailable,
        }
    }

    /// Statistics of the values that exist.
    pub fn stats(&self) -> Option<Stats> {
        Stats::of(self.values.iter().flatten().copied())
    }

    /// Statistics of `self / baseline`, repetition by repetition.
    pub fn ratio_to(&self, baseline: &Series) -> Option<Stats> {
        Stats::of(
            self.values
                .iter()
                .zip(&baseline.values)
                .filter_map(|pair| match pair {
                    (Some(s), Some(b)) if *b != 0.0 => Some(s / b),
                    _ => None,
                }),
        )
    }
}

/// One case of an interleaved measurement: a name and a function that
/// measures one repetition.
pub struct Case<'a, T> {
    name: &'a str,
    run: Box<dyn FnMut() -> Result<T> + 'a>,
}

impl<'a, T> Case<'a, T> {
    /// A case named `name` measured by `run`.
    pub fn new(name: &'a str, run: impl FnMut() -> Result<T> + 'a) -> Self {
        Case {
            name,
            run: Box::new(run),
        }
    }
}

/// The values one case produced, per repetition.
pub struct Outcome<T> {
    /// The case name.
    pub case: String,
    /// A value per repetition; None once the case turned out unavailable.
    pub values: Vec<Option<T>>,
    /// Why the case is unavailable, if it is.
    pub unavailable: Option<String>,
}

impl<T> Outcome<T> {
    /// The series of `f(value)` (None where `f` has no value for it).
    pub fn series(&self, f: impl Fn(&T) -> Option<f64>) -> Series {
        Series {
            case: self.case.clone(),
            values: self
                .values
                .iter()
                .map(|v| v.as_ref().and_then(&f))
                .collect(),
            unavailable: self.unavailable.clone(),
        }
    }
}

impl Outcome<f64> {
    /// The values as a series.
    pub fn into_series(self) -> Series {
        Series {
            case: self.case,
            values: self.values,
            unavailable: self.unavailable,
        }
    }
}

/// Runs `reps` repetitions of every case. Repetition `r` runs the cases in
/// the order `r, r + 1, ...` (modulo their count), so that each case comes
/// first equally often. A case that is unavailable is not run again; a broken
/// one ends the whole measurement with its reason.
pub fn interleave<T>(
    reps: usize,
    cases: Vec<Case<'_, T>>,
) -> std::result::Result<Vec<Outcome<T>>, String> {
    let mut cases = cases;
    let mut outcomes: Vec<Outcome<T>> = cases
        .iter()
        .map(|c| Outcome {
            case: c.name.to_string(),
            values: Vec::with_capacity(reps),
            unavailable: None,
        })
        .collect();
    let n = cases.len();
    for rep in 0..reps {
        for outcome in &mut outcomes {
            outcome.values.push(None);
        }
        for k in 0..n {
            let i = (rep + k) % n;
            if outcomes[i].unavailable.is_some() {
                continue;
            }
            match (cases[i].run)() {
                Ok(value) => outcomes[i].values[rep] = Some(value),
                Err(Failure::Unavailable(why)) => outcomes[i].unavailable = Some(why),
                Err(Failure::Broken(why)) => return Err(format!("{}: {why}", cases[i].name)),
            }
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_odd_and_even_counts() {
        let s = Stats::of([3.0, 1.0, 2.0]).expect("stats");
        assert_eq!((s.median, s.min, s.max, s.count), (2.0, 1.0, 3.0, 3));
        let s = Stats::of([4.0, 1.0, 2.0, 3.0]).expect("stats");
        assert_eq!(s.median, 2.5);
        assert!(Stats::of([]).is_none());
        assert!(Stats::of([f64::NAN]).is_none());
    }

    #[test]
    fn ratios_pair_repetitions() {
        let base = Series::new("b", vec![Some(10.0), Some(20.0), None, Some(5.0)], None);
        let subj = Series::new("s", vec![Some(20.0), Some(20.0), Some(1.0), None], None);
        let r = subj.ratio_to(&base).expect("ratios");
        assert_eq!((r.median, r.min, r.max, r.count), (1.5, 1.0, 2.0, 2));
        let none = Series::new("u", vec![None; 4], Some("n/a".into()));
        assert!(none.ratio_to(&base).is_none());
        assert!(none.stats().is_none());
    }

    #[test]
    fn interleave_rotates_and_handles_failures() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut unavailable_calls = 0;
        let outcomes = interleave(
            3,
            vec![
                Case::new("a", || {
                    order.borrow_mut().push('a');
                    Ok(1.0)
                }),
                Case::new("b", || {
                    order.borrow_mut().push('b');
                    Ok(2.0)
                }),
                Case::new("c", || {
                    unavailable_calls += 1;
                    Err(Failure::Unavailable("EOPNOTSUPP".into()))
                }),
            ],
        )
        .unwrap_or_default();
        assert_eq!(order.borrow().iter().collect::<String>(), "abbaab");
        assert_eq!(unavailable_calls, 1);
        assert_eq!(outcomes[0].values, vec![Some(1.0); 3]);
        assert_eq!(outcomes[2].values, vec![None; 3]);
        assert_eq!(outcomes[2].unavailable.as_deref(), Some("EOPNOTSUPP"));

        let broken = interleave(
            2,
            vec![
                Case::new("x", || Ok(1.0)),
                Case::new("y", || Err(Failure::Broken("boom".into()))),
            ],
        );
        assert_eq!(broken.err().as_deref(), Some("y: boom"));
    }

    #[test]
    fn mmview_errors_classify() {
        let e = |errno| mm::<()>("op", Err(mmview::Error::from_errno(errno)));
        assert!(matches!(e(libc::EOPNOTSUPP), Err(Failure::Unavailable(_))));
        assert!(matches!(e(libc::ENOSYS), Err(Failure::Unavailable(_))));
        assert_eq!(
            e(libc::EINVAL),
            Err(Failure::Broken("op: EINVAL (Invalid argument)".into()))
        );
    }
}
