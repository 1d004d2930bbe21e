//! The clock every timing uses.
//!
//! On arm64 it is `CLOCK_MONOTONIC` ([`Instant`]), which the kernel reads
//! from the architected counter. On x86_64 it is the TSC, read directly:
//! without ACPI the guest kernel has no HPET or PM timer, so its clocksource
//! watchdog compares the TSC with jiffies, which lag whenever the host
//! deschedules the vCPU; it then marks the TSC unstable and
//! `CLOCK_MONOTONIC` falls back to jiffies (4 ms steps). QEMU's TCG TSC
//! follows the host's invariant TSC, so it stays a good clock. Its rate is
//! the kernel's own calibration, from its log (`tsc: Detected X MHz`), else
//! measured against `CLOCK_MONOTONIC`. With `tsc=reliable` on the kernel
//! command line the kernel keeps the TSC and both clocks agree.

use std::time::Duration;
#[cfg(not(target_arch = "x86_64"))]
use std::time::Instant;

/// A point in time.
#[derive(Clone, Copy, Debug)]
pub struct Stamp(
    #[cfg(target_arch = "x86_64")] u64,
    #[cfg(not(target_arch = "x86_64"))] Instant,
);

impl Stamp {
    /// Now.
    #[inline(always)]
    pub fn now() -> Stamp {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: RDTSC is available on every x86_64 CPU and user mode may
        // use it (Linux does not set CR4.TSD).
        let now = Stamp(unsafe { core::arch::x86_64::_rdtsc() });
        #[cfg(not(target_arch = "x86_64"))]
        let now = Stamp(Instant::now());
        now
    }

    /// The time since `self`.
    #[inline(always)]
    pub fn elapsed(&self) -> Duration {
        Stamp::now().since(self)
    }

    /// The time from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(&self, earlier: &Stamp) -> Duration {
        #[cfg(target_arch = "x86_64")]
        {
            let ticks = self.0.saturating_sub(earlier.0);
            Duration::from_secs_f64(ticks as f64 / tsc::hz())
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self.0.saturating_duration_since(earlier.0)
        }
    }
}

/// Sets the clock up (call once before forking, so that children inherit
/// the calibration); a description for the `# META,clock,` line.
pub fn init() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        tsc::init()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "CLOCK_MONOTONIC".to_string()
    }
}

#[cfg(target_arch = "x86_64")]
mod tsc {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    static HZ: OnceLock<(f64, &'static str)> = OnceLock::new();

    /// Ticks per second.
    pub fn hz() -> f64 {
        HZ.get_or_init(rate).0
    }

    pub fn init() -> String {
        let (hz, source) = *HZ.get_or_init(rate);
        format!("rdtsc at {:.3} MHz ({source})", hz / 1e6)
    }

    fn rate() -> (f64, &'static str) {
        match kernel_mhz() {
            Some(mhz) => (mhz * 1e6, "the kernel's calibration"),
            None => (measured(), "measured against CLOCK_MONOTONIC"),
        }
    }

    /// The TSC rate the kernel found at boot, from its log (/dev/kmsg):
    /// the last `tsc: Refined TSC clocksource calibration: X MHz` or
    /// `tsc: Detected X MHz processor`.
    fn kernel_mhz() -> Option<f64> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let mut kmsg = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()?;
        let mut record = vec![0u8; 8192];
        let mut mhz = None;
        // One record per read; EAGAIN at the end of the buffer.
        while let Ok(n) = kmsg.read(&mut record) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&record[..n]);
            mhz = tsc_mhz(&text).or(mhz);
        }
        mhz
    }

    /// The MHz figure of a kernel log line about the TSC rate.
    pub fn tsc_mhz(line: &str) -> Option<f64> {
        let (_, rest) = line
            .split_once("tsc: Refined TSC clocksource calibration: ")
            .or_else(|| line.split_once("tsc: Detected "))?;
        let value = rest.split_whitespace().next()?;
        value.parse().ok().filter(|&mhz: &f64| mhz > 1.0)
    }

    fn measured() -> f64 {
        // SAFETY: see Stamp::now.
        let read = || unsafe { core::arch::x86_64::_rdtsc() };
        let (t0, c0) = (Instant::now(), read());
        std::thread::sleep(Duration::from_millis(100));
        let (t1, c1) = (Instant::now(), read());
        (c1.saturating_sub(c0)) as f64 / (t1 - t0).as_secs_f64().max(1e-3)
    }

    #[cfg(test)]
    #[test]
    fn parses_the_kernel_log() {
        let detected = "6,12,0,-;tsc: Detected 2596.093 MHz processor\n";
        assert_eq!(tsc_mhz(detected), Some(2596.093));
        let refined = "6,80,1000,-;tsc: Refined TSC clocksource calibration: 2595.999 MHz\n";
        assert_eq!(tsc_mhz(refined), Some(2595.999));
        assert_eq!(
            tsc_mhz("6,13,0,-;tsc: Fast TSC calibration using PIT\n"),
            None
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_goes_forward() {
        assert!(!init().is_empty());
        let start = Stamp::now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(start.elapsed() > Duration::ZERO);
        assert_eq!(start.since(&Stamp::now()), Duration::ZERO);
    }
}
