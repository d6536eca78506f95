//! The checklist of Linkerd's network-performance notes (and the
//! receive-buffer story of "The story of one latency spike") as pure
//! functions from two samples to verdicts, each with the numbers behind it.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use super::sample::{Fact, Sample};
use crate::system::procfs::{netstat::NetCounters, softnet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Warn,
    Problem,
    /// The inputs could not be read; the summary says why.
    Unavailable,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When the window ended (RFC 3339), set by the command, not by
    /// [`evaluate`], which stays a pure function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    pub window_secs: f64,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == verdict).count()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name for machines: softnet, listen_queues, receive_buffers,
    /// retransmits, irq_spread, connections, interfaces.
    pub id: String,
    pub title: String,
    pub verdict: Verdict,
    /// What was found, in plain words ("unavailable: why" when unreadable).
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// Tuning or next steps, as the published checklists suggest them.
    pub suggestions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub name: String,
    #[serde(flatten)]
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Value {
    /// Growth of a counter over the window.
    Rate {
        delta: u64,
        per_sec: f64,
    },
    /// A number read at the end of the window.
    Count {
        value: u64,
    },
    /// A sysctl; `None` when this kernel does not have it.
    Setting {
        value: Option<String>,
    },
    Percent {
        value: f64,
    },
    /// A counter this kernel does not have, or a source that failed.
    Absent {
        why: String,
    },
}

/// Budget squeezes per second below which a CPU is merely busy.
pub const SQUEEZE_WARN_PER_SEC: f64 = 1.0;
/// Retransmitted share of sent segments that is a problem, once at least
/// [`RETRANS_MIN_SEGMENTS`] were sent (fewer say little).
pub const RETRANS_PROBLEM_RATIO: f64 = 0.01;
pub const RETRANS_MIN_SEGMENTS: u64 = 1000;
/// TIME_WAIT sockets on one port that point at missing connection reuse.
pub const TIME_WAIT_WARN: u64 = 1000;
/// Share of a device's interrupts on one CPU that counts as "all on one".
pub const IRQ_ONE_CPU_SHARE: f64 = 0.9;
/// Interrupts over the window below which their spread means nothing.
pub const IRQ_MIN_COUNT: u64 = 100;

/// Compares `before` and `after`, taken `window` apart.
pub fn evaluate(before: &Sample, after: &Sample, window: Duration) -> Report {
    let secs = window.as_secs_f64().max(1e-9);
    let ctx = Ctx {
        before,
        after,
        secs,
    };
    let mut checks = vec![
        ctx.softnet(),
        ctx.listen_queues(),
        ctx.receive_buffers(),
        ctx.retransmits(),
        ctx.irq_spread(),
        ctx.connections(),
        ctx.interfaces(),
    ];
    tie_time_wait_to_syn_drops(&mut checks);
    Report {
        at: None,
        window_secs: window.as_secs_f64(),
        checks,
    }
}

struct Ctx<'a> {
    before: &'a Sample,
    after: &'a Sample,
    secs: f64,
}

fn rate(name: impl Into<String>, delta: u64, secs: f64) -> Evidence {
    Evidence {
        name: name.into(),
        value: Value::Rate {
            delta,
            per_sec: delta as f64 / secs,
        },
    }
}

fn count(name: impl Into<String>, value: u64) -> Evidence {
    Evidence {
        name: name.into(),
        value: Value::Count { value },
    }
}

fn absent(name: impl Into<String>, why: impl Into<String>) -> Evidence {
    Evidence {
        name: name.into(),
        value: Value::Absent { why: why.into() },
    }
}

fn unavailable(id: &str, title: &str, why: &str) -> Check {
    Check {
        id: id.into(),
        title: title.into(),
        verdict: Verdict::Unavailable,
        summary: format!("unavailable: {why}"),
        evidence: Vec::new(),
        suggestions: Vec::new(),
    }
}

/// Counter growth from two readings of the same file.
fn counter_delta(
    before: &Fact<NetCounters>,
    after: &Fact<NetCounters>,
) -> Result<NetCounters, String> {
    match (before, after) {
        (Ok(b), Ok(a)) => Ok(b.delta(a)),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    }
}

