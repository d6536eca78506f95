//! Interrupt spread: whether one CPU takes nearly all of a network
//! device's interrupts (/proc/interrupts).

use super::{
    Check, Ctx, Evidence, IRQ_MIN_COUNT, IRQ_ONE_CPU_SHARE, Value, Verdict, count, rate,
    unavailable,
};

impl Ctx<'_> {
    pub(super) fn irq_spread(&self) -> Check {
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
}
