//! Reading sysctls from /proc/sys, the way `sysctl -n` prints them.

use std::collections::BTreeMap;

/// The sysctls behind seed 003's story (receive buffers and tcp_collapse)
/// and seed 000's softnet checklist, recorded beside every result.
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
}
