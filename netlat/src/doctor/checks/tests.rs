//! The checks on fixture samples: every verdict with the numbers behind it.

use std::collections::BTreeMap;

use super::*;
use crate::system::procfs::{
    interrupts, netdev::Interface, netstat, softnet::SoftnetRow, tcp::TcpSummary,
};

fn quiet() -> Sample {
    Sample {
        netstat: Ok(netstat::parse(
            "TcpExt: ListenOverflows ListenDrops TCPBacklogDrop PruneCalled RcvPruned OfoPruned TCPRcvCollapsed TCPTimeouts TCPSynRetrans TCPLostRetransmit\nTcpExt: 0 0 0 0 0 0 0 0 0 0\n",
        )
        .unwrap()),
        snmp: Ok(netstat::parse(
            "Tcp: ActiveOpens PassiveOpens OutSegs RetransSegs\nTcp: 0 0 0 0\n",
        )
        .unwrap()),
        softnet: Ok(vec![SoftnetRow::default()]),
        interrupts: Ok(interrupts::parse("CPU0 CPU1\n").unwrap()),
        interfaces: Ok(Vec::new()),
        tcp: Ok(TcpSummary::default()),
        sysctls: BTreeMap::new(),
        net_rx: None,
    }
}

fn with_counters(text_netstat: &str, text_snmp: &str) -> Sample {
    Sample {
        netstat: Ok(netstat::parse(text_netstat).unwrap()),
        snmp: Ok(netstat::parse(text_snmp).unwrap()),
        ..quiet()
    }
}

#[test]
fn where_tcp_collapse_cannot_be_timed_the_advice_says_what_it_needs() {
    let busy = with_counters(
        "TcpExt: ListenOverflows ListenDrops TCPBacklogDrop PruneCalled RcvPruned OfoPruned TCPRcvCollapsed TCPTimeouts TCPSynRetrans TCPLostRetransmit\nTcpExt: 0 0 0 30 0 0 4000 0 0 0\n",
        "Tcp: ActiveOpens PassiveOpens OutSegs RetransSegs\nTcp: 0 0 0 0\n",
    );
    let mut r = evaluate(&quiet(), &busy, Duration::from_secs(10));
    let before = r.check("receive_buffers").unwrap().suggestions.clone();
    assert!(
        before
            .iter()
            .any(|s| s.contains("netlat histogram tcp_collapse")),
        "{before:?}"
    );
    without_tracing(&mut r, "tcp_collapse", "no kprobes; fentry refused");
    let after = &r.check("receive_buffers").unwrap().suggestions;
    assert!(
        !after
            .iter()
            .any(|s| s.contains("netlat histogram tcp_collapse")
                || s.contains("netlat experiment tcp_collapse")),
        "{after:?}"
    );
    assert!(
        after[0].starts_with("netlat cannot time tcp_collapse on this kernel (no kprobes; fentry refused): that needs a kernel with kprobes (CONFIG_KPROBES=y) or fentry"),
        "{after:?}"
    );
    assert!(
        after[1].contains(
            "try: by hand, since netlat cannot time tcp_collapse here: sysctl -w net.ipv4.tcp_rmem=\"4096 1048576 2097152\""
        ),
        "{after:?}"
    );
}

fn judge(before: &Sample, after: &Sample, id: &str) -> Check {
    evaluate(before, after, Duration::from_secs(10))
        .checks
        .into_iter()
        .find(|c| c.id == id)
        .unwrap()
}

#[test]
fn a_quiet_host_is_all_ok() {
    let r = evaluate(&quiet(), &quiet(), Duration::from_secs(5));
    for c in &r.checks {
        assert_eq!(c.verdict, Verdict::Ok, "{c:?}");
        assert!(c.suggestions.is_empty(), "{c:?}");
    }
}

#[test]
fn a_few_squeezes_are_fine_many_are_a_warning() {
    let after = |squeezes| Sample {
        softnet: Ok(vec![SoftnetRow {
            time_squeeze: squeezes,
            ..SoftnetRow::default()
        }]),
        ..quiet()
    };
    // 10 s window: 9 squeezes is 0.9/s.
    assert_eq!(judge(&quiet(), &after(9), "softnet").verdict, Verdict::Ok);
    let c = judge(&quiet(), &after(10), "softnet");
    assert_eq!(c.verdict, Verdict::Warn);
    // No sysctl readable: the checklist's value, without "(now ...)".
    assert_eq!(
        c.suggestions,
        ["give softirq processing more room: sysctl -w net.core.netdev_budget=600"]
    );
}

