//! Reading and writing /proc and /sys files.

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::check::{fail, Context, Failure, TestResult};

/// The whole file as text; the failure names the path.
pub fn read_file(path: impl AsRef<Path>) -> TestResult<String> {
    let path = path.as_ref();
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Writes `contents` to the file (one write, as sysfs wants).
pub fn write_file(path: impl AsRef<Path>, contents: &str) -> TestResult {
    let path = path.as_ref();
    std::fs::write(path, contents)
        .with_context(|| format!("writing {contents:?} to {}", path.display()))
}

/// Writes `value` to a sysctl-like file and puts the old content back when
/// the returned guard is dropped (also when the test fails).
pub fn set_temporarily(path: impl AsRef<Path>, value: &str) -> TestResult<Restore> {
    let path = path.as_ref();
    let old = read_file(path)?.trim().to_string();
    write_file(path, value)?;
    Ok(Restore {
        path: path.to_path_buf(),
        old,
    })
}

/// Puts a file's old content back on drop; see [`set_temporarily`].
#[must_use = "the old value is restored when the guard is dropped"]
pub struct Restore {
    path: PathBuf,
    old: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = write_file(&self.path, &self.old) {
            crate::check::diag!("restoring the old value: {e}");
        }
    }
}

/// The file's content, trimmed and parsed (e.g. a sysctl number).
pub fn read_value<T: FromStr>(path: impl AsRef<Path>) -> TestResult<T>
where
    T::Err: Debug,
{
    let path = path.as_ref();
    let text = read_file(path)?;
    text.trim().parse().map_err(|e| {
        Failure::new(format!(
            "{}: cannot parse {:?}: {e:?}",
            path.display(),
            text.trim()
        ))
    })
}

/// `Key: number [kB]` lines (meminfo, smaps) as a map from key to number.
/// Lines whose value is not a number are left out.
pub fn parse_fields(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let value = rest.split_whitespace().next()?.parse().ok()?;
            Some((key.trim().to_string(), value))
        })
        .collect()
}

/// A field of /proc/meminfo (in kB for sizes, a count for HugePages_*).
pub fn meminfo(key: &str) -> TestResult<u64> {
    parse_fields(&read_file("/proc/meminfo")?)
        .get(key)
        .copied()
        .with_context(|| format!("/proc/meminfo has no {key}"))
}

/// Free memory in kB: `MemFree` of /proc/meminfo plus the pages parked on
/// the per-CPU free lists (the `count:` lines of /proc/zoneinfo), which
/// `MemFree` leaves out. 6.12 lets those lists grow to an eighth of memory
/// after a large free and drains them over seconds: without them, memory
/// freed just before a reading would look in use.
pub fn free_kib() -> TestResult<u64> {
    let free = meminfo("MemFree")?;
    let page_kib = (crate::util::mem::page_size() / 1024) as u64;
    Ok(free + pcp_pages(&read_file("/proc/zoneinfo")?) * page_kib)
}

/// The pages on per-CPU free lists, from /proc/zoneinfo text.
pub fn pcp_pages(zoneinfo: &str) -> u64 {
    zoneinfo
        .lines()
        .filter_map(|line| line.trim().strip_prefix("count:"))
        .filter_map(|value| value.trim().parse::<u64>().ok())
        .sum()
}

/// Frees the page cache and the reclaimable slab objects
/// (`vm.drop_caches = 3`), so that free-memory readings compare like with like.
pub fn drop_caches() -> TestResult {
    write_file("/proc/sys/vm/drop_caches", "3")
}

/// One mapping of /proc/self/smaps.
#[derive(Debug)]
pub struct SmapsEntry {
    /// Start address.
    pub start: usize,
    /// End address (exclusive).
    pub end: usize,
    /// The numeric fields (`Rss`, `Swap`, `AnonHugePages`, ... in kB).
    pub fields: HashMap<String, u64>,
    /// The two-letter `VmFlags` (`rd`, `wr`, ..., `vu` for mmview-unshared).
    pub flags: Vec<String>,
}

impl SmapsEntry {
    /// A field, which must be present.
    pub fn field(&self, key: &str) -> TestResult<u64> {
        self.fields
            .get(key)
            .copied()
            .with_context(|| format!("smaps of {:#x}-{:#x} has no {key}", self.start, self.end))
    }

