//! Retransmits and timeouts: the share of sent segments sent again (Tcp
//! RetransSegs against OutSegs), and the TcpExt timeout counters.

use std::collections::BTreeMap;

use super::{
    Check, Ctx, Evidence, RETRANS_MIN_SEGMENTS, RETRANS_PROBLEM_RATIO, Value, Verdict, absent,
    counter_delta, unavailable,
};

impl Ctx<'_> {
    pub(super) fn retransmits(&self) -> Check {
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
}
