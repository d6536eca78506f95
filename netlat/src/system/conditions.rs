//! Snapshots of the tunables and kernel counters around a run, for the
//! report's `conditions` (what changed between a "before" and an "after").

use std::collections::BTreeMap;

use crate::{
    model::report::Conditions,
    system::procfs::{
        Root,
        netstat::{NetCounters, read_netstat},
        softnet::{self, SoftnetRow},
        sysctl,
    },
};

/// TcpExt counters that explain receive-side latency: prunes and collapses
/// ("The story of one latency spike"), backlog and listen-queue drops
/// (Linkerd's network-performance notes).
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
    /// None if /proc/net/netstat could not be read: no deltas then.
    netstat: Option<NetCounters>,
    /// None if /proc/net/softnet_stat could not be read or understood.
    softnet: Option<Vec<SoftnetRow>>,
}

pub fn start() -> Start {
    Start {
        sysctls: sysctl::snapshot(),
        netstat: read_netstat(&Root::host()).ok(),
        softnet: softnet::try_read(&Root::host()).ok(),
    }
}

impl Start {
    pub fn finish(self) -> Conditions {
        // A counter missing on this kernel, or reset meanwhile, is left
        // out rather than reported as a made-up number.
        let delta = match (&self.netstat, read_netstat(&Root::host())) {
            (Some(start), Ok(end)) => start.delta(&end),
            _ => NetCounters::default(),
        };
        let netstat_delta = NETSTAT_COUNTERS
            .iter()
            .filter_map(|&name| Some((name.to_owned(), delta.get("TcpExt", name)?)))
            .collect();
        Conditions {
            sysctls_start: self.sysctls,
            sysctls_end: sysctl::snapshot(),
            netstat_delta,
            softnet_delta: match (&self.softnet, softnet::try_read(&Root::host())) {
                (Some(start), Ok(end)) => softnet::delta(start, &end),
                _ => Vec::new(),
            },
        }
    }
}
