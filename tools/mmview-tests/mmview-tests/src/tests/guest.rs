//! The guest is set up as the mmview tests need it: two CPUs, swap, hugetlb
//! pages, transparent huge pages, KSM, userfaultfd and the memory cgroup
//! controller all really work.

use std::path::Path;

use super::named_tests;
use crate::check::{diag, ensure, ensure_eq, fail, Context, TestResult};
use crate::framework::Test;
use crate::util::mem::{align_up, fill_pattern, verify_pattern, Mapping};
use crate::util::procfs::{meminfo, read_file, read_value, set_temporarily, smaps_entry};
use crate::util::sys::userfaultfd_open;

pub fn tests() -> Vec<Test> {
    named_tests![
        guest_two_cpus,
        guest_swap_active,
        guest_hugetlb_reservable,
        guest_thp_enabled,
        guest_ksm_userfaultfd_memcg,
    ]
}

const MIB: usize = 1 << 20;

/// Two CPUs are online, so that threads in different views really run at
/// the same time (the races the concurrency tests look for need it).
fn guest_two_cpus() -> TestResult {
    let online = read_file("/sys/devices/system/cpu/online")?;
    let threads = std::thread::available_parallelism().context("available_parallelism")?;
    diag!("CPUs online: {}", online.trim());
    ensure!(
        threads.get() >= 2,
        "only {threads} CPU(s) available (online: {})",
        online.trim()
    );
    Ok(())
}

/// A swap device is on, and anonymous memory really goes out to it and
/// comes back intact.
fn guest_swap_active() -> TestResult {
    const SEED: u64 = 0x5357_4150;
    const LEN: usize = 16 * MIB;
    let swaps = read_file("/proc/swaps")?;
    let devices = parse_swaps(&swaps);
    let Some(device) = devices.iter().find(|d| d.size_kb > 0) else {
        fail!("/proc/swaps lists no swap device with a size: {swaps:?}");
    };
    diag!(
        "swap device {}: {} kB, {} kB used",
        device.name,
        device.size_kb,
        device.used_kb
    );

    let mut map = Mapping::anon(LEN)?;
    fill_pattern(map.as_mut_slice(), SEED);
    map.madvise(0, LEN, libc::MADV_PAGEOUT)?;
    let swapped_kb = smaps_entry(map.addr())?.field("Swap")?;
    diag!(
        "MADV_PAGEOUT moved {swapped_kb} of {} kB to swap",
        map.len() / 1024
    );
    ensure!(
        swapped_kb > 0,
        "nothing of the {}-byte mapping was swapped out",
        map.len()
    );
    verify_pattern(map.as_slice(), SEED).context("reading back swapped-out memory")
}

/// One line of /proc/swaps.
#[derive(Debug, PartialEq, Eq)]
struct SwapDevice {
    name: String,
    size_kb: u64,
    used_kb: u64,
}

