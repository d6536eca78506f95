//! /proc/net/netstat: groups of two lines, a header of names and a line of
//! values, each starting with the group name (`TcpExt:`, `IpExt:`, ...).

use std::collections::BTreeMap;

/// Every counter of group `group` (e.g. "TcpExt"), by name.
pub fn parse_group(text: &str, group: &str) -> BTreeMap<String, u64> {
    let prefix = format!("{group}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return BTreeMap::new();
    };
    names
        .split_whitespace()
        .skip(1)
        .zip(values.split_whitespace().skip(1))
        .filter_map(|(n, v)| Some((n.to_owned(), v.parse().ok()?)))
        .collect()
}

pub fn read_tcp_ext() -> BTreeMap<String, u64> {
    std::fs::read_to_string("/proc/net/netstat")
        .map(|t| parse_group(&t, "TcpExt"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "TcpExt: SyncookiesSent PruneCalled RcvPruned TCPRcvCollapsed TCPBacklogDrop\nTcpExt: 0 30 0 4800 2\nIpExt: InNoRoutes InOctets\nIpExt: 0 123456\n";

    #[test]
    fn reads_each_group_by_name() {
        let tcp = parse_group(FIXTURE, "TcpExt");
        assert_eq!(tcp["PruneCalled"], 30);
        assert_eq!(tcp["TCPRcvCollapsed"], 4800);
        assert_eq!(tcp.len(), 5);
        assert_eq!(parse_group(FIXTURE, "IpExt")["InOctets"], 123456);
        assert!(parse_group(FIXTURE, "MPTcpExt").is_empty());
    }
}
