//! Figure 3, first touch: reading a page of *shared* memory for the first
//! time in a new view, against a minor fault in the base (the first read of
//! a fresh anonymous page, which maps the shared zero page: a fault that
//! neither allocates nor does I/O). Per page, over a region of P pages.
//!
//! The reads in the view also check that the view sees the base's data.

use crate::clock::Stamp;

use super::Config;
use crate::measure::{broken, interleave, Case, Failure, Result};
use crate::report::{diag, Rows};
use crate::sys::{in_view, ns, page_size, Region, View};

pub fn run(config: &Config) -> Result<()> {
    let pages: usize = config.pick(256, 4096);
    let len = pages * page_size();
    const VALUE: u64 = 0x5348_4152_4544; // "SHARED"
    let shared = Region::touched(len, VALUE)?;
    let expected = shared.expected_sum(VALUE);
    let outcomes = interleave(
        config.reps,
        vec![
            Case::new("minor_fault", || {
                let fresh = Region::new(len)?;
                let start = Stamp::now();
                let sum = fresh.read_pages();
                let elapsed = start.elapsed();
                if sum != 0 {
                    broken!("fresh anonymous memory reads {sum:#x}, not zeros");
                }
                Ok(ns(elapsed) / pages as f64)
            }),
            Case::new("view_first_touch", || {
                let view = View::create()?;
                // SAFETY: in the view, only `shared` (a shared range) is read,
                // through raw pointers.
                let (sum, elapsed) = unsafe {
                    in_view(&view, || {
                        let start = Stamp::now();
                        let sum = shared.read_pages();
                        (sum, start.elapsed())
                    })
                }?;
                view.delete()?;
                if sum != expected {
                    broken!(
                        "shared memory read in a view sums to {sum:#x}, the base wrote {expected:#x}"
                    );
                }
                Ok(ns(elapsed) / pages as f64)
            }),
        ],
    )
    .map_err(Failure::Broken)?;
    let mut series = outcomes.into_iter().map(|o| o.into_series());
    let (Some(fault), Some(touch)) = (series.next(), series.next()) else {
        return Err(Failure::Broken("lost a series".into()));
    };
    if let Some(why) = &touch.unavailable {
        diag!("first_touch: mmview figures n/a on this kernel ({why}); minor faults measured");
    }
    Rows {
        figure: "first_touch",
        params: &format!("pages={pages}"),
        metric: "time_per_page",
        unit: "ns",
    }
    .all(&fault, &[&touch]);
    Ok(())
}
