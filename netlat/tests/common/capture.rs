//! Flight-recorder capture documents for tests, built in code.

use std::collections::BTreeMap;

use netlat::{
    flamegraph::culprit,
    model::{report::Conditions, slow_call::SlowCall},
    recorder::{
        document::{Accounting, Capture, FORMAT, Histograms, Stacks, Trigger, Window},
        store,
    },
};

/// 2026-12-03T03:12:00.123456789Z
pub const T0: u64 = 1_796_267_520_123_456_789;

pub fn call(start_unix_ns: u64, duration_ns: u64) -> SlowCall {
    SlowCall {
        start_unix_ns,
        duration_ns,
        cpu: 0,
        exit_cpu: None,
        context: "softirq".into(),
        softirq: Some("NET_RX".into()),
        interrupted_idle: false,
        pid: 42,
        tid: 42,
        comm: "iperf3".into(),
        socket: None,
        stack: None,
        net_rx: None,
    }
}

/// A net_rx_action capture with one slow call per duration, 50 ms apart,
/// and a tcp_collapse culprit.
pub fn capture(start_unix_ns: u64, durations_ms: &[u64]) -> Capture {
    let function = "net_rx_action";
    let calls: Vec<SlowCall> = durations_ms
        .iter()
        .enumerate()
        .map(|(i, ms)| call(start_unix_ns + i as u64 * 50_000_000, ms * 1_000_000))
        .collect();
    let slow: BTreeMap<String, u64> = [
        (
            "net_rx_action;tcp_v4_rcv;tcp_prune_queue;tcp_collapse".to_owned(),
            30,
        ),
        ("net_rx_action;tcp_v4_rcv".to_owned(), 3),
    ]
    .into();
    let fast: BTreeMap<String, u64> = [("net_rx_action;tcp_v4_rcv".to_owned(), 70)].into();
    Capture {
        netlat_capture: FORMAT,
        id: store::make_id(function, start_unix_ns),
        function: function.to_owned(),
        threshold_ns: 5_000_000,
        backend: "raw_tp".to_owned(),
        host: "fixture".to_owned(),
        kernel: "6.18.0".to_owned(),
        netlat_version: "0.1.0".to_owned(),
        trigger: Trigger {
            call: calls[0].clone(),
            missed_before: 0,
        },
        window: Window {
            start_unix_ns,
            end_unix_ns: start_unix_ns + 1_000_000_000,
        },
        accounting: Accounting {
            kernel_over_threshold: calls.len() as u64,
            recorded: calls.len() as u64,
            ..Accounting::default()
        },
        ranking: culprit::rank(&slow, Some(&fast), function),
        stacks: Stacks {
            frequency_hz: 999,
            slow,
            fast,
            lost: 0,
            slow_calls: 0,
            fast_calls: 0,
            entry_lost: 0,
        },
        calls,
        histograms: Histograms::default(),
        conditions: Conditions {
            sysctls_start: BTreeMap::new(),
            sysctls_end: BTreeMap::new(),
            netstat_delta: BTreeMap::new(),
            softnet_delta: Vec::new(),
        },
    }
}
