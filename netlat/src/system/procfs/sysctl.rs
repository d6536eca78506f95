//! Reading sysctls from /proc/sys, the way `sysctl -n` prints them.

use std::{collections::BTreeMap, path::PathBuf};

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

pub fn path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Collapses the kernel's tabs and newlines to single spaces, as `sysctl`
/// prints multi-value settings ("4096 131072 6291456").
pub fn normalize(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// None when the key does not exist on this kernel (recorded as absent).
pub fn read(key: &str) -> Option<String> {
    std::fs::read_to_string(path(key))
        .ok()
        .map(|v| normalize(&v))
}

/// `key` under `root`'s /proc/sys: `Ok(None)` when this kernel has no such
/// key, an error when it exists but cannot be read (permissions).
pub fn read_at(root: &Root, key: &str) -> Result<Option<String>, ProcError> {
    let path: PathBuf = root.proc_sys.join(key.replace('.', "/"));
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
        assert_eq!(path("net.ipv4.tcp_rmem"), "/proc/sys/net/ipv4/tcp_rmem");
        assert_eq!(normalize("4096\t131072\t6291456\n"), "4096 131072 6291456");
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
