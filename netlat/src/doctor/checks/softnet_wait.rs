//! The softnet check's measured half (as root): how long raised NET_RX
//! softirqs waited on each CPU, and which calls ran out of budget. A long
//! wait with ksoftirqd running the calls is the "SoftIRQ kernel threads ...
//! starved for resources" item of Linkerd's network-performance notes; calls
//! squeezed by packets are load that netdev_budget governs.

use super::{Ctx, Evidence, Value, Verdict, absent, rate};
use crate::{model::net_rx::NetRxTally, render::slow::duration};

/// p99 wait at which softirqs count as delayed: raised work normally runs
/// within microseconds, at the interrupt's exit.
pub const WAIT_WARN_NS: u64 = 1_000_000;
/// Waits on a CPU below which its p99 says little.
pub const WAIT_MIN_CALLS: u64 = 50;
/// One wait this long is a spike of its own, however few calls there were:
/// every packet behind it was that late (a ping spike of "The story of one
/// latency spike" is one such wait). A starved ksoftirqd shows mostly
/// this way: the calls it runs at last are few among the quick ones run at
/// interrupt exit, so the p99 hides them.
pub const WAIT_SPIKE_NS: u64 = 100_000_000;
/// Share of the time waited, before calls ksoftirqd ran, from which the
/// delay is ksoftirqd's own: it was runnable, and did not run.
pub const KSOFTIRQD_WAIT_SHARE: f64 = 0.5;

/// What the wait adds to the softnet check.
#[derive(Default)]
pub(super) struct WaitFindings {
    pub evidence: Vec<Evidence>,
    pub words: Vec<String>,
    pub suggestions: Vec<String>,
    pub verdict: Option<Verdict>,
    /// Calls squeezed by packets and by time, summed over CPUs.
    pub squeezed: Option<(u64, u64)>,
}

impl Ctx<'_> {
    pub(super) fn softnet_wait(&self) -> WaitFindings {
        let mut f = WaitFindings::default();
        let (before, after) = match (&self.before.net_rx, &self.after.net_rx) {
            (Some(Ok(b)), Some(Ok(a))) => (b, a),
            (Some(Err(why)), _) | (_, Some(Err(why))) => {
                f.evidence.push(absent("NET_RX wait", why.clone()));
                return f;
            }
            _ => return f,
        };
        let empty = NetRxTally::default();
        let (mut by_budget, mut by_time) = (0, 0);
        for (cpu, now) in after.iter().enumerate() {
            let d = now.since(before.get(cpu).unwrap_or(&empty));
            by_budget += d.squeezed - d.squeezed_time;
            by_time += d.squeezed_time;
            if d.calls == 0 {
                continue;
            }
            let w = &d.wait;
            let p99 = w.quantile_ns(0.99).unwrap_or(0);
            let max_ns = if w.count > 0 { w.max_ns } else { 0 };
            f.evidence.push(Evidence {
                name: format!("CPU{cpu} NET_RX wait"),
                value: Value::Wait {
                    p99_ns: p99,
                    max_ns,
                    count: w.count,
                    total_ns: w.sum_ns,
                },
            });
            let share = d.ksoftirqd_calls as f64 / d.calls as f64;
            f.evidence.push(Evidence {
                name: format!("CPU{cpu} NET_RX by ksoftirqd"),
                value: Value::Percent {
                    value: share * 100.0,
                },
            });
            let for_ksoftirqd = d.ksoftirqd_wait_share();
            f.evidence.push(Evidence {
                name: format!("CPU{cpu} NET_RX wait before ksoftirqd's calls"),
                value: Value::Percent {
                    value: for_ksoftirqd * 100.0,
                },
            });
            let delayed =
                (w.count >= WAIT_MIN_CALLS && p99 >= WAIT_WARN_NS) || max_ns >= WAIT_SPIKE_NS;
            if !delayed {
                continue;
            }
            f.verdict = Some(Verdict::Warn);
            let waited = format!(
                "NET_RX waited p99 {} (max {}; {} in all over {:.0} s) after being raised",
                duration(p99),
                duration(max_ns),
                duration(w.sum_ns),
                self.secs
            );
            if for_ksoftirqd >= KSOFTIRQD_WAIT_SHARE {
                f.words.push(format!(
                    "softirqs were delayed on CPU{cpu}: {waited}, {:.0}% of it before calls ksoftirqd/{cpu} ran ({:.0}% of the calls): ksoftirqd/{cpu} is starved of CPU time",
                    for_ksoftirqd * 100.0,
                    share * 100.0
                ));
                f.suggestions.push(format!(
                    "find what holds CPU{cpu}: ps -eLo pid,tid,cls,rtprio,pcpu,psr,comm --sort=-pcpu | head; a real-time (FIFO/RR) task there outranks ksoftirqd/{cpu}, which runs as an ordinary task"
                ));
                f.suggestions.push(format!(
                    "move that task off CPU{cpu} (taskset, cpusets) or steer receive work to other CPUs (RPS: /sys/class/net/DEV/queues/rx-N/rps_cpus; RSS: the NIC's IRQ affinity)"
                ));
            } else {
                f.words.push(format!(
                    "softirqs were delayed on CPU{cpu}: {waited}, little of it for ksoftirqd: something held bottom halves or interrupts off there"
                ));
                f.suggestions.push(format!(
                    "netlat flamegraph --duration 10 shows what CPU{cpu} ran instead"
                ));
            }
        }
        f.evidence
            .push(rate("NET_RX squeezed by packets", by_budget, self.secs));
        f.evidence
            .push(rate("NET_RX squeezed by time", by_time, self.secs));
        f.squeezed = Some((by_budget, by_time));
        f
    }
}
