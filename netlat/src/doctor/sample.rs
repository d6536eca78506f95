//! One reading of everything the checklist looks at. Two of them, a window
//! apart, make a report; each part that could not be read keeps the reason,
//! so one missing file degrades one check, never the whole report.

use std::collections::BTreeMap;

use crate::{
    model::net_rx::NetRxTally,
    oneline::one_line,
    system::procfs::{
        ProcError, Root,
        interrupts::{self, Interrupts},
        netdev::{self, Interface},
        netstat::{self, NetCounters},
        softnet::{self, SoftnetRow},
        sysctl,
        tcp::{self, TcpSummary},
    },
};

/// A fact, or why it is unavailable ("cannot read /proc/interrupts: ...").
pub type Fact<T> = Result<T, String>;

/// The sysctls the checks quote next to their counters.
pub const SYSCTLS: [&str; 10] = [
    "net.core.netdev_max_backlog",
    "net.core.netdev_budget",
    "net.core.netdev_budget_usecs",
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_rmem",
    "net.core.rmem_max",
    "net.ipv4.tcp_adv_win_scale",
    "net.ipv4.tcp_moderate_rcvbuf",
    "net.ipv4.tcp_tw_reuse",
];

#[derive(Clone, Debug)]
pub struct Sample {
    pub netstat: Fact<NetCounters>,
    pub snmp: Fact<NetCounters>,
    pub softnet: Fact<Vec<SoftnetRow>>,
    pub interrupts: Fact<Interrupts>,
    pub interfaces: Fact<Vec<Interface>>,
    pub tcp: Fact<TcpSummary>,
    /// `Ok(None)`: this kernel has no such key.
    pub sysctls: BTreeMap<String, Fact<Option<String>>>,
    /// The NET_RX programs' per-CPU counts since they attached (by CPU id),
    /// or why they could not be: `None` when doctor does not run them.
    pub net_rx: Option<Fact<Vec<NetRxTally>>>,
}

fn fact<T>(r: Result<T, ProcError>) -> Fact<T> {
    r.map_err(|e| one_line(&e))
}

/// Reads every source under `root` once.
pub fn take(root: &Root) -> Sample {
    Sample {
        netstat: fact(netstat::read_netstat(root)),
        snmp: fact(netstat::read_snmp(root)),
        softnet: fact(softnet::try_read(root)),
        interrupts: fact(interrupts::read(root)),
        interfaces: fact(netdev::read(root)),
        tcp: fact(tcp::read(root).map(|s| tcp::summarize(&s))),
        sysctls: SYSCTLS
            .iter()
            .map(|k| (k.to_string(), fact(sysctl::read_at(root, k))))
            .collect(),
        net_rx: None,
    }
}
