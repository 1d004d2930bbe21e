//! Output: KTAP lines, diagnostics and the CSV result rows.
//!
//! Every result is one line `# CSV,<row>` with the columns of [`HEADER`]
//! (printed once as `# CSV,<header>`), so the KTAP stream stays valid and the
//! host finds the rows with a prefix match:
//!
//! | column | meaning |
//! |---|---|
//! | `figure` | the figure (`create`, `switch`, `first_touch`, `cow`, `database`, `unused`) |
//! | `case` | what was measured (`fork`, `create`, `getppid`, ...) |
//! | `params` | `key=value` pairs separated by `;` (`s_mib=64;u_pct=10`), or empty |
//! | `metric`, `unit` | e.g. `time`/`ns`, `throughput`/`tx_per_s`, `memory`/`KiB` |
//! | `reps` | how many repetitions gave a value (0: unavailable) |
//! | `median`, `min`, `max` | over the repetitions |
//! | `baseline` | the case this one is compared with; empty on a baseline row |
//! | `baseline_median` | its median |
//! | `ratio_median`, `ratio_min`, `ratio_max` | of this case / baseline, paired by repetition |
//! | `note` | why values are missing (e.g. `MMVIEW_CREATE: EOPNOTSUPP (...)`) |
//!
//! Missing values are empty fields.

use std::io::{self, Write};

use crate::measure::Series;

/// The CSV header (without the `# CSV,` prefix).
pub const HEADER: &str = "figure,case,params,metric,unit,reps,median,min,max,baseline,\
                          baseline_median,ratio_median,ratio_min,ratio_max,note";

/// Writes one line to stdout, now. A closed stdout is ignored.
pub fn emit(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints each line of a message as a `# ` diagnostic.
pub fn diag_lines(text: &str) {
    for line in text.lines() {
        emit(&format!("# {line}"));
    }
}

/// Prints a formatted `# ` diagnostic.
macro_rules! diag {
    ($($arg:tt)+) => {
        $crate::report::diag_lines(&format!($($arg)+))
    };
}
pub(crate) use diag;

/// What a group of rows has in common.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    /// The figure.
    pub figure: &'a str,
    /// The parameters (`key=value;...`).
    pub params: &'a str,
    /// The metric.
    pub metric: &'a str,
    /// Its unit.
    pub unit: &'a str,
}

impl Rows<'_> {
    /// Prints the row of a baseline.
    pub fn baseline(&self, base: &Series) {
        emit(&format!("# CSV,{}", self.baseline_line(base)));
    }

    /// Prints the row of a subject compared with `base`.
    pub fn subject(&self, base: &Series, subject: &Series) {
        emit(&format!("# CSV,{}", self.subject_line(base, subject)));
    }

    /// Prints the baseline row and one row per subject.
    pub fn all(&self, base: &Series, subjects: &[&Series]) {
        self.baseline(base);
        for subject in subjects {
            self.subject(base, subject);
        }
    }

    fn baseline_line(&self, base: &Series) -> String {
        self.line(base, None)
    }

    fn subject_line(&self, base: &Series, subject: &Series) -> String {
        self.line(subject, Some(base))
    }

    fn line(&self, series: &Series, base: Option<&Series>) -> String {
        let stats = series.stats();
        let ratio = base.and_then(|b| series.ratio_to(b));
        let base_stats = base.and_then(Series::stats);
        let mut note = series.unavailable.clone().unwrap_or_default();
        if note.is_empty() {
            if let Some(why) = base.and_then(|b| b.unavailable.as_ref()) {
                note = format!("baseline unavailable: {why}");
            }
        }
        let fields = [
            clean(self.figure),
            clean(&series.case),
            clean(self.params),
            clean(self.metric),
            clean(self.unit),
            stats.map_or(0, |s| s.count).to_string(),
            num(stats.map(|s| s.median)),
            num(stats.map(|s| s.min)),
            num(stats.map(|s| s.max)),
            base.map(|b| clean(&b.case)).unwrap_or_default(),
            num(base_stats.map(|s| s.median)),
            num(ratio.map(|r| r.median)),
            num(ratio.map(|r| r.min)),
            num(ratio.map(|r| r.max)),
            clean(&note),
        ];
        fields.join(",")
    }
}

/// A field without the characters that would break the CSV line.
fn clean(text: &str) -> String {
    text.replace([',', '\n', '\r'], ";")
}

/// A number with four significant digits (no exponent), or empty.
pub fn num(value: Option<f64>) -> String {
    let Some(x) = value else {
        return String::new();
    };
    if !x.is_finite() {
        return String::new();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = usize::try_from(3 - magnitude).unwrap_or(0).min(9);
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_four_digits() {
        assert_eq!(num(Some(123_456.7)), "123457");
        assert_eq!(num(Some(1234.6)), "1235");
        assert_eq!(num(Some(12.345_67)), "12.35");
        assert_eq!(num(Some(0.012_345)), "0.01235");
        assert_eq!(num(Some(1.0)), "1.000");
        assert_eq!(num(Some(0.0)), "0");
        assert_eq!(num(Some(f64::INFINITY)), "");
        assert_eq!(num(None), "");
    }

    #[test]
    fn rows_have_the_header_columns() {
        let rows = Rows {
            figure: "create",
            params: "s_mib=16;u_pct=1",
            metric: "time",
            unit: "ns",
        };
        let base = Series::new("fork", vec![Some(100.0), Some(200.0), Some(300.0)], None);
        let subj = Series::new("create", vec![Some(10.0), Some(40.0), Some(15.0)], None);
        let na = Series::new(
            "create",
            vec![None; 3],
            Some("MMVIEW_CREATE: EOPNOTSUPP (Operation, not supported)".into()),
        );
        let columns = HEADER.split(',').count();
        let b = rows.baseline_line(&base);
        assert_eq!(
            b,
            "create,fork,s_mib=16;u_pct=1,time,ns,3,200.0,100.0,300.0,,,,,,"
        );
        let s = rows.subject_line(&base, &subj);
        assert_eq!(
            s,
            "create,create,s_mib=16;u_pct=1,time,ns,3,15.00,10.00,40.00,fork,200.0,\
             0.1000,0.05000,0.2000,"
        );
        let n = rows.subject_line(&base, &na);
        assert_eq!(
            n,
            "create,create,s_mib=16;u_pct=1,time,ns,0,,,,fork,200.0,,,,\
             MMVIEW_CREATE: EOPNOTSUPP (Operation; not supported)"
        );
        for line in [b, s, n] {
            assert_eq!(line.split(',').count(), columns, "{line}");
        }
    }
}
