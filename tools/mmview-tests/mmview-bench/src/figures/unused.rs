//! Figure 6, the cost when unused: page-fault and fork microbenchmarks,
//! each normalised against a CPU-only loop measured in the same repetition,
//! so that boots of two kernels (`CONFIG_MMVIEW=y` and `=n`, see
//! `scripts/bench/unused-cost.sh`) can be compared by the ratio of their
//! normalised figures. This figure never calls mmview: the process runs as
//! any program that does not use it.
//!
//! Cases: `cpu_loop` (the baseline, ns per iteration of an xorshift loop),
//! `fault_read` (first read of a fresh anonymous page: maps the zero page),
//! `fault_write` (first store to one: allocates and zeroes a page),
//! `fork` (the parent's time in `fork()` with F MiB touched) and `getppid`
//! (a system call). A full run makes ten times the usual repetitions: each
//! takes milliseconds, and two boots are compared.

use crate::clock::Stamp;
use std::hint::black_box;

use super::Config;
use crate::measure::{broken, interleave, Case, Failure, Result};
use crate::report::Rows;
use crate::sys::{fork_timed, ns, page_size, Region, MIB};

pub fn run(config: &Config) -> Result<()> {
    let iterations: u64 = config.pick(100_000, 2_000_000);
    let pages: usize = config.pick(256, 4096);
    let fork_mib: usize = config.pick(2, 16);
    let batch: usize = config.pick(200, 2000);
    let len = pages * page_size();
    let touched = Region::touched(fork_mib * MIB, 1)?;
    // Each repetition takes milliseconds: many of them tame the noise of a
    // busy host, which matters when two boots are compared.
    let reps = config.pick(config.reps, config.reps * 10);
    let outcomes = interleave(
        reps,
        vec![
            Case::new("cpu_loop", || {
                let start = Stamp::now();
                let mut x = black_box(0x2545_f491_4f6c_dd1du64);
                for _ in 0..iterations {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x = black_box(x);
                }
                black_box(x);
                Ok(ns(start.elapsed()) / iterations as f64)
            }),
            Case::new("fault_read", || {
                let region = Region::new(len)?;
                let start = Stamp::now();
                let sum = region.read_pages();
                let elapsed = start.elapsed();
                if sum != 0 {
                    broken!("fresh anonymous memory reads {sum:#x}, not zeros");
                }
                Ok(ns(elapsed) / pages as f64)
            }),
            Case::new("fault_write", || {
                let region = Region::new(len)?;
                let start = Stamp::now();
                region.write_pages(0, pages, 1);
                Ok(ns(start.elapsed()) / pages as f64)
            }),
            Case::new("fork", || {
                let (child, elapsed) = fork_timed(|| 0)?;
                child.wait()?;
                Ok(ns(elapsed))
            }),
            Case::new("getppid", || {
                let start = Stamp::now();
                for _ in 0..batch {
                    // SAFETY: getppid has no preconditions.
                    black_box(unsafe { libc::getppid() });
                }
                Ok(ns(start.elapsed()) / batch as f64)
            }),
        ],
    )
    .map_err(Failure::Broken)?;
    drop(touched);
    let series: Vec<_> = outcomes.into_iter().map(|o| o.into_series()).collect();
    let [cpu, read, write, fork, getppid] = &series[..] else {
        broken!("lost a series");
    };
    let emit = |params: String, metric: &str, subject| {
        Rows {
            figure: "unused",
            params: &params,
            metric,
            unit: "ns",
        }
        .subject(cpu, subject)
    };
    Rows {
        figure: "unused",
        params: &format!("iterations={iterations}"),
        metric: "time_per_iteration",
        unit: "ns",
    }
    .baseline(cpu);
    emit(format!("pages={pages}"), "time_per_page", read);
    emit(format!("pages={pages}"), "time_per_page", write);
    emit(format!("touched_mib={fork_mib}"), "time", fork);
    emit(format!("batch={batch}"), "time_per_call", getppid);
    Ok(())
}
