//! The `vm.mmview_max_views` sysctl: its default, its range, and its absence
//! from a kernel built without mmview.

use std::io::ErrorKind;
use std::path::Path;

use super::named_tests;
use crate::check::{ensure, ensure_eq, fail, TestResult};
use crate::framework::Test;
use crate::util::procfs::{read_value, set_temporarily, write_file};

/// The sysctl file.
const MAX_VIEWS: &str = "/proc/sys/vm/mmview_max_views";
/// Its default, and its highest accepted value.
const DEFAULT: i64 = 1024;
const LIMIT: i64 = 65536;

pub fn tests() -> Vec<Test> {
    named_tests![sysctl_max_views]
}

pub fn config_off_tests() -> Vec<Test> {
    named_tests![config_off_no_sysctl]
}

/// Default 1024; accepts 1..=65536 and refuses the rest with EINVAL,
/// keeping the old value.
fn sysctl_max_views() -> TestResult {
    ensure_eq!(
        read_value::<i64>(MAX_VIEWS)?,
        DEFAULT,
        "default {MAX_VIEWS}"
    );
    let _restore = set_temporarily(MAX_VIEWS, "7")?;
    ensure_eq!(
        read_value::<i64>(MAX_VIEWS)?,
        7,
        "{MAX_VIEWS} after writing 7"
    );
    for bad in ["0", "-1", "65537", "4294967297"] {
        match std::fs::write(MAX_VIEWS, bad) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => fail!("writing {bad} to {MAX_VIEWS}: expected EINVAL, got {e}"),
            Ok(()) => fail!("writing {bad} to {MAX_VIEWS} was accepted"),
        }
        ensure_eq!(
            read_value::<i64>(MAX_VIEWS)?,
            7,
            "{MAX_VIEWS} after writing {bad}"
        );
    }
    for good in [1, LIMIT] {
        write_file(MAX_VIEWS, &good.to_string())?;
        ensure_eq!(
            read_value::<i64>(MAX_VIEWS)?,
            good,
            "{MAX_VIEWS} after writing {good}"
        );
    }
    Ok(())
}

/// Without mmview the sysctl does not exist.
fn config_off_no_sysctl() -> TestResult {
    ensure!(
        Path::new("/proc/sys/vm").is_dir(),
        "/proc/sys/vm is missing"
    );
    match std::fs::metadata(MAX_VIEWS) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => fail!("{MAX_VIEWS}: expected ENOENT, got {e}"),
        Ok(_) => fail!("{MAX_VIEWS} exists in a kernel without CONFIG_MMVIEW"),
    }
}
