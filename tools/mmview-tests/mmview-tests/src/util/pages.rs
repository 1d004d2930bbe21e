//! Page-level observations: the calling thread's /proc pagemap entries
//! (present, swapped, frame number), the flags of page frames
//! (/proc/kpageflags), whether swap is on, and pinning the process to one
//! CPU (so that the per-CPU LRU batches its page faults fill are the ones
//! its `madvise` calls drain).

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::check::{Context, Failure, TestResult};
use crate::util::mem::page_size;
use crate::util::procfs::read_file;

/// Bit 63 of a pagemap entry: the page is present.
const PM_PRESENT: u64 = 1 << 63;
/// Bit 62 of a pagemap entry: the page is swapped (a swap entry).
const PM_SWAP: u64 = 1 << 62;
/// Bits 0-54 of a present page's entry: its frame number (0 without
/// CAP_SYS_ADMIN).
const PM_PFN_MASK: u64 = (1 << 55) - 1;

/// `KPF_LRU` of /proc/kpageflags.
pub const KPF_LRU: u64 = 1 << 5;
/// `KPF_ACTIVE` of /proc/kpageflags.
pub const KPF_ACTIVE: u64 = 1 << 6;

/// One entry of /proc/PID/pagemap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagemapEntry(pub u64);

impl PagemapEntry {
    /// Whether the page is present.
    pub fn present(self) -> bool {
        self.0 & PM_PRESENT != 0
    }

    /// Whether the page is in swap (its entry is a swap entry).
    pub fn swapped(self) -> bool {
        self.0 & PM_SWAP != 0
    }

    /// The frame number of a present page (`Some(0)` when the kernel hides
    /// frame numbers from the reader).
    pub fn pfn(self) -> Option<u64> {
        self.present().then_some(self.0 & PM_PFN_MASK)
    }
}

/// The pagemap entries of the calling thread's address space (its mmview
/// view) for the pages of `[addr, addr + len)`, from
/// /proc/thread-self/pagemap. Reading it faults nothing in.
pub fn thread_pagemap(addr: usize, len: usize) -> TestResult<Vec<PagemapEntry>> {
    let path = "/proc/thread-self/pagemap";
    let pagemap = File::open(path).with_context(|| format!("opening {path}"))?;
    let page = page_size();
    let first = addr / page;
    let last = (addr + len).div_ceil(page);
    let mut raw = vec![0u8; (last - first) * 8];
    pagemap
        .read_exact_at(&mut raw, (first * 8) as u64)
        .with_context(|| format!("reading {path} for {addr:#x}+{len:#x}"))?;
    Ok(raw
        .chunks_exact(8)
        .map(|e| {
            let mut word = [0u8; 8];
            word.copy_from_slice(e);
            PagemapEntry(u64::from_ne_bytes(word))
        })
        .collect())
}

/// The /proc/kpageflags word of each frame in `pfns`.
pub fn kpageflags(pfns: &[u64]) -> TestResult<Vec<u64>> {
    let path = "/proc/kpageflags";
    let file = File::open(path).with_context(|| format!("opening {path}"))?;
    pfns.iter()
        .map(|&pfn| {
            let mut word = [0u8; 8];
            file.read_exact_at(&mut word, pfn * 8)
                .with_context(|| format!("reading {path} for frame {pfn:#x}"))?;
            Ok(u64::from_ne_bytes(word))
        })
        .collect()
}

/// The swap areas in use (the lines of /proc/swaps under its header).
pub fn swap_areas() -> TestResult<Vec<String>> {
    Ok(read_file("/proc/swaps")?
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect())
}

/// Pins the calling thread to the CPU it runs on; the CPU. Threads it
/// starts afterwards inherit the pin. Page faults add new pages to the
/// faulting CPU's LRU batch, and `madvise(MADV_COLD/MADV_PAGEOUT)` only
/// drains the calling CPU's batches (a page still in a batch is not on the
/// LRU, and the advice skips it): with every thread on one CPU, the advice
/// sees every page.
pub fn pin_to_current_cpu() -> TestResult<usize> {
    // SAFETY: no arguments, no memory effects.
    let cpu = unsafe { libc::sched_getcpu() };
    let cpu = usize::try_from(cpu)
        .map_err(|_| Failure::new(format!("sched_getcpu: {}", std::io::Error::last_os_error())))?;
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(Failure::new(format!("CPU {cpu} does not fit a cpu_set_t")));
    }
    // SAFETY: `cpu` fits the set (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the
    // size given.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(Failure::new(format!(
            "sched_setaffinity(CPU {cpu}): {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bits() {
        let present = PagemapEntry(PM_PRESENT | 0x1234);
        assert!(present.present() && !present.swapped());
        assert_eq!(present.pfn(), Some(0x1234));
        let swapped = PagemapEntry(PM_SWAP | 0x55);
        assert!(swapped.swapped() && !swapped.present());
        assert_eq!(swapped.pfn(), None);
        assert_eq!(PagemapEntry(0).pfn(), None);
    }

    #[test]
    fn reads_own_pagemap() -> TestResult {
        let page = page_size();
        let v = vec![1u8; 3 * page];
        let start = v.as_ptr() as usize;
        let entries = thread_pagemap(start, v.len())?;
        assert!(entries.len() >= 3);
        // The first and last byte's pages were written: present.
        assert!(entries[0].present());
        assert!(entries[entries.len() - 1].present());
        Ok(())
    }
}