#[test]
fn retransmit_share_needs_enough_segments() {
    let before = quiet();
    let few = with_counters(
        "TcpExt: TCPTimeouts\nTcpExt: 0\n",
        "Tcp: OutSegs RetransSegs\nTcp: 100 5\n",
    );
    assert_eq!(judge(&before, &few, "retransmits").verdict, Verdict::Warn);
    let many = with_counters(
        "TcpExt: TCPTimeouts\nTcpExt: 0\n",
        "Tcp: OutSegs RetransSegs\nTcp: 1000 10\n",
    );
    assert_eq!(
        judge(&before, &many, "retransmits").verdict,
        Verdict::Problem
    );
}

#[test]
fn counters_missing_on_this_kernel() {
    let old = with_counters(
        "TcpExt: SyncookiesSent\nTcpExt: 0\n",
        "Tcp: InSegs\nTcp: 1\n",
    );
    let c = judge(&old, &old, "listen_queues");
    assert_eq!(c.verdict, Verdict::Unavailable);
    assert!(c.summary.contains("none of the listen-queue counters"));
    let c = judge(&old, &old, "retransmits");
    assert_eq!(c.verdict, Verdict::Ok);
    assert!(
        c.evidence
            .iter()
            .any(|e| e.name == "RetransSegs" && matches!(e.value, Value::Absent { .. }))
    );
}

fn nic(name: &str) -> Interface {
    Interface {
        name: name.into(),
        bus_ids: vec!["virtio2".into()],
        stats: BTreeMap::new(),
    }
}

#[test]
fn irq_spread_needs_several_cpus_and_enough_interrupts() {
    let irqs = |text: &str| Sample {
        interrupts: Ok(interrupts::parse(text).unwrap()),
        interfaces: Ok(vec![nic("eth0")]),
        ..quiet()
    };
    let two = "CPU0 CPU1\n 38: 0 0 PCI-MSIX 1-edge virtio2-input.0\n";
    let busy = "CPU0 CPU1\n 38: 500 0 PCI-MSIX 1-edge virtio2-input.0\n";
    let few = "CPU0 CPU1\n 38: 50 0 PCI-MSIX 1-edge virtio2-input.0\n";
    let c = judge(&irqs(two), &irqs(busy), "irq_spread");
    assert_eq!(c.verdict, Verdict::Warn);
    assert_eq!(c.summary, "100% of eth0's interrupts land on CPU0");
    assert!(c.suggestions[0].contains("eth0's IRQs (38)"));
    assert_eq!(
        judge(&irqs(two), &irqs(few), "irq_spread").verdict,
        Verdict::Ok
    );
    let one = "CPU0\n 38: 0 PCI-MSIX 1-edge virtio2-input.0\n";
    let one_busy = "CPU0\n 38: 5000 PCI-MSIX 1-edge virtio2-input.0\n";
    let c = judge(&irqs(one), &irqs(one_busy), "irq_spread");
    assert_eq!(c.verdict, Verdict::Ok);
    assert_eq!(c.summary, "one CPU online: nothing to spread");
}

#[test]
fn time_wait_towards_one_remote_port_means_this_host_is_the_client() {
    let mut tcp = TcpSummary::default();
    tcp.by_state.insert("TIME_WAIT".into(), 1500);
    tcp.time_wait_by_remote_port.insert(8080, 1500);
    tcp.time_wait_by_local_port.insert(40000, 1);
    let after = Sample {
        tcp: Ok(tcp),
        ..quiet()
    };
    let c = judge(&quiet(), &after, "connections");
    assert_eq!(c.verdict, Verdict::Warn);
    assert!(c.summary.contains("towards port 8080"), "{}", c.summary);
    assert!(
        !c.evidence
            .iter()
            .any(|e| e.name.contains("local port 40000")),
        "{:?}",
        c.evidence
    );
}

#[test]
fn interface_drops_warn_errors_are_problems() {
    let iface = |dropped, errors| Sample {
        interfaces: Ok(vec![Interface {
            stats: [("rx_dropped".into(), dropped), ("tx_errors".into(), errors)].into(),
            ..nic("eth0")
        }]),
        ..quiet()
    };
    assert_eq!(
        judge(&iface(0, 0), &iface(3, 0), "interfaces").verdict,
        Verdict::Warn
    );
    let c = judge(&iface(0, 0), &iface(3, 1), "interfaces");
    assert_eq!(c.verdict, Verdict::Problem);
    assert_eq!(c.summary, "eth0: tx_errors +1, rx_dropped +3");
    // A counter that went down (driver reset) is no growth.
    assert_eq!(
        judge(&iface(9, 9), &iface(3, 1), "interfaces").verdict,
        Verdict::Ok
    );
}

fn net_rx(cpus: Vec<crate::model::net_rx::NetRxTally>) -> Sample {
    Sample {
        net_rx: Some(Ok(cpus)),
        ..quiet()
    }
}