    /// Whether `VmFlags` has `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// The /proc/self/smaps entry of the mapping that contains `addr`.
pub fn smaps_entry(addr: usize) -> TestResult<SmapsEntry> {
    parse_smaps(&read_file("/proc/self/smaps")?, addr)
        .with_context(|| format!("no mapping contains {addr:#x} in /proc/self/smaps"))
}

/// The /proc/self/smaps entries of the mappings that overlap
/// `[start, end)`, in address order.
pub fn smaps_entries(start: usize, end: usize) -> TestResult<Vec<SmapsEntry>> {
    smaps_entries_of("/proc/self/smaps", start, end)
}

/// As [`smaps_entries`], for the calling thread's address space (its mmview
/// view), from /proc/thread-self/smaps.
pub fn thread_smaps_entries(start: usize, end: usize) -> TestResult<Vec<SmapsEntry>> {
    smaps_entries_of("/proc/thread-self/smaps", start, end)
}

/// The mappings of the view of the thread `tid` (of this process) that
/// overlap `[start, end)`, from /proc/self/task/<tid>/maps (entries without
/// fields or flags).
pub fn task_maps_entries(
    tid: libc::pid_t,
    start: usize,
    end: usize,
) -> TestResult<Vec<SmapsEntry>> {
    smaps_entries_of(&format!("/proc/self/task/{tid}/maps"), start, end)
}

/// The permissions of the mapping at `addr` in the calling thread's view,
/// as /proc/PID/maps writes them (`rw-p`, ...), from its smaps `VmFlags`.
pub fn thread_perms(addr: usize) -> TestResult<String> {
    let Some(e) = thread_smaps_entries(addr, addr + 1)?.into_iter().next() else {
        fail!("no mapping at {addr:#x} in /proc/thread-self/smaps");
    };
    let bit = |flag: &str, c: char| if e.has_flag(flag) { c } else { '-' };
    let shared = if e.has_flag("sh") { 's' } else { 'p' };
    Ok([bit("rd", 'r'), bit("wr", 'w'), bit("ex", 'x'), shared]
        .iter()
        .collect())
}

fn smaps_entries_of(path: &str, start: usize, end: usize) -> TestResult<Vec<SmapsEntry>> {
    Ok(parse_all_smaps(&read_file(path)?)
        .into_iter()
        .filter(|e| e.start < end && start < e.end)
        .collect())
}

/// Finds the entry containing `addr` in smaps text.
pub fn parse_smaps(text: &str, addr: usize) -> Option<SmapsEntry> {
    parse_all_smaps(text)
        .into_iter()
        .find(|e| (e.start..e.end).contains(&addr))
}

/// Every entry of smaps text.
pub fn parse_all_smaps(text: &str) -> Vec<SmapsEntry> {
    let mut entries = Vec::new();
    let mut current: Option<(usize, usize, String)> = None;
    let finish = |(start, end, body): (usize, usize, String)| {
        let flags = body
            .lines()
            .find_map(|l| l.strip_prefix("VmFlags:"))
            .map(|f| f.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        SmapsEntry {
            start,
            end,
            fields: parse_fields(&body),
            flags,
        }
    };
    for line in text.lines() {
        if let Some((start, end)) = smaps_header(line) {
            entries.extend(current.take().map(finish));
            current = Some((start, end, String::new()));
        } else if let Some((_, _, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    entries.extend(current.map(finish));
    entries
}

/// The address range of an smaps/maps header line (`start-end perms ...`).
fn smaps_header(line: &str) -> Option<(usize, usize)> {
    let range = line.split_whitespace().next()?;
    let (start, end) = range.split_once('-')?;
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    ))
}

/// A cgroup v2 child of the root with the memory controller, which the
/// calling process joins (all its threads); on drop the process goes back
/// to the root and the cgroup is removed.
pub struct MemoryCgroup {
    path: PathBuf,
}

impl MemoryCgroup {
    const ROOT: &'static str = "/sys/fs/cgroup";

    /// Creates `/sys/fs/cgroup/<name>` (the memory controller enabled in
    /// the root) and moves the calling process into it. Memory the process
    /// touches from then on is charged to it.
    pub fn join(name: &str) -> TestResult<MemoryCgroup> {
        let root = Path::new(Self::ROOT);
        let controllers = read_file(root.join("cgroup.subtree_control"))?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            write_file(root.join("cgroup.subtree_control"), "+memory")?;
        }
        let path = root.join(name);
        std::fs::create_dir(&path)
            .map_err(|e| Failure::new(format!("mkdir {}: {e}", path.display())))?;
        let cgroup = MemoryCgroup { path };
        write_file(
            cgroup.path.join("cgroup.procs"),
            &std::process::id().to_string(),
        )?;
        Ok(cgroup)
    }

    /// The cgroup's `memory.stat` fields named in `keys`, for diagnostics.
    pub fn stat(&self, keys: &[&str]) -> TestResult<Vec<(String, u64)>> {
        let fields: HashMap<String, u64> = read_file(self.path.join("memory.stat"))?
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once(' ')?;
                Some((key.to_string(), value.trim().parse().ok()?))
            })
            .collect();
        Ok(keys
            .iter()
            .map(|k| (k.to_string(), fields.get(*k).copied().unwrap_or(0)))
            .collect())
    }

