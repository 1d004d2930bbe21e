//! Swap on zram: size the device, write a swap header, swapon(2).

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

/// Size of the zram swap device.
pub const ZRAM_SIZE: u64 = 64 << 20;

const ZRAM_SYSFS: &str = "/sys/block/zram0";
const ZRAM_DEV: &str = "/dev/zram0";

/// Sets up `/dev/zram0` as swap; a description of the result or of what
/// went wrong.
pub fn enable_zram_swap() -> Result<String, String> {
    if !Path::new(ZRAM_SYSFS).exists() {
        return Err(format!("no {ZRAM_SYSFS}: kernel without CONFIG_ZRAM=y?"));
    }
    std::fs::write(format!("{ZRAM_SYSFS}/disksize"), ZRAM_SIZE.to_string())
        .map_err(|e| format!("setting {ZRAM_SYSFS}/disksize to {ZRAM_SIZE}: {e}"))?;
    let header = swap_header(page_size(), ZRAM_SIZE, &random_uuid())
        .ok_or_else(|| format!("no swap header fits {ZRAM_SIZE} bytes"))?;
    write_header(&header).map_err(|e| format!("writing the swap header to {ZRAM_DEV}: {e}"))?;
    swapon(ZRAM_DEV).map_err(|e| format!("swapon {ZRAM_DEV}: {e}"))?;
    Ok(format!("swap on {ZRAM_DEV}, {} MiB", ZRAM_SIZE >> 20))
}

fn write_header(header: &[u8]) -> io::Result<()> {
    let mut dev = OpenOptions::new().write(true).open(ZRAM_DEV)?;
    dev.write_all(header)?;
    dev.sync_all()
}

fn swapon(path: &str) -> io::Result<()> {
    let path = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    if unsafe { libc::syscall(libc::SYS_swapon, path.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// A version 4 UUID from the kernel's random pool (zeros if unavailable).
fn random_uuid() -> [u8; 16] {
    let mut uuid = [0u8; 16];
    // SAFETY: `uuid` is a writable buffer of the given length.
    let n = unsafe { libc::getrandom(uuid.as_mut_ptr().cast(), uuid.len(), libc::GRND_NONBLOCK) };
    if n != 16 {
        return [0; 16];
    }
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

/// The first page of a swap area as mkswap writes it (`union swap_header` of
/// include/linux/swap.h): version 1 and the last page number after 1024 boot
/// bytes, the UUID and label, and "SWAPSPACE2" in the page's last 10 bytes.
/// None if the device is smaller than two pages or too large for a header.
pub fn swap_header(page_size: usize, device_size: u64, uuid: &[u8; 16]) -> Option<Vec<u8>> {
    const VERSION: u32 = 1;
    const LABEL: &[u8] = b"mmview-zram";
    let pages = device_size / u64::try_from(page_size).ok()?;
    if pages < 2 || page_size < 4096 {
        return None;
    }
    let last_page = u32::try_from(pages - 1).ok()?;
    let mut header = vec![0u8; page_size];
    header[1024..1028].copy_from_slice(&VERSION.to_ne_bytes());
    header[1028..1032].copy_from_slice(&last_page.to_ne_bytes());
    // nr_badpages (1032..1036) stays 0.
    header[1036..1052].copy_from_slice(uuid);
    header[1052..1052 + LABEL.len()].copy_from_slice(LABEL);
    header[page_size - 10..].copy_from_slice(b"SWAPSPACE2");
    Some(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(buf: &[u8], offset: usize) -> u32 {
        let mut word = [0u8; 4];
        word.copy_from_slice(&buf[offset..offset + 4]);
        u32::from_ne_bytes(word)
    }

    #[test]
    fn header_layout() {
        let uuid = [0xab; 16];
        let h = swap_header(4096, 64 << 20, &uuid).expect("header");
        assert_eq!(h.len(), 4096);
        assert!(h[..1024].iter().all(|&b| b == 0));
        assert_eq!(u32_at(&h, 1024), 1);
        assert_eq!(u32_at(&h, 1028), (64 << 20) / 4096 - 1);
        assert_eq!(u32_at(&h, 1032), 0);
        assert_eq!(&h[1036..1052], &uuid);
        assert_eq!(&h[1052..1063], b"mmview-zram");
        assert_eq!(&h[4086..], b"SWAPSPACE2");
        let h = swap_header(65536, 64 << 20, &uuid).expect("64K pages");
        assert_eq!(u32_at(&h, 1028), 1023);
        assert_eq!(&h[65526..], b"SWAPSPACE2");
    }

    #[test]
    fn refuses_tiny_devices() {
        assert!(swap_header(4096, 4096, &[0; 16]).is_none());
    }

    #[test]
    fn uuid_is_version_4() {
        let uuid = random_uuid();
        assert!(uuid == [0; 16] || (uuid[6] >> 4 == 4 && uuid[8] >> 6 == 2));
    }
}