fn waits(n: u64, ns: u64) -> crate::model::histogram::Histogram {
    let mut h = crate::model::histogram::Histogram {
        count: n,
        sum_ns: n * ns,
        min_ns: ns,
        max_ns: ns,
        ..Default::default()
    };
    h.buckets[netlat_common::buckets::index(ns)] = n;
    h
}

#[test]
fn a_starved_ksoftirqd_is_told_from_many_packets() {
    use crate::model::net_rx::NetRxTally;
    let before = net_rx(vec![NetRxTally::default(), NetRxTally::default()]);
    let quick = NetRxTally {
        calls: 100,
        wait: waits(100, 2_000),
        ..NetRxTally::default()
    };
    let starved = NetRxTally {
        calls: 100,
        ksoftirqd_calls: 60,
        ksoftirqd_wait_ns: 60 * 5_000_000,
        wait: waits(100, 5_000_000),
        ..NetRxTally::default()
    };
    let c = judge(&before, &net_rx(vec![quick.clone(), starved]), "softnet");
    assert_eq!(c.verdict, Verdict::Warn);
    assert!(
        c.summary.contains("softirqs were delayed on CPU1"),
        "{}",
        c.summary
    );
    assert!(
        c.summary.contains("ksoftirqd/1 is starved"),
        "{}",
        c.summary
    );
    assert!(
        c.suggestions[0].contains("find what holds CPU1"),
        "{:?}",
        c.suggestions
    );
    assert!(c.evidence.iter().any(|e| e.name == "CPU1 NET_RX wait"
        && e.value
            == Value::Wait {
                p99_ns: 5_000_000,
                max_ns: 5_000_000,
                count: 100,
                total_ns: 500_000_000,
            }));

    // What a starved ksoftirqd looks like before Linux 6.5 (measured in a
    // Debian 5.10 guest): thousands of quick waits at interrupt exit and,
    // once a second, the wait for ksoftirqd/1 until real-time throttling
    // lets it run. The p99 stays low; the spike and who waited tell.
    let mut spiky = waits(4000, 20_000);
    spiky.merge(&waits(3, 950_000_000));
    let throttled = NetRxTally {
        calls: 4003,
        ksoftirqd_calls: 80,
        ksoftirqd_wait_ns: 3 * 950_000_000,
        wait: spiky.clone(),
        ..NetRxTally::default()
    };
    let c = judge(&before, &net_rx(vec![quick.clone(), throttled]), "softnet");
    assert_eq!(c.verdict, Verdict::Warn);
    assert!(
        c.summary.contains("softirqs were delayed on CPU1")
            && c.summary.contains("max 950")
            && c.summary.contains("ksoftirqd/1 is starved"),
        "{}",
        c.summary
    );
    // The same spike with ksoftirqd not involved: bottom halves held off.
    let held = NetRxTally {
        calls: 4003,
        wait: spiky,
        ..NetRxTally::default()
    };
    let c = judge(&before, &net_rx(vec![quick.clone(), held]), "softnet");
    assert!(
        c.summary.contains("softirqs were delayed on CPU1")
            && c.summary.contains("held bottom halves or interrupts off"),
        "{}",
        c.summary
    );
    // A calm CPU under a flood in the same guest: p99 41 us, max 11 ms.
    let mut calm_waits = waits(45_000, 20_000);
    calm_waits.merge(&waits(1, 11_000_000));
    let calm = NetRxTally {
        calls: 45_001,
        ksoftirqd_calls: 500,
        ksoftirqd_wait_ns: 11_000_000,
        wait: calm_waits,
        ..NetRxTally::default()
    };
    let c = judge(&before, &net_rx(vec![quick.clone(), calm]), "softnet");
    assert!(!c.summary.contains("delayed"), "{}", c.summary);

    // Quick waits, but every call out of packets: load, not starvation.
    let mut after = net_rx(vec![
        NetRxTally {
            squeezed: 50,
            ..quick.clone()
        },
        quick,
    ]);
    after.softnet = Ok(vec![SoftnetRow {
        time_squeeze: 50,
        ..SoftnetRow::default()
    }]);
    let c = judge(&before, &after, "softnet");
    assert_eq!(c.verdict, Verdict::Warn);
    assert!(c.summary.starts_with("packets were many"), "{}", c.summary);
    assert!(!c.summary.contains("delayed"), "{}", c.summary);

    // Not root: the check says the wait was not measured, nothing else.
    let unmeasured = Sample {
        net_rx: Some(Err("measured only as root".into())),
        ..quiet()
    };
    let c = judge(&unmeasured, &unmeasured, "softnet");
    assert_eq!(c.verdict, Verdict::Ok);
    assert!(c.evidence.iter().any(|e| e.name == "NET_RX wait"
        && matches!(&e.value, Value::Absent { why } if why == "measured only as root")));
}