impl Ctx<'_> {
    fn setting(&self, key: &str) -> Evidence {
        let value = match self.after.sysctls.get(key) {
            Some(Ok(v)) => Value::Setting { value: v.clone() },
            Some(Err(why)) => Value::Absent { why: why.clone() },
            None => Value::Absent {
                why: "not read".into(),
            },
        };
        Evidence {
            name: key.into(),
            value,
        }
    }

    fn setting_u64(&self, key: &str) -> Option<u64> {
        self.after
            .sysctls
            .get(key)?
            .as_ref()
            .ok()?
            .as_ref()?
            .parse()
            .ok()
    }

    /// Growth of `names` in `group`, with evidence; counters this kernel
    /// lacks are shown as absent and count as 0.
    fn counters(
        &self,
        delta: &NetCounters,
        group: &str,
        names: &[&str],
        evidence: &mut Vec<Evidence>,
    ) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for &name in names {
            match delta.get(group, name) {
                Some(d) => {
                    evidence.push(rate(name, d, self.secs));
                    out.insert(name.to_owned(), d);
                }
                None => evidence.push(absent(name, format!("no {group} {name} on this kernel"))),
            }
        }
        out
    }

    fn softnet(&self) -> Check {
        const ID: &str = "softnet";
        const TITLE: &str = "Softnet backlog";
        let (before, after) = match (&self.before.softnet, &self.after.softnet) {
            (Ok(b), Ok(a)) => (b, a),
            (Err(e), _) | (_, Err(e)) => return unavailable(ID, TITLE, e),
        };
        let d = softnet::delta(before, after);
        let sum = |f: fn(&softnet::SoftnetRow) -> u64| d.iter().map(f).sum::<u64>();
        let (processed, dropped, squeezed) = (
            sum(|r| r.processed),
            sum(|r| r.dropped),
            sum(|r| r.time_squeeze),
        );
        let mut evidence = vec![
            rate("processed", processed, self.secs),
            rate("dropped", dropped, self.secs),
            rate("time_squeeze", squeezed, self.secs),
        ];
        for r in d.iter().filter(|r| r.dropped > 0 || r.time_squeeze > 0) {
            evidence.push(rate(format!("CPU{} dropped", r.cpu), r.dropped, self.secs));
            evidence.push(rate(
                format!("CPU{} time_squeeze", r.cpu),
                r.time_squeeze,
                self.secs,
            ));
        }
        for key in [
            "net.core.netdev_max_backlog",
            "net.core.netdev_budget",
            "net.core.netdev_budget_usecs",
        ] {
            evidence.push(self.setting(key));
        }
        let squeeze_rate = squeezed as f64 / self.secs;
        let mut suggestions = Vec::new();
        let mut words = Vec::new();
        let mut verdict = Verdict::Ok;
        if dropped > 0 {
            verdict = Verdict::Problem;
            words.push(format!(
                "{dropped} packets dropped because a CPU's input backlog was full"
            ));
            let now = self.setting_u64("net.core.netdev_max_backlog");
            suggestions.push(format!(
                "raise the backlog: sysctl -w net.core.netdev_max_backlog={}{}",
                now.map_or(2048, |n| (n * 2).max(2048)),
                now.map(|n| format!(" (now {n})")).unwrap_or_default()
            ));
        }
        if squeeze_rate >= SQUEEZE_WARN_PER_SEC {
            verdict = verdict.max(Verdict::Warn);
            words.push(format!(
                "packet processing ran out of budget {squeeze_rate:.1} times/s (time_squeeze)"
            ));
            let budget = self.setting_u64("net.core.netdev_budget");
            suggestions.push(format!(
                "give softirq processing more room: sysctl -w net.core.netdev_budget={}{}",
                budget.map_or(600, |n| (n * 2).max(600)),
                budget.map(|n| format!(" (now {n})")).unwrap_or_default()
            ));
            if let Some(usecs) = self.setting_u64("net.core.netdev_budget_usecs") {
                suggestions.push(format!(
                    "and its time limit: sysctl -w net.core.netdev_budget_usecs={} (now {usecs})",
                    usecs * 2
                ));
            }
        }
        let summary = if words.is_empty() {
            // `processed` counts only packets through the per-CPU backlog
            // (RPS, loopback), not NAPI drivers' own, so it is no total.
            format!("no backlog drops; {squeezed} budget squeezes ({squeeze_rate:.1}/s)")
        } else {
            words.join("; ")
        };
        Check {
            id: ID.into(),
            title: TITLE.into(),
            verdict,
            summary,
            evidence,
            suggestions,
        }
    }

    fn listen_queues(&self) -> Check {
        const ID: &str = "listen_queues";
        const TITLE: &str = "SYN and accept queues";
        let delta = match counter_delta(&self.before.netstat, &self.after.netstat) {
            Ok(d) => d,
            Err(e) => return unavailable(ID, TITLE, &e),
        };
        let mut evidence = Vec::new();
        let c = self.counters(
            &delta,
            "TcpExt",
            &["ListenOverflows", "ListenDrops", "TCPBacklogDrop"],
            &mut evidence,
        );
        evidence.push(self.setting("net.core.somaxconn"));
        evidence.push(self.setting("net.ipv4.tcp_max_syn_backlog"));
        if c.is_empty() {
            return unavailable(
                ID,
                TITLE,
                "this kernel has none of the listen-queue counters",
            );
        }
        let get = |n: &str| c.get(n).copied().unwrap_or(0);
        let (overflows, drops, backlog) = (
            get("ListenOverflows"),
            get("ListenDrops"),
            get("TCPBacklogDrop"),
        );
        let mut words = Vec::new();
        let mut suggestions = Vec::new();
        if overflows > 0 || drops > 0 {
            words.push(format!(
                "{} SYNs or connections dropped at a listening socket ({overflows} accept-queue overflows)",
                drops.max(overflows)
            ));
            let somaxconn = self.setting_u64("net.core.somaxconn");
            suggestions.push(format!(
                "accept faster, or raise the listen(2) backlog and net.core.somaxconn{}",
                somaxconn.map(|n| format!(" (now {n})")).unwrap_or_default()
            ));
        }
        if backlog > 0 {
            words.push(format!(
                "{backlog} packets dropped while their socket's backlog was full (TCPBacklogDrop)"
            ));
        }
        let verdict = if words.is_empty() {
            Verdict::Ok
        } else {
            suggestions.push(
                "a dropped SYN costs the client 1 s, then 3 s, 7 s... (SYN retransmits): look for those in its p999".into(),
            );
            Verdict::Problem
        };
        Check {
            id: ID.into(),
            title: TITLE.into(),
            verdict,
            summary: if words.is_empty() {
                "no listen-queue or socket-backlog drops".into()
            } else {
                words.join("; ")
            },
            evidence,
            suggestions,
        }
    }

    fn receive_buffers(&self) -> Check {
        const ID: &str = "receive_buffers";
        const TITLE: &str = "Receive-buffer pressure";
        let delta = match counter_delta(&self.before.netstat, &self.after.netstat) {
            Ok(d) => d,
            Err(e) => return unavailable(ID, TITLE, &e),
        };
        let mut evidence = Vec::new();
        let c = self.counters(
            &delta,
            "TcpExt",
            &["PruneCalled", "RcvPruned", "OfoPruned", "TCPRcvCollapsed"],
            &mut evidence,
        );
        for key in [
            "net.ipv4.tcp_rmem",
            "net.core.rmem_max",
            "net.ipv4.tcp_adv_win_scale",
            "net.ipv4.tcp_moderate_rcvbuf",
        ] {
            evidence.push(self.setting(key));
        }
        if c.is_empty() {
            return unavailable(ID, TITLE, "this kernel has none of the prune counters");
        }
        let get = |n: &str| c.get(n).copied().unwrap_or(0);
        let (prunes, collapsed) = (get("PruneCalled"), get("TCPRcvCollapsed"));
        let dropped = get("RcvPruned") + get("OfoPruned");
        let mut verdict = Verdict::Ok;
        let mut words = Vec::new();
        if prunes > 0 || collapsed > 0 {
            verdict = Verdict::Warn;
            words.push(format!(
                "receive queues over budget: {prunes} prunes ({:.1}/s), {collapsed} buffers collapsed ({:.1}/s)",
                prunes as f64 / self.secs,
                collapsed as f64 / self.secs
            ));
        }
        if dropped > 0 {
            verdict = Verdict::Problem;
            words.push(format!(
                "{dropped} received packets thrown away from full queues (RcvPruned, OfoPruned)"
            ));
        }
        let mut suggestions = Vec::new();
        if verdict != Verdict::Ok {
            suggestions.push(
                "time the collapses, which run in packet processing: netlat histogram tcp_collapse 30"
                    .into(),
            );
            suggestions.push(
                "a large net.ipv4.tcp_rmem maximum makes each collapse longer (\"The story of one latency spike\": max 21 ms with \"4096 5242880 33554432\", 3 ms with \"4096 1048576 2097152\"); try: netlat experiment tcp_collapse --sysctl net.ipv4.tcp_rmem=\"4096 1048576 2097152\""
                    .into(),
            );
        }
        Check {
            id: ID.into(),
            title: TITLE.into(),
            verdict,
            summary: if words.is_empty() {
                "no receive-queue prunes or collapses".into()
            } else {
                words.join("; ")
            },
            evidence,
            suggestions,
        }
    }

    fn retransmits(&self) -> Check {
        const ID: &str = "retransmits";
        const TITLE: &str = "Retransmits and timeouts";
        let snmp = counter_delta(&self.before.snmp, &self.after.snmp);
        let netstat = counter_delta(&self.before.netstat, &self.after.netstat);
        if let (Err(a), Err(b)) = (&snmp, &netstat) {
            return unavailable(ID, TITLE, &format!("{a}; {b}"));
        }
        let mut evidence = Vec::new();
        let tcp = match &snmp {
            Ok(d) => self.counters(d, "Tcp", &["RetransSegs", "OutSegs"], &mut evidence),
            Err(e) => {
                evidence.push(absent("RetransSegs", e.clone()));
                BTreeMap::new()
            }
        };
        let ext = match &netstat {
            Ok(d) => self.counters(
                d,
                "TcpExt",
                &["TCPTimeouts", "TCPSynRetrans", "TCPLostRetransmit"],
                &mut evidence,
            ),
            Err(e) => {
                evidence.push(absent("TCPTimeouts", e.clone()));
                BTreeMap::new()
            }
        };
        let get = |m: &BTreeMap<String, u64>, n: &str| m.get(n).copied().unwrap_or(0);
        let (retrans, sent) = (get(&tcp, "RetransSegs"), get(&tcp, "OutSegs"));
        let (timeouts, syn, lost) = (
            get(&ext, "TCPTimeouts"),
            get(&ext, "TCPSynRetrans"),
            get(&ext, "TCPLostRetransmit"),
        );
        let ratio = if sent > 0 {
            retrans as f64 / sent as f64
        } else {
            0.0
        };
        if sent > 0 {
            evidence.push(Evidence {
                name: "retransmitted share".into(),
                value: Value::Percent {
                    value: ratio * 100.0,
                },
            });
        }
        let verdict = if sent >= RETRANS_MIN_SEGMENTS && ratio >= RETRANS_PROBLEM_RATIO {
            Verdict::Problem
        } else if retrans + timeouts + syn + lost > 0 {
            Verdict::Warn
        } else {
            Verdict::Ok
        };
        let summary = if verdict == Verdict::Ok {
            "no retransmits or retransmit timeouts".into()
        } else {
            format!(
                "{retrans} segments retransmitted ({:.2}% of {sent} sent), {timeouts} retransmit timeouts, {syn} SYN retransmits",
                ratio * 100.0
            )
        };
        let mut suggestions = Vec::new();
        if verdict != Verdict::Ok {
            suggestions.push("a retransmit timeout stalls a connection for 200 ms or more, a lost SYN for 1 s (then 3 s, 7 s...): look for p999 latencies at those multiples, and for drops in the softnet and interface checks".into());
        }
        Check {
            id: ID.into(),
            title: TITLE.into(),
            verdict,
            summary,
            evidence,
            suggestions,
        }
    }

    fn irq_spread(&self) -> Check {
        const ID: &str = "irq_spread";
        const TITLE: &str = "Interrupt spread";
        let (before, after) = match (&self.before.interrupts, &self.after.interrupts) {
            (Ok(b), Ok(a)) => (b, a),
            (Err(e), _) | (_, Err(e)) => return unavailable(ID, TITLE, e),
        };
        let interfaces = match &self.after.interfaces {
            Ok(i) => i,
            Err(e) => {
                return unavailable(ID, TITLE, &format!("cannot tell which IRQs are whose: {e}"));
            }
        };
        let mut evidence = Vec::new();
        let mut words = Vec::new();
        let mut suggestions = Vec::new();
        let mut verdict = Verdict::Ok;
        let mut devices = 0;
        for iface in interfaces.iter().filter(|i| !i.bus_ids.is_empty()) {
            let names = iface.nic_names();
            let irqs: Vec<&str> = after.of_nic(&names).map(|l| l.irq.as_str()).collect();
            if irqs.is_empty() {
                continue;
            }
            devices += 1;
            let growth = crate::system::procfs::interrupts::nic_growth(before, after, &names);
            let total: u64 = growth.iter().map(|(_, n)| n).sum();
            evidence.push(count(format!("{} IRQs", iface.name), irqs.len() as u64));
            for &(cpu, n) in &growth {
                evidence.push(rate(format!("{} on CPU{cpu}", iface.name), n, self.secs));
            }
            let Some(&(top_cpu, top)) = growth.iter().max_by_key(|(_, n)| *n) else {
                continue;
            };
            if total < IRQ_MIN_COUNT {
                words.push(format!(
                    "{}: {total} interrupts, too few to judge",
                    iface.name
                ));
                continue;
            }
            let share = top as f64 / total as f64;
            evidence.push(Evidence {
                name: format!("{} busiest CPU share", iface.name),
                value: Value::Percent {
                    value: share * 100.0,
                },
            });
            if after.cpus.len() > 1 && share >= IRQ_ONE_CPU_SHARE {
                verdict = Verdict::Warn;
                words.push(format!(
                    "{:.0}% of {}'s interrupts land on CPU{top_cpu}",
                    share * 100.0,
                    iface.name
                ));
                suggestions.push(format!(
                    "spread {}'s IRQs ({}) over CPUs: is irqbalance running? see /proc/irq/N/smp_affinity_list; with few queues, RPS (/sys/class/net/{}/queues/rx-*/rps_cpus) spreads the protocol work. If this is intentional, ignore it",
                    iface.name,
                    irqs.join(", "),
                    iface.name
                ));
            } else {
                words.push(format!(
                    "{}: spread, the busiest CPU takes {:.0}%",
                    iface.name,
                    share * 100.0
                ));
            }
        }
        let summary = if devices == 0 {
            "no interface here has interrupts of its own (virtual interfaces only)".into()
        } else if after.cpus.len() < 2 {
            "one CPU online: nothing to spread".into()
        } else {
            words.join("; ")
        };
        Check {
            id: ID.into(),
            title: TITLE.into(),
            verdict,
            summary,
            evidence,
            suggestions,
        }
    }

    fn connections(&self) -> Check {
        const ID: &str = "connections";
        const TITLE: &str = "Connection churn";
        let tcp = match &self.after.tcp {
            Ok(t) => t,
            Err(e) => return unavailable(ID, TITLE, e),
        };
        let mut evidence: Vec<Evidence> = tcp
            .by_state
            .iter()
            .map(|(state, n)| count(state.as_str(), *n))
            .collect();
        if let Ok(d) = counter_delta(&self.before.snmp, &self.after.snmp) {
            for name in ["ActiveOpens", "PassiveOpens"] {
                if let Some(v) = d.get("Tcp", name) {
                    evidence.push(rate(name, v, self.secs));
                }
            }
        }
        let top = |m: &BTreeMap<u16, u64>| {
            let mut v: Vec<(u16, u64)> = m.iter().map(|(p, n)| (*p, *n)).collect();
            // One TIME_WAIT socket on a port says nothing about that port.
            v.retain(|(_, n)| *n > 1);
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(3);
            v
        };
        let local = top(&tcp.time_wait_by_local_port);
        let remote = top(&tcp.time_wait_by_remote_port);
        for &(port, n) in &local {
            evidence.push(count(format!("TIME_WAIT on local port {port}"), n));
        }
        for &(port, n) in &remote {
            evidence.push(count(format!("TIME_WAIT to remote port {port}"), n));
        }
        let mut words = Vec::new();
        let mut suggestions = Vec::new();
        for &(port, n) in local.iter().filter(|(_, n)| *n >= TIME_WAIT_WARN) {
            words.push(format!(
                "{n} sockets in TIME_WAIT on local port {port}: its clients open a new connection per request"
            ));
            suggestions.push(format!("watch them: ss -tan 'sport = :{port}'"));
        }
        for &(port, n) in remote.iter().filter(|(_, n)| *n >= TIME_WAIT_WARN) {
            words.push(format!(
                "{n} sockets in TIME_WAIT towards port {port}: this host opens a new connection per request"
            ));
            suggestions.push(format!("watch them: ss -tan 'dport = :{port}'"));
        }
        let verdict = if words.is_empty() {
            Verdict::Ok
        } else {
            suggestions.push("reuse connections (connection pooling, keep-alive): it often has the biggest effect for the smallest cost".into());
            Verdict::Warn
        };
        let tw = tcp.by_state.get("TIME_WAIT").copied().unwrap_or(0);
        Check {
            id: ID.into(),
            title: TITLE.into(),
            verdict,
            summary: if words.is_empty() {
                format!(
                    "{} TCP socket{}, {tw} in TIME_WAIT, none piling up on one port",
                    tcp.total,
                    plural_s(tcp.total as usize)
                )
            } else {
                words.join("; ")
            },
            evidence,
            suggestions,
        }
    }

    fn interfaces(&self) -> Check {
        const ID: &str = "interfaces";
        const TITLE: &str = "Interface drops and errors";
        const ERRORS: [&str; 7] = [
            "rx_errors",
            "tx_errors",
            "rx_crc_errors",
            "rx_missed_errors",
            "rx_fifo_errors",
            "rx_over_errors",
            "tx_fifo_errors",
        ];
        const DROPS: [&str; 2] = ["rx_dropped", "tx_dropped"];
        const RING: [&str; 3] = ["rx_missed_errors", "rx_fifo_errors", "rx_over_errors"];
        let (before, after) = match (&self.before.interfaces, &self.after.interfaces) {
            (Ok(b), Ok(a)) => (b, a),
            (Err(e), _) | (_, Err(e)) => return unavailable(ID, TITLE, e),
        };
        let mut evidence = Vec::new();
        let mut verdict = Verdict::Ok;
        let mut words = Vec::new();
        let mut suggestions = Vec::new();
        for iface in after {
            let Some(old) = before.iter().find(|b| b.name == iface.name) else {
                continue;
            };
            let grew = |name: &str| -> u64 {
                match (old.stats.get(name), iface.stats.get(name)) {
                    (Some(b), Some(a)) => a.saturating_sub(*b),
                    _ => 0,
                }
            };
            let mut bad = Vec::new();
            for name in ERRORS.iter().chain(&DROPS) {
                let d = grew(name);
                if d > 0 {
                    evidence.push(rate(format!("{} {name}", iface.name), d, self.secs));
                    bad.push(format!("{name} +{d}"));
                }
            }
            if bad.is_empty() {
                continue;
            }
            let errors = ERRORS.iter().any(|n| grew(n) > 0);
            verdict = verdict.max(if errors {
                Verdict::Problem
            } else {
                Verdict::Warn
            });
            words.push(format!("{}: {}", iface.name, bad.join(", ")));
            if RING.iter().any(|n| grew(n) > 0) {
                suggestions.push(format!(
                    "{0}'s receive ring overflowed: raise it with ethtool -G {0} rx N (ethtool -g {0} shows the maximum)",
                    iface.name
                ));
            }
            suggestions.push(format!(
                "ethtool -S {} shows the driver's own counters behind these",
                iface.name
            ));
        }
        if verdict != Verdict::Ok {
            suggestions.push("dropped packets come back as p999 latency near multiples of 200 ms (the retransmit timeout)".into());
        }
        let summary = if words.is_empty() {
            format!(
                "no drops or errors on {} interface{}",
                after.len(),
                plural_s(after.len())
            )
        } else {
            words.join("; ")
        };
        if evidence.is_empty() {
            for iface in after {
                let packets = |n: &str| match (
                    before
                        .iter()
                        .find(|b| b.name == iface.name)
                        .and_then(|b| b.stats.get(n)),
                    iface.stats.get(n),
                ) {
                    (Some(b), Some(a)) => Some(a.saturating_sub(*b)),
                    _ => None,
                };
                if let Some(d) = packets("rx_packets") {
                    evidence.push(rate(format!("{} rx_packets", iface.name), d, self.secs));
                }
            }
        }
        Check {
            id: ID.into(),
            title: TITLE.into(),
            verdict,
            summary,
            evidence,
            suggestions,
        }
    }
}

