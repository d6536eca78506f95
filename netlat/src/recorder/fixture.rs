//! Capture documents for tests, built in code: no kernel needed.

use std::collections::BTreeMap;

use super::{
    document::{Accounting, Capture, FORMAT, Histograms, Second, Stacks, Trigger, Window},
    store,
};
use crate::{
    flamegraph::culprit,
    model::{report::Conditions, report::Summary, slow_call::SlowCall},
};

pub fn call(start_unix_ns: u64, duration_ns: u64) -> SlowCall {
    SlowCall {
        start_unix_ns,
        duration_ns,
        cpu: 1,
        exit_cpu: None,
        context: "softirq".into(),
        softirq: Some("NET_RX".into()),
        interrupted_idle: true,
        pid: 0,
        tid: 0,
        comm: "swapper/1".into(),
        socket: None,
        stack: None,
        net_rx: None,
    }
}

fn second(unix_s: f64, count: u64) -> Second {
    Second {
        unix_s,
        summary: Summary {
            count,
            sum_ns: count * 40_000,
            min_ns: Some(5_000),
            max_ns: Some(12_000_000),
            mean_ns: Some(40_000.0),
            percentiles_ns: None,
            unmatched_exits: 0,
            dropped_entries: 0,
            mismatched_exits: 0,
            buckets: Vec::new(),
        },
    }
}

/// A net_rx_action capture at `start_unix_ns` with `calls` slow calls of
/// 6, 7, ... ms and a tcp_collapse culprit.
pub fn capture(start_unix_ns: u64, calls: u64) -> Capture {
    let function = "net_rx_action";
    let slow_calls: Vec<SlowCall> = (0..calls)
        .map(|i| call(start_unix_ns + i * 100_000_000, (6 + i) * 1_000_000))
        .collect();
    let mut slow = BTreeMap::new();
    slow.insert(
        "__do_softirq;net_rx_action;tcp_v4_rcv;tcp_prune_queue;tcp_collapse".to_owned(),
        45,
    );
    slow.insert("__do_softirq;net_rx_action;tcp_v4_rcv".to_owned(), 5);
    let mut fast = BTreeMap::new();
    fast.insert("__do_softirq;net_rx_action;tcp_v4_rcv".to_owned(), 90);
    let ranking = culprit::rank(&slow, Some(&fast), function);
    let start_s = start_unix_ns as f64 / 1e9;
    Capture {
        netlat_capture: FORMAT,
        id: store::make_id(function, start_unix_ns),
        function: function.to_owned(),
        threshold_ns: 5_000_000,
        backend: "raw_tp".to_owned(),
        host: "testhost".to_owned(),
        kernel: "6.18.0".to_owned(),
        netlat_version: "0.1.0".to_owned(),
        trigger: Trigger {
            call: slow_calls
                .first()
                .cloned()
                .unwrap_or_else(|| call(start_unix_ns, 6_000_000)),
            missed_before: 2,
        },
        window: Window {
            start_unix_ns,
            end_unix_ns: start_unix_ns + 2_000_000_000,
        },
        accounting: Accounting {
            kernel_over_threshold: calls + 1,
            recorded: calls,
            after_window: 1,
            ..Accounting::default()
        },
        calls: slow_calls,
        stacks: Stacks {
            frequency_hz: 999,
            slow,
            fast,
            lost: 0,
            slow_calls: 0,
            fast_calls: 0,
            entry_lost: 0,
        },
        ranking,
        histograms: Histograms {
            before: vec![second(start_s - 1.0, 900)],
            window: vec![second(start_s + 1.0, 1000), second(start_s + 2.0, 1003)],
        },
        conditions: Conditions {
            sysctls_start: BTreeMap::new(),
            sysctls_end: BTreeMap::new(),
            netstat_delta: BTreeMap::new(),
            softnet_delta: Vec::new(),
        },
    }
}

/// The root element's name of `svg` parsed as XML (inferno's SVG carries
/// the SVG 1.1 DOCTYPE).
pub fn svg_root(svg: &str) -> String {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(svg, options)
        .unwrap_or_else(|e| panic!("SVG is not XML: {e}"));
    doc.root_element().tag_name().name().to_owned()
}
