//! Figure 4, copy-on-write: the first store to each page of an unshared
//! region in a new view, against the first store to each page after
//! `fork()` (in the parent, while the child is still alive, so that every
//! store copies the page). Per page, over a region of P pages.
//!
//! The view's stores are checked to stay out of the base.

use crate::clock::Stamp;
use std::cell::Cell;
use std::os::fd::AsRawFd;

use super::Config;
use crate::measure::{broken, interleave, Case, Failure, Result};
use crate::report::{diag, Rows};
use crate::sys::{
    fork_timed, in_view, ns, page_size, pipe, unshare, wait_for_release, Region, View,
};

pub fn run(config: &Config) -> Result<()> {
    let pages: usize = config.pick(256, 4096);
    let region = Region::touched(pages * page_size(), 1)?;
    // What the base's pages hold: changed by the fork case only.
    let value = Cell::new(1u64);
    let unavailable = match unshare(&region, region.len()) {
        Ok(()) => None,
        Err(Failure::Unavailable(why)) => Some(why),
        Err(broken) => return Err(broken),
    };
    let outcomes = interleave(
        config.reps,
        vec![
            Case::new("fork_cow", || {
                let (release_r, release_w) = pipe()?;
                let (r, w) = (release_r.as_raw_fd(), release_w.as_raw_fd());
                let (child, _) = fork_timed(|| {
                    wait_for_release(r, w);
                    0
                })?;
                drop(release_r);
                value.set(value.get() + 1);
                let start = Stamp::now();
                region.write_pages(0, pages, value.get());
                let elapsed = start.elapsed();
                drop(release_w);
                child.wait()?;
                Ok(ns(elapsed) / pages as f64)
            }),
            Case::new("view_cow", || {
                if let Some(why) = &unavailable {
                    return Err(Failure::Unavailable(why.clone()));
                }
                let view = View::create()?;
                let in_view_value = value.get() ^ 0xc0c0;
                // SAFETY: in the view, only `region` (the unshared range) is
                // accessed, through raw pointers.
                let (elapsed, seen) = unsafe {
                    in_view(&view, || {
                        let start = Stamp::now();
                        region.write_pages(0, pages, in_view_value);
                        let elapsed = start.elapsed();
                        (elapsed, region.read_pages())
                    })
                }?;
                let base = region.read_pages();
                view.delete()?;
                if seen != region.expected_sum(in_view_value) {
                    broken!("the view does not read back its own stores");
                }
                if base != region.expected_sum(value.get()) {
                    broken!("stores made in a view to unshared memory show in the base");
                }
                Ok(ns(elapsed) / pages as f64)
            }),
        ],
    )
    .map_err(Failure::Broken)?;
    let mut series = outcomes.into_iter().map(|o| o.into_series());
    let (Some(fork), Some(view)) = (series.next(), series.next()) else {
        return Err(Failure::Broken("lost a series".into()));
    };
    if let Some(why) = &view.unavailable {
        diag!("cow: mmview figures n/a on this kernel ({why}); fork() copy-on-write measured");
    }
    Rows {
        figure: "cow",
        params: &format!("pages={pages}"),
        metric: "time_per_page",
        unit: "ns",
    }
    .all(&fork, &[&view]);
    Ok(())
}
