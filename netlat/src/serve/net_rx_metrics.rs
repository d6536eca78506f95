//! `serve --softirq`: NET_RX seen whole on /metrics. The wait of each
//! NET_RX softirq as a histogram (per CPU with `--per-cpu`), and per-CPU
//! counters of calls, ksoftirqd calls, squeezed calls and packets by device,
//! read from the kernel's per-CPU maps at scrape time like the latency
//! histograms. ebpf_exporter's softirq-latency example has the wait but no
//! CPU label (a request on its tracker asks for one), and no packets.

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter},
};

use crate::model::{histogram::Histogram, net_rx::NetRxTally};

/// What the NET_RX programs counted, at one scrape.
#[derive(Debug, Default)]
pub struct NetRxScrape {
    /// (CPU, its counts), online CPUs and any other that ran NET_RX.
    pub per_cpu: Vec<(u32, NetRxTally)>,
    /// (device, per-CPU packets by CPU id).
    pub devices: Vec<(String, Vec<u64>)>,
    /// One wait histogram per CPU instead of one in all.
    pub wait_per_cpu: bool,
}

pub fn encode(n: &NetRxScrape, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let mut wait = encoder.encode_descriptor(
        "netlat_softirq_wait_seconds",
        "Time from a softirq's first unserved raise to its start on that CPU (long: ksoftirqd starved, or softirqs held off).",
        None,
        MetricType::Histogram,
    )?;
    let series: Vec<(Option<u32>, Histogram)> = if n.wait_per_cpu {
        n.per_cpu
            .iter()
            .map(|(cpu, t)| (Some(*cpu), t.wait.clone()))
            .collect()
    } else {
        vec![(
            None,
            Histogram::merged(n.per_cpu.iter().map(|(_, t)| &t.wait)),
        )]
    };
    for (cpu, h) in &series {
        let buckets = super::le_buckets::buckets(h);
        let count = buckets.iter().map(|b| b.1).sum();
        let cpu = cpu.map(|c| c.to_string());
        let mut labels = vec![("softirq", "NET_RX")];
        if let Some(cpu) = &cpu {
            labels.push(("cpu", cpu.as_str()));
        }
        wait.encode_family(&labels.as_slice())?
            .encode_histogram::<NoLabelSet>(h.sum_ns as f64 / 1e9, count, &buckets, None)?;
    }

    type Field = fn(&NetRxTally) -> u64;
    let counters: [(&str, &str, Field); 3] = [
        (
            "netlat_net_rx_calls",
            "net_rx_action calls (NET_RX softirqs) seen whole, per CPU.",
            |t| t.calls,
        ),
        (
            "netlat_net_rx_ksoftirqd_calls",
            "Of those, calls a ksoftirqd thread ran (not on interrupt exit), per CPU.",
            |t| t.ksoftirqd_calls,
        ),
        (
            "netlat_net_rx_squeezed",
            "Calls that ended with work left, out of netdev_budget packets or netdev_budget_usecs (softnet's time_squeeze), per CPU.",
            |t| t.squeezed,
        ),
    ];
    for (name, help, field) in counters {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (cpu, t) in &n.per_cpu {
            let cpu = cpu.to_string();
            let labels = [("cpu", cpu.as_str())];
            ConstCounter::new(field(t)).encode(family.encode_family(&labels.as_slice())?)?;
        }
    }
    // What doctor calls a starved ksoftirqd, as a rate an alert can watch:
    // seconds per second that NET_RX, once raised, waited for ksoftirqd.
    let mut ksoftirqd_wait = encoder.encode_descriptor(
        "netlat_net_rx_ksoftirqd_wait_seconds",
        "Time NET_RX softirqs waited, after being raised, before calls a ksoftirqd thread ran, per CPU (close to the whole wait: ksoftirqd starved of CPU time).",
        None,
        MetricType::Counter,
    )?;
    for (cpu, t) in &n.per_cpu {
        let cpu = cpu.to_string();
        let labels = [("cpu", cpu.as_str())];
        ConstCounter::new(t.ksoftirqd_wait_ns as f64 / 1e9)
            .encode(ksoftirqd_wait.encode_family(&labels.as_slice())?)?;
    }
    let mut packets = encoder.encode_descriptor(
        "netlat_net_rx_packets",
        "Packets polled by net_rx_action, per CPU and device ((no_device): the per-CPU backlog of RPS, loopback and netif_rx).",
        None,
        MetricType::Counter,
    )?;
    for (device, per_cpu) in &n.devices {
        for (cpu, &count) in per_cpu.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let cpu = cpu.to_string();
            let labels = [("cpu", cpu.as_str()), ("device", device.as_str())];
            ConstCounter::new(count).encode(packets.encode_family(&labels.as_slice())?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::metrics::{Format, Scrape, render};

    fn tally(calls: u64, ksoftirqd: u64, squeezed: u64, waits: &[u64]) -> NetRxTally {
        let mut wait = Histogram::default();
        for &w in waits {
            let mut one = Histogram {
                count: 1,
                sum_ns: w,
                min_ns: w,
                max_ns: w,
                ..Histogram::default()
            };
            one.buckets[netlat_common::buckets::index(w)] = 1;
            wait.merge(&one);
        }
        NetRxTally {
            calls,
            ksoftirqd_calls: ksoftirqd,
            squeezed,
            ksoftirqd_wait_ns: waits.iter().take(ksoftirqd as usize).sum(),
            wait,
            ..NetRxTally::default()
        }
    }

    fn scrape(per_cpu: bool) -> Scrape {
        Scrape {
            functions: Vec::new(),
            tcp_rmem: None,
            doctor: None,
            net_rx: Some(NetRxScrape {
                per_cpu: vec![
                    (0, tally(3, 1, 0, &[500, 700, 40_000])),
                    (1, tally(1, 0, 1, &[2_000])),
                ],
                devices: vec![
                    ("(no_device)".into(), vec![5, 0]),
                    ("eth0".into(), vec![0, 7]),
                ],
                wait_per_cpu: per_cpu,
            }),
        }
    }

    #[test]
    fn wait_histogram_and_per_cpu_counters() {
        let page = render(scrape(false), Format::Text);
        assert!(
            page.contains("# TYPE netlat_softirq_wait_seconds histogram"),
            "{page}"
        );
        assert!(
            page.contains("netlat_softirq_wait_seconds_count{softirq=\"NET_RX\"} 4"),
            "{page}"
        );
        assert!(
            page.contains("netlat_net_rx_calls_total{cpu=\"0\"} 3"),
            "{page}"
        );
        assert!(
            page.contains("netlat_net_rx_ksoftirqd_calls_total{cpu=\"0\"} 1"),
            "{page}"
        );
        assert!(
            page.contains("netlat_net_rx_ksoftirqd_wait_seconds_total{cpu=\"0\"} 5e-7"),
            "{page}"
        );
        assert!(
            page.contains("netlat_net_rx_squeezed_total{cpu=\"1\"} 1"),
            "{page}"
        );
        assert!(
            page.contains("netlat_net_rx_packets_total{cpu=\"1\",device=\"eth0\"} 7"),
            "{page}"
        );
        assert!(!page.contains("device=\"eth0\",cpu=\"0\""), "{page}");
        let per_cpu = render(scrape(true), Format::OpenMetrics);
        assert!(
            per_cpu.contains("netlat_softirq_wait_seconds_count{softirq=\"NET_RX\",cpu=\"1\"} 1"),
            "{per_cpu}"
        );
    }
}
