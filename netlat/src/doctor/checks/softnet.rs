//! The softnet backlog: packets dropped or budgets squeezed in the NET_RX
//! softirq, per CPU (/proc/net/softnet_stat).

use super::{Check, Ctx, SQUEEZE_WARN_PER_SEC, Verdict, rate, unavailable};
use crate::system::procfs::softnet;

impl Ctx<'_> {
    pub(super) fn softnet(&self) -> Check {
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
        let wait = self.softnet_wait();
        evidence.extend(wait.evidence);
        let mut suggestions = wait.suggestions;
        let mut words = wait.words;
        let mut verdict = wait.verdict.unwrap_or(Verdict::Ok);
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
            words.push(match wait.squeezed {
                // Measured: say which limit, so "many packets" is not
                // mistaken for "slow packets".
                Some((packets, time)) if packets >= time => format!(
                    "packets were many: NET_RX ran out of its packet budget {squeeze_rate:.1} times/s ({packets} calls hit netdev_budget, {time} its time limit)"
                ),
                Some((packets, time)) => format!(
                    "NET_RX ran out of its time limit {squeeze_rate:.1} times/s ({time} calls hit netdev_budget_usecs, {packets} the packet budget): calls are slow, not only many"
                ),
                None => format!(
                    "packet processing ran out of budget {squeeze_rate:.1} times/s (time_squeeze)"
                ),
            });
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
}
