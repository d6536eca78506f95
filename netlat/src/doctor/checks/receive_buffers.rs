//! Receive-buffer pressure: queues pruned and collapsed, and data dropped
//! when that was not enough (TcpExt PruneCalled, TCPRcvCollapsed, RcvPruned,
//! OfoPruned): the cost "The story of one latency spike" traced to tcp_rmem.

use super::{Check, Ctx, Verdict, counter_delta, unavailable};

impl Ctx<'_> {
    pub(super) fn receive_buffers(&self) -> Check {
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
}
