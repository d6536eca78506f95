//! NET_RX seen whole as plain data: for each CPU and all together, how long
//! raised softirqs waited, how long the calls ran, how many packets and
//! polls each call handled, how many ran out of budget and how many ran in
//! ksoftirqd. What `netlat softirq` prints and `--json` writes.

use serde::{Deserialize, Serialize};

use netlat_common::net_rx::{DeviceName, NetRxStats};

use crate::model::{histogram::Histogram, report::Summary};

/// The `netlat softirq` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoftirqReport {
    pub schema: u32,
    /// Always "NET_RX" for now.
    pub softirq: String,
    pub function: String,
    pub backend: String,
    pub backend_detail: String,
    pub host: String,
    pub kernel: String,
    pub cpus: usize,
    pub start: String,
    pub window_ns: u64,
    pub budget: Budget,
    /// All CPUs together.
    #[serde(flatten)]
    pub all: NetRx,
    /// `--per-cpu`: each online CPU (and any other that ran NET_RX).
    pub per_cpu: Option<Vec<CpuNetRx>>,
    /// Packets polled per device over the run, most first.
    pub devices: Vec<DevicePackets>,
}

/// The limits a call is squeezed by (net.core.netdev_budget{,_usecs}).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub packets: u32,
    pub jiffies: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuNetRx {
    pub cpu: u32,
    #[serde(flatten)]
    pub net_rx: NetRx,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DevicePackets {
    /// As the napi_poll tracepoint names it; "(no_device)" is the per-CPU
    /// backlog (RPS, loopback, netif_rx).
    pub device: String,
    pub packets: u64,
}

/// One CPU's (or all CPUs') NET_RX figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetRx {
    /// Calls whose softirq_entry and exit were both seen.
    pub calls: u64,
    pub ksoftirqd_calls: u64,
    /// The waits summed, and how much of that was before calls ksoftirqd
    /// ran.
    pub wait_total_ns: u64,
    pub ksoftirqd_wait_ns: u64,
    /// Calls that ended with work left (softnet's time_squeeze), and of
    /// those, by time (netdev_budget_usecs) rather than packets.
    pub squeezed: u64,
    pub squeezed_by_time: u64,
    pub packets: u64,
    pub polls: u64,
    /// Raises while a call ran: served by a later call.
    pub raised_while_running: u64,
    /// Calls whose raise was not seen (before attaching, or taken by the
    /// call before): in every count, not in the wait histogram.
    pub unraised_calls: u64,
    /// napi_poll outside NET_RX (busy polling, threaded NAPI).
    pub polls_outside: u64,
    pub packets_outside: u64,
    /// First unserved raise -> softirq entry.
    pub wait: Summary,
    /// softirq entry -> exit (`histogram net_rx_action`).
    pub runtime: Summary,
    pub packets_per_call: Distribution,
    pub polls_per_call: Distribution,
}

/// A distribution of counts (packets or polls per call), log2 buckets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub calls: u64,
    pub total: u64,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub mean: Option<f64>,
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    /// `(low, high, calls)`, bounds inclusive.
    pub buckets: Vec<(u64, u64, u64)>,
}

impl From<&Histogram> for Distribution {
    fn from(h: &Histogram) -> Self {
        Distribution {
            calls: h.count,
            total: h.sum_ns,
            min: (h.count > 0).then_some(h.min_ns),
            max: (h.count > 0).then_some(h.max_ns),
            mean: h.mean_ns(),
            p50: h.quantile_ns(0.5),
            p99: h.quantile_ns(0.99),
            buckets: h
                .nonempty_buckets()
                .map(|b| (b.low_ns, b.high_ns, b.count))
                .collect(),
        }
    }
}

/// What one CPU's (or several CPUs' summed) NET_RX counts add up to, before
/// they become a [`NetRx`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetRxTally {
    pub calls: u64,
    pub ksoftirqd_calls: u64,
    pub ksoftirqd_wait_ns: u64,
    pub squeezed: u64,
    pub squeezed_time: u64,
    pub packets: u64,
    pub polls: u64,
    pub raised_while_running: u64,
    pub unraised_calls: u64,
    pub outside_polls: u64,
    pub outside_packets: u64,
    pub wait: Histogram,
    pub call_packets: Histogram,
    pub call_polls: Histogram,
}

