//! Figure 2, switch: an `MMVIEW_MIGRATE` round trip (base -> view -> base)
//! against one `getppid()`, both averaged over a batch of calls.
//!
//! The process has 1 MiB unshared (so the view really differs from the base)
//! and the thread touches nothing but shared memory while it is in the view.

use crate::clock::Stamp;
use std::hint::black_box;

use super::Config;
use crate::measure::{interleave, Case, Failure, Result};
use crate::report::{diag, Rows};
use crate::sys::{in_view, ns, unshare, Region, View, MIB};

pub fn run(config: &Config) -> Result<()> {
    let batch: usize = config.pick(200, 2000);
    let region = Region::touched(MIB, 1)?;
    let view = match unshare(&region, region.len()).and_then(|()| View::create()) {
        Ok(view) => Ok(view),
        Err(Failure::Unavailable(why)) => {
            diag!("switch: mmview figures n/a on this kernel ({why}); getppid() measured");
            Err(why)
        }
        Err(broken) => return Err(broken),
    };
    let outcomes = interleave(
        config.reps,
        vec![
            Case::new("getppid", || {
                let start = Stamp::now();
                for _ in 0..batch {
                    // SAFETY: getppid has no preconditions.
                    black_box(unsafe { libc::getppid() });
                }
                Ok(ns(start.elapsed()) / batch as f64)
            }),
            Case::new("migrate_round_trip", || {
                let view = view
                    .as_ref()
                    .map_err(|why| Failure::Unavailable(why.clone()))?;
                let start = Stamp::now();
                for _ in 0..batch {
                    // SAFETY: nothing runs in the view; the only unshared
                    // memory is `region`, which is not accessed.
                    unsafe { in_view(view, || ()) }?;
                }
                Ok(ns(start.elapsed()) / batch as f64)
            }),
        ],
    )
    .map_err(Failure::Broken)?;
    let mut series = outcomes.into_iter().map(|o| o.into_series());
    let (Some(getppid), Some(migrate)) = (series.next(), series.next()) else {
        return Err(Failure::Broken("lost a series".into()));
    };
    Rows {
        figure: "switch",
        params: &format!("batch={batch}"),
        metric: "time",
        unit: "ns",
    }
    .all(&getppid, &[&migrate]);
    if let Ok(view) = view {
        view.delete()?;
    }
    Ok(())
}