/// The devices of /proc/swaps (`Filename Type Size Used Priority`).
fn parse_swaps(text: &str) -> Vec<SwapDevice> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                [name, _type, size, used, ..] => Some(SwapDevice {
                    name: name.to_string(),
                    size_kb: size.parse().ok()?,
                    used_kb: used.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

/// hugetlb pages can be reserved through vm.nr_hugepages, mapped with
/// MAP_HUGETLB, and hold data.
fn guest_hugetlb_reservable() -> TestResult {
    const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
    const SEED: u64 = 0x4855_4745;
    let before: u64 = read_value(NR_HUGEPAGES)?;
    let _restore = set_temporarily(NR_HUGEPAGES, "8")?;
    let reserved: u64 = read_value(NR_HUGEPAGES)?;
    diag!("vm.nr_hugepages: {before} -> {reserved} (asked for 8)");
    ensure!(reserved >= 1, "no huge page could be reserved");

    let size = usize::try_from(meminfo("Hugepagesize")? * 1024)?;
    let free_before = meminfo("HugePages_Free")?;
    let mut map = Mapping::new(
        size,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
    )?;
    ensure_eq!(
        map.addr() % size,
        0,
        "offset of the MAP_HUGETLB mapping in a huge page"
    );
    fill_pattern(map.as_mut_slice(), SEED);
    let free_touched = meminfo("HugePages_Free")?;
    diag!(
        "HugePages_Free: {free_before} before, {free_touched} with one {} kB page in use",
        size / 1024
    );
    ensure!(
        free_touched < free_before,
        "HugePages_Free did not drop when the huge page was touched ({free_before} -> {free_touched})"
    );
    verify_pattern(map.as_slice(), SEED).context("the huge page")?;
    drop(map);
    ensure_eq!(
        meminfo("HugePages_Free")?,
        free_before,
        "HugePages_Free after munmap"
    );
    Ok(())
}

/// Transparent huge pages are enabled and an madvised, aligned range gets
/// them.
fn guest_thp_enabled() -> TestResult {
    const THP: &str = "/sys/kernel/mm/transparent_hugepage";
    const SEED: u64 = 0x0054_4850;
    let enabled = read_file(format!("{THP}/enabled"))?;
    let mode = selected_mode(&enabled).with_context(|| format!("no [mode] in {enabled:?}"))?;
    ensure!(
        mode == "always" || mode == "madvise",
        "transparent huge pages are {mode:?}, want always or madvise"
    );
    let pmd: usize = read_value(format!("{THP}/hpage_pmd_size"))?;
    diag!("THP mode {mode}, PMD size {} kB", pmd / 1024);

    // Two aligned huge pages inside a mapping of four.
    let mut map = Mapping::anon(4 * pmd)?;
    let offset = align_up(map.addr(), pmd) - map.addr();
    let len = 2 * pmd;
    map.madvise(offset, len, libc::MADV_HUGEPAGE)?;
    let range = &mut map.as_mut_slice()[offset..offset + len];
    fill_pattern(range, SEED);
    let thp_kb = smaps_entry(range.as_ptr() as usize)?.field("AnonHugePages")?;
    diag!("AnonHugePages: {thp_kb} kB of {} kB touched", len / 1024);
    ensure!(
        thp_kb > 0,
        "no transparent huge page backs the madvised range"
    );
    verify_pattern(range, SEED).context("the huge-page range")
}

/// The selected mode of a sysfs choice file: `always [madvise] never`.
fn selected_mode(text: &str) -> Option<&str> {
    let start = text.find('[')? + 1;
    let len = text[start..].find(']')?;
    Some(&text[start..start + len])
}

/// KSM is built in, userfaultfd works (handshake included), and the memory
/// cgroup controller is available.
fn guest_ksm_userfaultfd_memcg() -> TestResult {
    let ksm: u32 = read_value("/sys/kernel/mm/ksm/run")?;
    diag!("ksm/run = {ksm}");

    match userfaultfd_open() {
        Ok((_, features, ioctls)) => {
            diag!("userfaultfd: features {features:#x}, ioctls {ioctls:#x}")
        }
        Err(e) if Path::new("/dev/userfaultfd").exists() => {
            diag!("{e}; /dev/userfaultfd exists")
        }
        Err(e) => fail!("{e}, and there is no /dev/userfaultfd"),
    }

    let controllers = read_file("/sys/fs/cgroup/cgroup.controllers")?;
    ensure!(
        controllers.split_whitespace().any(|c| c == "memory"),
        "no memory controller in /sys/fs/cgroup/cgroup.controllers: {:?}",
        controllers.trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_swaps() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /dev/zram0                              partition\t65532\t\t1024\t\t-2\n";
        assert_eq!(
            parse_swaps(text),
            vec![SwapDevice {
                name: "/dev/zram0".into(),
                size_kb: 65532,
                used_kb: 1024
            }]
        );
        assert!(parse_swaps("Filename\tType\tSize\tUsed\tPriority\n").is_empty());
    }

    #[test]
    fn finds_the_selected_mode() {
        assert_eq!(selected_mode("always [madvise] never\n"), Some("madvise"));
        assert_eq!(selected_mode("[always] madvise never"), Some("always"));
        assert_eq!(selected_mode("always madvise never"), None);
    }
}
