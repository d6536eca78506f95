//! Connection churn: sockets by state, connections opened, and TIME_WAIT
//! piling up on one port, the sign of connections that are not reused.

use std::collections::BTreeMap;

use super::{
    Check, Ctx, Evidence, TIME_WAIT_WARN, Verdict, count, counter_delta, plural_s, rate,
    unavailable,
};

impl Ctx<'_> {
    pub(super) fn connections(&self) -> Check {
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
}
