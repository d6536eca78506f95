//! Reading sysctls from /proc/sys, the way `sysctl -n` prints them.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use super::{ProcError, Root, read_text};

/// The sysctls behind "The story of one latency spike" (receive buffers and
/// tcp_collapse) and the softnet checklist of Linkerd's network-performance
/// notes, recorded beside every result.
pub const RECORDED: [&str; 10] = [
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_mem",
    "net.core.rmem_max",
    "net.core.rmem_default",
    "net.ipv4.tcp_adv_win_scale",
    "net.ipv4.tcp_moderate_rcvbuf",
    "net.core.netdev_budget",
    "net.core.netdev_budget_usecs",
    "net.core.netdev_max_backlog",
];

/// A key that cannot name a file under /proc/sys.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{key} is not a sysctl name: {why}")]
pub struct BadKey {
    /// As given, control characters escaped.
    pub key: String,
    pub why: &'static str,
}

/// The key's file below /proc/sys, by sysctl(8)'s rule (procps' `slashdot`):
/// the first separator decides. If it is a `/`, the key is already a path;
/// otherwise every `.` becomes `/` and every `/` becomes `.`, so a VLAN
/// device's `net.ipv4.conf.eth0/100.rp_filter` is
/// `net/ipv4/conf/eth0.100/rp_filter`. Refuses anything that could leave
/// /proc/sys (a leading `/`, `..`), NUL and control characters.
pub fn relative_path(key: &str) -> Result<PathBuf, BadKey> {
    let bad = |why| BadKey {
        key: crate::render::printable(key).into_owned(),
        why,
    };
    if key.is_empty() {
        return Err(bad("it is empty"));
    }
    if key.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("it holds a control character or white space"));
    }
    if key.starts_with('/') {
        return Err(bad("it starts with /"));
    }
    let path: String = if key.find(['.', '/']).map(|i| &key[i..i + 1]) == Some("/") {
        key.to_owned()
    } else {
        key.chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect()
    };
    for part in path.split('/') {
        match part {
            "" => {
                return Err(bad(
                    "it has an empty component (a repeated or trailing separator)",
                ));
            }
            "." | ".." => return Err(bad("it has a . or .. component")),
            _ => {}
        }
    }
    Ok(PathBuf::from(path))
}

/// The key in dotted form (`net.ipv4.conf.eth0/100.rp_filter`), whichever
/// form it was given in, so one sysctl has one restore record.
pub fn canonical(key: &str) -> Result<String, BadKey> {
    let path = relative_path(key)?;
    let parts: Vec<String> = path
        .to_string_lossy()
        .split('/')
        .map(|p| p.replace('.', "/"))
        .collect();
    Ok(parts.join("."))
}

/// `key`'s file under `proc_sys` (/proc/sys, or a test's scratch tree).
pub fn path_under(proc_sys: &Path, key: &str) -> Result<PathBuf, BadKey> {
    Ok(proc_sys.join(relative_path(key)?))
}

/// `key`'s file under /proc/sys.
pub fn path(key: &str) -> Result<PathBuf, BadKey> {
    path_under(Path::new("/proc/sys"), key)
}

/// Collapses the kernel's tabs and newlines to single spaces, as `sysctl`
/// prints multi-value settings ("4096 131072 6291456").
pub fn normalize(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// None when the key does not exist on this kernel (recorded as absent).
pub fn read(key: &str) -> Option<String> {
    std::fs::read_to_string(path(key).ok()?)
        .ok()
        .map(|v| normalize(&v))
}

/// `key` under `root`'s /proc/sys: `Ok(None)` when this kernel has no such
/// key, an error when it exists but cannot be read (permissions).
pub fn read_at(root: &Root, key: &str) -> Result<Option<String>, ProcError> {
    let Ok(path) = path_under(&root.proc_sys, key) else {
        return Ok(None);
    };
    match read_text(&path) {
        Ok(v) => Ok(Some(normalize(&v))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A sysctl that holds one integer (netdev_budget): None when absent.
pub fn read_u64_at(root: &Root, key: &str) -> Result<Option<u64>, ProcError> {
    read_at(root, key)?
        .map(|v| {
            v.parse()
                .map_err(|_| ProcError::parse("sysctl", 1, format!("{key} = {v:?} is no integer")))
        })
        .transpose()
}

pub fn snapshot() -> BTreeMap<String, Option<String>> {
    RECORDED.iter().map(|k| (k.to_string(), read(k))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_map_to_proc_sys_and_values_normalize() {
        assert_eq!(
            path("net.ipv4.tcp_rmem").unwrap(),
            Path::new("/proc/sys/net/ipv4/tcp_rmem")
        );
        assert_eq!(normalize("4096\t131072\t6291456\n"), "4096 131072 6291456");
    }

    /// sysctl(8) (procps' slashdot): with a `.` first, `.` and `/` swap; with
    /// a `/` first, the key is a path already.
    #[test]
    fn keys_follow_sysctl_8_for_devices_with_dots() {
        for (key, expected) in [
            (
                "net.ipv4.conf.eth0/100.rp_filter",
                "net/ipv4/conf/eth0.100/rp_filter",
            ),
            (
                "net/ipv4/conf/eth0.100/rp_filter",
                "net/ipv4/conf/eth0.100/rp_filter",
            ),
            ("net.core.somaxconn", "net/core/somaxconn"),
            ("net/core/somaxconn", "net/core/somaxconn"),
            ("kernel", "kernel"),
        ] {
            assert_eq!(relative_path(key).unwrap(), Path::new(expected), "{key}");
        }
        for key in [
            "net.ipv4.conf.eth0/100.rp_filter",
            "net/ipv4/conf/eth0.100/rp_filter",
        ] {
            assert_eq!(canonical(key).unwrap(), "net.ipv4.conf.eth0/100.rp_filter");
        }
        assert_eq!(
            canonical("net/core/somaxconn").unwrap(),
            "net.core.somaxconn"
        );
    }

    #[test]
    fn keys_that_could_leave_proc_sys_are_refused() {
        for (key, why) in [
            ("/tmp/victim", "it starts with /"),
            ("net/../../tmp/victim", "it has a . or .. component"),
            ("net/core/../x", "it has a . or .. component"),
            (
                "net..core",
                "it has an empty component (a repeated or trailing separator)",
            ),
            (
                "net.core.",
                "it has an empty component (a repeated or trailing separator)",
            ),
            ("", "it is empty"),
            ("net.core\0x", "it holds a control character or white space"),
            (
                "net.core.x\u{1b}[2J",
                "it holds a control character or white space",
            ),
        ] {
            let err = relative_path(key).unwrap_err();
            assert_eq!(err.why, why, "{key:?}");
            assert!(!err.to_string().chars().any(char::is_control), "{err}");
        }
    }

    #[test]
    fn absent_keys_are_none_and_present_ones_read() {
        let scratch = netlat_testkit::scratch::Scratch::new("sysctl");
        let dir = scratch.path();
        std::fs::create_dir_all(dir.join("proc/sys/net/core")).unwrap();
        std::fs::write(dir.join("proc/sys/net/core/netdev_budget"), "300\n").unwrap();
        std::fs::write(dir.join("proc/sys/net/core/rmem_max"), "lots\n").unwrap();
        let root = Root::under(dir);
        assert_eq!(
            read_u64_at(&root, "net.core.netdev_budget").unwrap(),
            Some(300)
        );
        assert_eq!(
            read_at(&root, "net.core.netdev_budget_usecs").unwrap(),
            None
        );
        assert!(read_u64_at(&root, "net.core.rmem_max").is_err());
    }
}
