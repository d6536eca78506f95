//! /proc/net/netstat and /proc/net/snmp: groups of two lines, a header of
//! names and a line of values, each starting with the group name
//! (`TcpExt:`, `IpExt:`, `Tcp:`, `Udp:`, ...). One parser serves both files.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ProcError, Root, read_text};

/// Every counter of every group: `group -> name -> value`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NetCounters(pub BTreeMap<String, BTreeMap<String, u64>>);

impl NetCounters {
    pub fn get(&self, group: &str, name: &str) -> Option<u64> {
        self.0.get(group)?.get(name).copied()
    }

    pub fn group(&self, group: &str) -> Option<&BTreeMap<String, u64>> {
        self.0.get(group)
    }

    /// Growth of each counter present in both. These are 64-bit on the
    /// kernels netlat runs on, so a counter that went down was reset (the
    /// namespace was re-created), and its growth counts as 0.
    pub fn delta(&self, later: &NetCounters) -> NetCounters {
        let mut out = BTreeMap::new();
        for (group, after) in &later.0 {
            let Some(before) = self.0.get(group) else {
                continue;
            };
            let diffs: BTreeMap<String, u64> = after
                .iter()
                .filter_map(|(name, a)| Some((name.clone(), a.saturating_sub(*before.get(name)?))))
                .collect();
            out.insert(group.clone(), diffs);
        }
        NetCounters(out)
    }
}

/// Parses the whole file. A header without its value line, or a value
/// line of another length, is an error; a value that is not an unsigned
/// integer (`Tcp: MaxConn` is -1) is left out, since it is no counter.
pub fn parse(text: &str) -> Result<NetCounters, ProcError> {
    let mut groups = BTreeMap::new();
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    while let Some((n, header)) = lines.next() {
        let line = n + 1;
        let Some((group, names)) = header.split_once(':') else {
            return Err(ProcError::parse("netstat", line, "no 'Group:' prefix"));
        };
        let Some((_, values)) = lines.next() else {
            return Err(ProcError::parse(
                "netstat",
                line,
                format!("header of {group} without a value line"),
            ));
        };
        let Some((vgroup, values)) = values.split_once(':') else {
            return Err(ProcError::parse("netstat", line + 1, "no 'Group:' prefix"));
        };
        if vgroup != group {
            return Err(ProcError::parse(
                "netstat",
                line + 1,
                format!("values of {vgroup} after the header of {group}"),
            ));
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            return Err(ProcError::parse(
                "netstat",
                line + 1,
                format!(
                    "{group} has {} names but {} values",
                    names.len(),
                    values.len()
                ),
            ));
        }
        let counters = names
            .into_iter()
            .zip(values)
            .filter_map(|(n, v)| Some((n.to_owned(), v.parse().ok()?)))
            .collect();
        groups.insert(group.to_owned(), counters);
    }
    Ok(NetCounters(groups))
}

/// `/proc/net/netstat` (TcpExt, IpExt, MPTcpExt).
pub fn read_netstat(root: &Root) -> Result<NetCounters, ProcError> {
    parse(&read_text(&root.proc_net.join("netstat"))?)
}

/// `/proc/net/snmp` (Ip, Icmp, Tcp, Udp, ...).
pub fn read_snmp(root: &Root) -> Result<NetCounters, ProcError> {
    parse(&read_text(&root.proc_net.join("snmp"))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parse_of_a_real_netstat_and_snmp() {
        let netstat = parse(include_str!(
            "../../../tests/fixtures/proc/linux-6.18-vm/net/netstat"
        ))
        .unwrap();
        assert_eq!(netstat.get("TcpExt", "PruneCalled"), Some(33));
        assert_eq!(netstat.get("TcpExt", "ListenOverflows"), Some(0));
        assert!(netstat.get("TcpExt", "TCPRcvCollapsed").is_some());
        assert_eq!(netstat.get("IpExt", "InOctets"), Some(672803791));
        assert!(netstat.group("MPTcpExt").is_some());

        let snmp = parse(include_str!(
            "../../../tests/fixtures/proc/linux-6.18-vm/net/snmp"
        ))
        .unwrap();
        assert_eq!(snmp.get("Tcp", "RetransSegs"), Some(0));
        assert_eq!(snmp.get("Tcp", "ActiveOpens"), Some(2408));
        // MaxConn is -1: not a counter, left out rather than failing.
        assert_eq!(snmp.get("Tcp", "MaxConn"), None);
        assert_eq!(snmp.get("IcmpMsg", "InType3"), Some(1));
        assert_eq!(snmp.get("Udp", "NoPorts"), Some(0));
    }

    #[test]
    fn broken_files_are_errors_not_panics() {
        for bad in [
            "TcpExt: A B\n",
            "TcpExt: A B\nTcpExt: 1\n",
            "TcpExt: A B\nIpExt: 1 2\n",
            "no colon here\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ProcError::Parse { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(parse("").unwrap(), NetCounters::default());
    }

    #[test]
    fn deltas_skip_new_counters_and_resets() {
        let a = parse("Tcp: RetransSegs InSegs\nTcp: 10 4294967290\n").unwrap();
        let b = parse("Tcp: RetransSegs InSegs New\nTcp: 15 3 1\n").unwrap();
        let d = a.delta(&b);
        assert_eq!(d.get("Tcp", "RetransSegs"), Some(5));
        assert_eq!(d.get("Tcp", "InSegs"), Some(0));
        assert_eq!(d.get("Tcp", "New"), None);
    }
}