impl From<&NetRxStats> for NetRxTally {
    fn from(s: &NetRxStats) -> Self {
        NetRxTally {
            calls: s.calls,
            ksoftirqd_calls: s.ksoftirqd_calls,
            ksoftirqd_wait_ns: s.ksoftirqd_wait_ns,
            squeezed: s.squeezed,
            squeezed_time: s.squeezed_time,
            packets: s.packets,
            polls: s.polls,
            raised_while_running: s.raised_while_running,
            unraised_calls: s.unraised_calls,
            outside_polls: s.outside_polls,
            outside_packets: s.outside_packets,
            wait: Histogram::from(&s.wait),
            call_packets: Histogram::from(&s.call_packets),
            call_polls: Histogram::from(&s.call_polls),
        }
    }
}

impl NetRxTally {
    pub fn add(&mut self, o: &NetRxTally) {
        self.calls += o.calls;
        self.ksoftirqd_calls += o.ksoftirqd_calls;
        self.ksoftirqd_wait_ns += o.ksoftirqd_wait_ns;
        self.squeezed += o.squeezed;
        self.squeezed_time += o.squeezed_time;
        self.packets += o.packets;
        self.polls += o.polls;
        self.raised_while_running += o.raised_while_running;
        self.unraised_calls += o.unraised_calls;
        self.outside_polls += o.outside_polls;
        self.outside_packets += o.outside_packets;
        self.wait.merge(&o.wait);
        self.call_packets.merge(&o.call_packets);
        self.call_polls.merge(&o.call_polls);
    }

    /// What these counts gained since `earlier`, a reading of the same
    /// CPU: the kernel's counters only grow.
    pub fn since(&self, earlier: &NetRxTally) -> NetRxTally {
        NetRxTally {
            calls: self.calls.saturating_sub(earlier.calls),
            ksoftirqd_calls: self.ksoftirqd_calls.saturating_sub(earlier.ksoftirqd_calls),
            ksoftirqd_wait_ns: self
                .ksoftirqd_wait_ns
                .saturating_sub(earlier.ksoftirqd_wait_ns),
            squeezed: self.squeezed.saturating_sub(earlier.squeezed),
            squeezed_time: self.squeezed_time.saturating_sub(earlier.squeezed_time),
            packets: self.packets.saturating_sub(earlier.packets),
            polls: self.polls.saturating_sub(earlier.polls),
            raised_while_running: self
                .raised_while_running
                .saturating_sub(earlier.raised_while_running),
            unraised_calls: self.unraised_calls.saturating_sub(earlier.unraised_calls),
            outside_polls: self.outside_polls.saturating_sub(earlier.outside_polls),
            outside_packets: self.outside_packets.saturating_sub(earlier.outside_packets),
            wait: gained(&self.wait, &earlier.wait),
            call_packets: gained(&self.call_packets, &earlier.call_packets),
            call_polls: gained(&self.call_polls, &earlier.call_polls),
        }
    }

    /// With the runtime histogram of the same CPUs.
    pub fn report(&self, runtime: &Histogram) -> NetRx {
        NetRx {
            calls: self.calls,
            ksoftirqd_calls: self.ksoftirqd_calls,
            wait_total_ns: self.wait.sum_ns,
            ksoftirqd_wait_ns: self.ksoftirqd_wait_ns,
            squeezed: self.squeezed,
            squeezed_by_time: self.squeezed_time,
            packets: self.packets,
            polls: self.polls,
            raised_while_running: self.raised_while_running,
            unraised_calls: self.unraised_calls,
            polls_outside: self.outside_polls,
            packets_outside: self.outside_packets,
            wait: Summary::from(&self.wait),
            runtime: Summary::from(runtime),
            packets_per_call: Distribution::from(&self.call_packets),
            polls_per_call: Distribution::from(&self.call_polls),
        }
    }
}

