//! Interface drops and errors, as the network devices count them
//! (/proc/net/dev).

use super::{Check, Ctx, Verdict, plural_s, rate, unavailable};

impl Ctx<'_> {
    pub(super) fn interfaces(&self) -> Check {
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
