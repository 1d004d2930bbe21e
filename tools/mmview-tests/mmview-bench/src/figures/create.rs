//! Figure 1, snapshot creation: `MMVIEW_CREATE` in a process with S MiB of
//! touched memory of which U % is unshared, against `fork()` of the same
//! process (the parent's time in `fork()`; the child `_exit`s at once and is
//! reaped outside the timing).
//!
//! Cases per size S: U = 1, 10 and 100 % (case `create`, params
//! `s_mib=S;u_pct=U`) and a fixed unshared amount with the rest shared (case
//! `create_fixed_unshared`, params `s_mib=S;u_mib=F`): along S the latter
//! shows that CREATE's cost does not grow with shared memory, the former
//! (U = 100 %) that it grows with unshared memory.

use crate::clock::Stamp;

use super::Config;
use crate::measure::{interleave, Case, Failure, Result};
use crate::report::{diag, Rows};
use crate::sys::{fork_timed, meminfo_kib, ns, unshare, Region, View, MIB};

/// Unshared percentages.
const U_PCTS: [usize; 3] = [1, 10, 100];

pub fn run(config: &Config) -> Result<()> {
    let sizes = sizes(config)?;
    let fixed_mib = config.pick(1, 16);
    diag!(
        "create: S = {sizes:?} MiB, U = {U_PCTS:?} % and {fixed_mib} MiB, {} reps",
        config.reps
    );
    // Set once an mmview op turns out to be unavailable: not tried again.
    let mut unavailable: Option<String> = None;
    for s in sizes {
        let start = Stamp::now();
        let region = Region::touched(s * MIB, 1)?;
        diag!(
            "create: {s} MiB touched in {:.0} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
        let page = region.page();
        let mut cases: Vec<(String, &str, usize)> = U_PCTS
            .iter()
            .map(|&u| {
                let bytes = (s * MIB * u / 100).div_ceil(page).max(1) * page;
                (format!("s_mib={s};u_pct={u}"), "create", bytes)
            })
            .collect();
        cases.push((
            format!("s_mib={s};u_mib={fixed_mib}"),
            "create_fixed_unshared",
            fixed_mib.min(s) * MIB,
        ));
        // Unsharing only ever extends the unshared prefix of the region.
        cases.sort_by_key(|&(_, _, bytes)| bytes);
        for (params, case, bytes) in cases {
            if unavailable.is_none() {
                match unshare(&region, bytes) {
                    Ok(()) => {}
                    Err(Failure::Unavailable(why)) => unavailable = Some(why),
                    Err(broken) => return Err(broken),
                }
            }
            let subject_unavailable = unavailable.clone();
            let outcomes = interleave(
                config.reps,
                vec![
                    Case::new("fork", fork_once),
                    Case::new(case, || match &subject_unavailable {
                        Some(why) => Err(Failure::Unavailable(why.clone())),
                        None => create_once(),
                    }),
                ],
            )
            .map_err(Failure::Broken)?;
            let mut series = outcomes.into_iter().map(|o| o.into_series());
            let (Some(fork), Some(create)) = (series.next(), series.next()) else {
                return Err(Failure::Broken("lost a series".into()));
            };
            if unavailable.is_none() {
                if let Some(why) = &create.unavailable {
                    unavailable = Some(why.clone());
                }
            }
            Rows {
                figure: "create",
                params: &params,
                metric: "time",
                unit: "ns",
            }
            .all(&fork, &[&create]);
        }
    }
    if let Some(why) = unavailable {
        diag!("create: mmview figures n/a on this kernel ({why}); fork() measured");
    }
    Ok(())
}

/// The sizes S in MiB: from 16 up to what the guest's memory allows.
fn sizes(config: &Config) -> Result<Vec<usize>> {
    if config.smoke {
        return Ok(vec![2, 8]);
    }
    let available_mib = usize::try_from(meminfo_kib("MemAvailable")? / 1024).unwrap_or(0);
    // The region, plus page tables and slack for the copies; leave the rest.
    let limit = available_mib * 3 / 5;
    let sizes: Vec<usize> = [16, 64, 256, 512, 1024, 2048, 4096]
        .into_iter()
        .filter(|&s| s == 16 || s <= limit)
        .collect();
    if limit < 512 {
        diag!(
            "create: only {available_mib} MiB available: S stops at {} MiB (boot with more memory for 512)",
            sizes.last().copied().unwrap_or(16)
        );
    }
    Ok(sizes)
}

/// One fork(): the parent's time in it.
fn fork_once() -> Result<f64> {
    let (child, elapsed) = fork_timed(|| 0)?;
    child.wait()?;
    Ok(ns(elapsed))
}

/// One MMVIEW_CREATE (the view is deleted afterwards, untimed).
fn create_once() -> Result<f64> {
    let (view, elapsed) = View::create_timed()?;
    view.delete()?;
    Ok(ns(elapsed))
}