/// A histogram's growth. Extremes cannot be subtracted: after an earlier
/// non-empty reading they become the bounds of the outermost buckets that
/// grew (within one sub-bucket, ~19%, like every percentile).
fn gained(now: &Histogram, earlier: &Histogram) -> Histogram {
    if earlier.count == 0 {
        return now.clone();
    }
    let mut h = Histogram {
        count: now.count.saturating_sub(earlier.count),
        sum_ns: now.sum_ns.saturating_sub(earlier.sum_ns),
        ..Histogram::default()
    };
    for (i, (a, b)) in now.buckets.iter().zip(&earlier.buckets).enumerate() {
        h.buckets[i] = a.saturating_sub(*b);
    }
    let grew: Vec<usize> = (0..h.buckets.len()).filter(|&i| h.buckets[i] > 0).collect();
    if let (Some(&lo), Some(&hi)) = (grew.first(), grew.last()) {
        h.min_ns = netlat_common::buckets::lower_bound(lo).max(now.min_ns);
        h.max_ns = netlat_common::buckets::upper_bound(hi).min(now.max_ns);
    }
    h
}

impl NetRxTally {
    /// Share of the time waited that was before ksoftirqd's calls, 0..=1.
    pub fn ksoftirqd_wait_share(&self) -> f64 {
        if self.wait.sum_ns == 0 {
            0.0
        } else {
            self.ksoftirqd_wait_ns as f64 / self.wait.sum_ns as f64
        }
    }
}

impl NetRx {
    /// Share of calls ksoftirqd ran, 0..=1.
    pub fn ksoftirqd_share(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.ksoftirqd_calls as f64 / self.calls as f64
        }
    }
}

/// The name as the kernel's napi_poll tracepoint prints it; a name the
/// kernel's BTF did not let netlat read is "?".
pub fn device_name(d: &DeviceName) -> String {
    let len = d.name.iter().position(|&b| b == 0).unwrap_or(d.name.len());
    if len == 0 {
        return "?".to_owned();
    }
    String::from_utf8_lossy(&d.name[..len])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_add_up() {
        let a = NetRxTally {
            calls: 3,
            ksoftirqd_calls: 1,
            packets: 10,
            call_packets: Histogram::from_values(&[1, 3, 6]),
            ..NetRxTally::default()
        };
        let b = NetRxTally {
            calls: 1,
            squeezed: 1,
            packets: 300,
            call_packets: Histogram::from_values(&[300]),
            ..NetRxTally::default()
        };
        let mut all = a.clone();
        all.add(&b);
        let r = all.report(&Histogram::default());
        assert_eq!((r.calls, r.packets, r.squeezed), (4, 310, 1));
        assert_eq!(r.ksoftirqd_share(), 0.25);
        let d = &r.packets_per_call;
        assert_eq!(
            (d.calls, d.total, d.min, d.max),
            (4, 310, Some(1), Some(300))
        );
        assert_eq!(d.buckets.iter().map(|b| b.2).sum::<u64>(), 4);
        assert_eq!(r.runtime.count, 0);
    }

    #[test]
    fn growth_between_two_readings() {
        let earlier = NetRxTally {
            calls: 2,
            wait: Histogram::from_values(&[1_000, 2_000]),
            ..NetRxTally::default()
        };
        let mut now = earlier.clone();
        now.calls = 5;
        now.wait = Histogram::from_values(&[1_000, 2_000, 500, 40_000, 3_000]);
        let d = now.since(&earlier);
        assert_eq!(d.calls, 3);
        assert_eq!((d.wait.count, d.wait.sum_ns), (3, 43_500));
        assert_eq!(d.wait.buckets.iter().sum::<u64>(), 3);
        // The extremes are the buckets' bounds, clamped to the true ones.
        assert_eq!(d.wait.min_ns, 500);
        assert_eq!(d.wait.max_ns, 40_000);
        assert_eq!(now.since(&NetRxTally::default()), now);
    }
}