    /// Asks the kernel to reclaim `bytes` from the cgroup (`memory.reclaim`);
    /// whether it reclaimed all of them (EAGAIN: less).
    pub fn reclaim(&self, bytes: usize) -> TestResult<bool> {
        let path = self.path.join("memory.reclaim");
        match std::fs::write(&path, bytes.to_string()) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(false),
            Err(e) => Err(Failure::new(format!("writing {}: {e}", path.display()))),
        }
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let root = Path::new(Self::ROOT).join("cgroup.procs");
        if let Err(e) = write_file(root, &std::process::id().to_string()) {
            crate::check::diag!("leaving the cgroup: {e}");
        } else if let Err(e) = std::fs::remove_dir(&self.path) {
            crate::check::diag!("removing {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]
Size:                132 kB
Rss:                   8 kB
Swap:                  0 kB
VmFlags: rd wr mr mw me ac sd
7f0000000000-7f0000800000 rw-p 00000000 00:00 0 
Size:               8192 kB
Rss:                4096 kB
AnonHugePages:      4096 kB
Swap:                 12 kB
THPeligible:    1
VmFlags: rd wr mr mw me ac sd hg
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
";

    #[test]
    fn finds_the_entry_containing_an_address() {
        let e = parse_smaps(SMAPS, 0x7f00_0020_0000).expect("entry");
        assert_eq!((e.start, e.end), (0x7f00_0000_0000, 0x7f00_0080_0000));
        assert_eq!(e.fields.get("AnonHugePages"), Some(&4096));
        assert_eq!(e.fields.get("Swap"), Some(&12));
        assert_eq!(e.fields.get("THPeligible"), Some(&1));
        assert_eq!(e.fields.get("Size"), Some(&8192));
        assert!(!e.fields.contains_key("VmFlags"));
        assert!(e.has_flag("hg") && e.has_flag("rd") && !e.has_flag("vu"));
        assert_eq!(parse_all_smaps(SMAPS).len(), 3);
        assert!(parse_smaps(SMAPS, 0x7f00_0080_0000).is_none());
        let heap = parse_smaps(SMAPS, 0x55d0_c0a0_0000).expect("heap");
        assert_eq!(heap.fields.get("Rss"), Some(&8));
    }

    #[test]
    fn parses_meminfo_lines() {
        let f =
            parse_fields("MemTotal:  1000 kB\nHugePages_Free:  3\nbogus\nHugepagesize: 2048 kB\n");
        assert_eq!(f.get("MemTotal"), Some(&1000));
        assert_eq!(f.get("HugePages_Free"), Some(&3));
        assert_eq!(f.get("Hugepagesize"), Some(&2048));
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn counts_per_cpu_free_pages() {
        let zoneinfo = "Node 0, zone   Normal\n  pages free     1000\n  pagesets\n    cpu: 0\n              \
                        count:    57\n              high:     100\n    cpu: 1\n              count: 3\n";
        assert_eq!(pcp_pages(zoneinfo), 60);
        assert_eq!(pcp_pages("nothing here"), 0);
    }

    #[test]
    fn reads_own_smaps() -> TestResult {
        let v = [1u8; 64];
        let e = smaps_entry(v.as_ptr() as usize)?;
        assert!(e.start <= v.as_ptr() as usize && (v.as_ptr() as usize) < e.end);
        e.field("Rss")?;
        Ok(())
    }

    #[test]
    fn reads_own_maps_and_perms() -> TestResult {
        let v = [1u8; 64];
        let addr = v.as_ptr() as usize;
        let maps = task_maps_entries(crate::util::sys::gettid(), addr, addr + 1)?;
        assert_eq!(maps.len(), 1);
        assert!(maps[0].start <= addr && addr < maps[0].end);
        assert_eq!(thread_perms(addr)?, "rw-p");
        Ok(())
    }
}