/// The suggestions that run netlat on `function`, for a kernel where it
/// cannot be timed: what that would need instead, and the tuning to try by
/// hand.
pub fn without_tracing(report: &mut Report, function: &str, why: &str) {
    let histogram = format!("netlat histogram {function}");
    let experiment = format!("netlat experiment {function}");
    for check in &mut report.checks {
        for s in &mut check.suggestions {
            if s.contains(&histogram) {
                *s = format!(
                    "netlat cannot time {function} on this kernel ({why}): that needs a kernel with kprobes (CONFIG_KPROBES=y) or fentry (BTF and BPF trampolines, CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y, as Debian's cloud kernels have); the counters above still show how often it ran"
                );
            } else if let Some(at) = s.find(&experiment) {
                let sysctl = s[at..]
                    .split_once("--sysctl ")
                    .map(|(_, kv)| kv.to_owned())
                    .unwrap_or_default();
                *s = format!(
                    "{}by hand, since netlat cannot time {function} here: sysctl -w {sysctl}, then netlat doctor --watch 5 to see whether the counters calm down",
                    &s[..at]
                );
            }
        }
    }
}

fn plural_s(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Linkerd's network-performance notes: many TIME_WAIT sockets together with dropped SYNs tell that
/// connection pooling is not used.
fn tie_time_wait_to_syn_drops(checks: &mut [Check]) {
    let drops = checks
        .iter()
        .any(|c| c.id == "listen_queues" && c.verdict == Verdict::Problem);
    if let Some(c) = checks.iter_mut().find(|c| c.id == "connections")
        && drops
        && c.verdict == Verdict::Warn
    {
        c.verdict = Verdict::Problem;
        c.summary.push_str(
            "; together with the SYN/accept-queue drops, connections are not being pooled",
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::system::procfs::{
        interrupts, netdev::Interface, netstat, softnet::SoftnetRow, tcp::TcpSummary,
    };

    fn quiet() -> Sample {
        Sample {
            netstat: Ok(netstat::parse(
                "TcpExt: ListenOverflows ListenDrops TCPBacklogDrop PruneCalled RcvPruned OfoPruned TCPRcvCollapsed TCPTimeouts TCPSynRetrans TCPLostRetransmit\nTcpExt: 0 0 0 0 0 0 0 0 0 0\n",
            )
            .unwrap()),
            snmp: Ok(netstat::parse(
                "Tcp: ActiveOpens PassiveOpens OutSegs RetransSegs\nTcp: 0 0 0 0\n",
            )
            .unwrap()),
            softnet: Ok(vec![SoftnetRow::default()]),
            interrupts: Ok(interrupts::parse("CPU0 CPU1\n").unwrap()),
            interfaces: Ok(Vec::new()),
            tcp: Ok(TcpSummary::default()),
            sysctls: BTreeMap::new(),
        }
    }

    fn with_counters(text_netstat: &str, text_snmp: &str) -> Sample {
        Sample {
            netstat: Ok(netstat::parse(text_netstat).unwrap()),
            snmp: Ok(netstat::parse(text_snmp).unwrap()),
            ..quiet()
        }
    }

    #[test]
    fn where_tcp_collapse_cannot_be_timed_the_advice_says_what_it_needs() {
        let busy = with_counters(
            "TcpExt: ListenOverflows ListenDrops TCPBacklogDrop PruneCalled RcvPruned OfoPruned TCPRcvCollapsed TCPTimeouts TCPSynRetrans TCPLostRetransmit\nTcpExt: 0 0 0 30 0 0 4000 0 0 0\n",
            "Tcp: ActiveOpens PassiveOpens OutSegs RetransSegs\nTcp: 0 0 0 0\n",
        );
        let mut r = evaluate(&quiet(), &busy, Duration::from_secs(10));
        let before = r.check("receive_buffers").unwrap().suggestions.clone();
        assert!(
            before
                .iter()
                .any(|s| s.contains("netlat histogram tcp_collapse")),
            "{before:?}"
        );
        without_tracing(&mut r, "tcp_collapse", "no kprobes; fentry refused");
        let after = &r.check("receive_buffers").unwrap().suggestions;
        assert!(
            !after
                .iter()
                .any(|s| s.contains("netlat histogram tcp_collapse")
                    || s.contains("netlat experiment tcp_collapse")),
            "{after:?}"
        );
        assert!(
            after[0].starts_with("netlat cannot time tcp_collapse on this kernel (no kprobes; fentry refused): that needs a kernel with kprobes (CONFIG_KPROBES=y) or fentry"),
            "{after:?}"
        );
        assert!(
            after[1].contains(
                "try: by hand, since netlat cannot time tcp_collapse here: sysctl -w net.ipv4.tcp_rmem=\"4096 1048576 2097152\""
            ),
            "{after:?}"
        );
    }

    fn judge(before: &Sample, after: &Sample, id: &str) -> Check {
        evaluate(before, after, Duration::from_secs(10))
            .checks
            .into_iter()
            .find(|c| c.id == id)
            .unwrap()
    }

    #[test]
    fn a_quiet_host_is_all_ok() {
        let r = evaluate(&quiet(), &quiet(), Duration::from_secs(5));
        for c in &r.checks {
            assert_eq!(c.verdict, Verdict::Ok, "{c:?}");
            assert!(c.suggestions.is_empty(), "{c:?}");
        }
    }

    #[test]
    fn a_few_squeezes_are_fine_many_are_a_warning() {
        let after = |squeezes| Sample {
            softnet: Ok(vec![SoftnetRow {
                time_squeeze: squeezes,
                ..SoftnetRow::default()
            }]),
            ..quiet()
        };
        // 10 s window: 9 squeezes is 0.9/s.
        assert_eq!(judge(&quiet(), &after(9), "softnet").verdict, Verdict::Ok);
        let c = judge(&quiet(), &after(10), "softnet");
        assert_eq!(c.verdict, Verdict::Warn);
        // No sysctl readable: the checklist's value, without "(now ...)".
        assert_eq!(
            c.suggestions,
            ["give softirq processing more room: sysctl -w net.core.netdev_budget=600"]
        );
    }

    #[test]
    fn retransmit_share_needs_enough_segments() {
        let before = quiet();
        let few = with_counters(
            "TcpExt: TCPTimeouts\nTcpExt: 0\n",
            "Tcp: OutSegs RetransSegs\nTcp: 100 5\n",
        );
        assert_eq!(judge(&before, &few, "retransmits").verdict, Verdict::Warn);
        let many = with_counters(
            "TcpExt: TCPTimeouts\nTcpExt: 0\n",
            "Tcp: OutSegs RetransSegs\nTcp: 1000 10\n",
        );
        assert_eq!(
            judge(&before, &many, "retransmits").verdict,
            Verdict::Problem
        );
    }

    #[test]
    fn counters_missing_on_this_kernel() {
        let old = with_counters(
            "TcpExt: SyncookiesSent\nTcpExt: 0\n",
            "Tcp: InSegs\nTcp: 1\n",
        );
        let c = judge(&old, &old, "listen_queues");
        assert_eq!(c.verdict, Verdict::Unavailable);
        assert!(c.summary.contains("none of the listen-queue counters"));
        let c = judge(&old, &old, "retransmits");
        assert_eq!(c.verdict, Verdict::Ok);
        assert!(
            c.evidence
                .iter()
                .any(|e| e.name == "RetransSegs" && matches!(e.value, Value::Absent { .. }))
        );
    }

    fn nic(name: &str) -> Interface {
        Interface {
            name: name.into(),
            bus_ids: vec!["virtio2".into()],
            stats: BTreeMap::new(),
        }
    }

    #[test]
    fn irq_spread_needs_several_cpus_and_enough_interrupts() {
        let irqs = |text: &str| Sample {
            interrupts: Ok(interrupts::parse(text).unwrap()),
            interfaces: Ok(vec![nic("eth0")]),
            ..quiet()
        };
        let two = "CPU0 CPU1\n 38: 0 0 PCI-MSIX 1-edge virtio2-input.0\n";
        let busy = "CPU0 CPU1\n 38: 500 0 PCI-MSIX 1-edge virtio2-input.0\n";
        let few = "CPU0 CPU1\n 38: 50 0 PCI-MSIX 1-edge virtio2-input.0\n";
        let c = judge(&irqs(two), &irqs(busy), "irq_spread");
        assert_eq!(c.verdict, Verdict::Warn);
        assert_eq!(c.summary, "100% of eth0's interrupts land on CPU0");
        assert!(c.suggestions[0].contains("eth0's IRQs (38)"));
        assert_eq!(
            judge(&irqs(two), &irqs(few), "irq_spread").verdict,
            Verdict::Ok
        );
        let one = "CPU0\n 38: 0 PCI-MSIX 1-edge virtio2-input.0\n";
        let one_busy = "CPU0\n 38: 5000 PCI-MSIX 1-edge virtio2-input.0\n";
        let c = judge(&irqs(one), &irqs(one_busy), "irq_spread");
        assert_eq!(c.verdict, Verdict::Ok);
        assert_eq!(c.summary, "one CPU online: nothing to spread");
    }

    #[test]
    fn time_wait_towards_one_remote_port_means_this_host_is_the_client() {
        let mut tcp = TcpSummary::default();
        tcp.by_state.insert("TIME_WAIT".into(), 1500);
        tcp.time_wait_by_remote_port.insert(8080, 1500);
        tcp.time_wait_by_local_port.insert(40000, 1);
        let after = Sample {
            tcp: Ok(tcp),
            ..quiet()
        };
        let c = judge(&quiet(), &after, "connections");
        assert_eq!(c.verdict, Verdict::Warn);
        assert!(c.summary.contains("towards port 8080"), "{}", c.summary);
        assert!(
            !c.evidence
                .iter()
                .any(|e| e.name.contains("local port 40000")),
            "{:?}",
            c.evidence
        );
    }

    #[test]
    fn interface_drops_warn_errors_are_problems() {
        let iface = |dropped, errors| Sample {
            interfaces: Ok(vec![Interface {
                stats: [("rx_dropped".into(), dropped), ("tx_errors".into(), errors)].into(),
                ..nic("eth0")
            }]),
            ..quiet()
        };
        assert_eq!(
            judge(&iface(0, 0), &iface(3, 0), "interfaces").verdict,
            Verdict::Warn
        );
        let c = judge(&iface(0, 0), &iface(3, 1), "interfaces");
        assert_eq!(c.verdict, Verdict::Problem);
        assert_eq!(c.summary, "eth0: tx_errors +1, rx_dropped +3");
        // A counter that went down (driver reset) is no growth.
        assert_eq!(
            judge(&iface(9, 9), &iface(3, 1), "interfaces").verdict,
            Verdict::Ok
        );
    }
}
