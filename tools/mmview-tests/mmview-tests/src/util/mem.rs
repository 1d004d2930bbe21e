//! Memory helpers: an owned mapping and byte patterns to fill and verify.

use std::io;
use std::ptr::NonNull;

use crate::check::{Failure, TestResult};

/// The base page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// Rounds `value` up to a multiple of `align` (a power of two).
pub fn align_up(value: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    (value + align - 1) & !(align - 1)
}

/// An `mmap`ed range, unmapped on drop.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// `len` bytes of private anonymous read-write memory.
    pub fn anon(len: usize) -> TestResult<Self> {
        Self::new(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        )
    }

    /// An anonymous mapping (no file) with the given protection and flags.
    pub fn new(len: usize, prot: libc::c_int, flags: libc::c_int) -> TestResult<Self> {
        // SAFETY: a new mapping at an address the kernel picks touches no
        // existing memory.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(Failure::new(format!(
                "mmap of {len} bytes (prot {prot:#x}, flags {flags:#x}): {}",
                io::Error::last_os_error()
            )));
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| Failure::new("mmap returned NULL"))?;
        Ok(Mapping { ptr, len })
    }

    /// The start address.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The start, as a pointer.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes. The mapping must be readable (else the read faults).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes long and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, writable. The mapping must be writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as for `as_slice`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The start of `[offset, offset + len)`, which must lie in the mapping.
    fn part(&self, offset: usize, len: usize, what: &str) -> TestResult<*mut u8> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(Failure::new(format!(
                "{what} range {offset:#x}+{len:#x} is outside the {:#x}-byte mapping",
                self.len
            )));
        }
        // SAFETY: the offset lies inside our mapping.
        Ok(unsafe { self.as_ptr().add(offset) })
    }

    /// `madvise(advice)` on `[offset, offset + len)` of the mapping.
    pub fn madvise(&self, offset: usize, len: usize, advice: libc::c_int) -> TestResult {
        let ptr = self.part(offset, len, "madvise")?;
        // SAFETY: the range lies inside our mapping; the advice values used by
        // the tests do not free memory that references still point to.
        let r = unsafe { libc::madvise(ptr.cast(), len, advice) };
        if r != 0 {
            return Err(Failure::new(format!(
                "madvise({:#x}, {len:#x}, {advice}): {}",
                ptr as usize,
                io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Unmaps `[offset, offset + len)`, leaving a hole; the slices of the
    /// mapping must not be used afterwards.
    pub fn munmap_part(&self, offset: usize, len: usize) -> TestResult {
        let ptr = self.part(offset, len, "munmap")?;
        // SAFETY: the range lies inside our mapping, and the callers do not
        // touch the memory of the hole afterwards.
        if unsafe { libc::munmap(ptr.cast(), len) } != 0 {
            return Err(Failure::new(format!(
                "munmap({:#x}, {len:#x}): {}",
                ptr as usize,
                io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Replaces `[offset, offset + len)` by a new anonymous mapping with
    /// `prot` and `flags` (`MAP_FIXED` is added).
    pub fn remap_fixed(
        &self,
        offset: usize,
        len: usize,
        prot: libc::c_int,
        flags: libc::c_int,
    ) -> TestResult {
        let ptr = self.part(offset, len, "mmap")?;
        // SAFETY: the range lies inside our mapping, whose old content there
        // nothing references any more; unmapped with the rest on drop.
        let got = unsafe { libc::mmap(ptr.cast(), len, prot, flags | libc::MAP_FIXED, -1, 0) };
        if got != ptr.cast() {
            return Err(Failure::new(format!(
                "mmap(MAP_FIXED at {:#x}, {len:#x}): {}",
                ptr as usize,
                io::Error::last_os_error()
            )));
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own the mapping and nothing borrows it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Deterministic, page-unique content: the 8 bytes at `8 * index` of the
/// pattern `seed` (splitmix64 of seed and index).
pub fn pattern_word(seed: u64, index: u64) -> [u8; 8] {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).to_le_bytes()
}

/// Fills `buf` with the pattern `seed` (no two pages alike, no zero pages).
pub fn fill_pattern(buf: &mut [u8], seed: u64) {
    for (index, chunk) in buf.chunks_mut(8).enumerate() {
        let word = pattern_word(seed, index as u64);
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// `len` bytes of the pattern `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    fill_pattern(&mut buf, seed);
    buf
}

/// Checks that `buf` holds the pattern `seed`; the failure names the first
/// wrong byte and how many are wrong.
pub fn verify_pattern(buf: &[u8], seed: u64) -> TestResult {
    let mut first = None;
    let mut wrong = 0usize;
    for (index, chunk) in buf.chunks(8).enumerate() {
        let word = pattern_word(seed, index as u64);
        if chunk != &word[..chunk.len()] {
            for (i, (&got, &want)) in chunk.iter().zip(&word).enumerate() {
                if got != want {
                    wrong += 1;
                    first.get_or_insert((index * 8 + i, got, want));
                }
            }
        }
    }
    match first {
        None => Ok(()),
        Some((offset, got, want)) => Err(Failure::new(format!(
            "{wrong} of {} bytes differ from pattern {seed:#x}; first at offset {offset:#x}: \
             got {got:#04x}, expected {want:#04x}",
            buf.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_round_trips_and_detects_changes() {
        let mut buf = vec![0u8; 3 * 4096 + 5];
        fill_pattern(&mut buf, 7);
        assert!(verify_pattern(&buf, 7).is_ok());
        assert!(verify_pattern(&buf, 8).is_err());
        assert_eq!(buf[4099], pattern_word(7, 4099 / 8)[4099 % 8]);
        assert_ne!(buf[..4096], buf[4096..8192]);
        buf[4100] ^= 1;
        let msg = verify_pattern(&buf, 7)
            .err()
            .map(|f| f.to_string())
            .unwrap_or_default();
        assert!(msg.starts_with("1 of 12293 bytes differ"), "{msg}");
        assert!(msg.contains("offset 0x1004"), "{msg}");
    }

    #[test]
    fn mapping_is_usable_and_aligned() -> TestResult {
        let mut map = Mapping::anon(2 * page_size())?;
        assert_eq!(map.addr() % page_size(), 0);
        fill_pattern(map.as_mut_slice(), 1);
        verify_pattern(map.as_slice(), 1)?;
        map.madvise(0, page_size(), libc::MADV_DONTNEED)?;
        assert!(map.as_slice()[..page_size()].iter().all(|&b| b == 0));
        assert!(map
            .madvise(page_size(), 2 * page_size(), libc::MADV_DONTNEED)
            .is_err());
        Ok(())
    }

    #[test]
    fn align_up_rounds() {
        assert_eq!(align_up(0, 4096), 0);
        assert_eq!(align_up(1, 4096), 4096);
        assert_eq!(align_up(4096, 4096), 4096);
    }
}
