//! SYN and accept queues: connections dropped because a listener's queues
//! were full (TcpExt ListenOverflows, ListenDrops, TCPBacklogDrop).

use super::{Check, Ctx, Verdict, counter_delta, unavailable};

impl Ctx<'_> {
    pub(super) fn listen_queues(&self) -> Check {
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
}
