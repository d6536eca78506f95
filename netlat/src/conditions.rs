//! Snapshots of the tunables and kernel counters around a run, for the
//! report's `conditions` (what changed between a "before" and an "after").

use std::collections::BTreeMap;

use crate::{
    procfs::{
        netstat,
        softnet::{self, SoftnetRow},
        sysctl,
    },
    report::Conditions,
};

/// TcpExt counters that explain receive-side latency: prunes and collapses
/// (seed 003), backlog and listen-queue drops (seed 000).
pub const NETSTAT_COUNTERS: [&str; 7] = [
    "PruneCalled",
    "RcvPruned",
    "OfoPruned",
    "TCPRcvCollapsed",
    "TCPBacklogDrop",
    "ListenOverflows",
    "ListenDrops",
];

pub struct Start {
    sysctls: BTreeMap<String, Option<String>>,
    netstat: BTreeMap<String, u64>,
    softnet: Vec<SoftnetRow>,
}

pub fn start() -> Start {
    Start {
        sysctls: sysctl::snapshot(),
        netstat: netstat::read_tcp_ext(),
        softnet: softnet::read(),
    }
}

impl Start {
    pub fn finish(self) -> Conditions {
        let netstat_end = netstat::read_tcp_ext();
        let netstat_delta = NETSTAT_COUNTERS
            .iter()
            .filter_map(|&name| {
                let (a, b) = (self.netstat.get(name)?, netstat_end.get(name)?);
                Some((name.to_owned(), b.wrapping_sub(*a)))
            })
            .collect();
        Conditions {
            sysctls_start: self.sysctls,
            sysctls_end: sysctl::snapshot(),
            netstat_delta,
            softnet_delta: softnet::delta(&self.softnet, &softnet::read()),
        }
    }
}
