//! Recordings made in code for the tests of `netlat report` (the page in a
//! real browser, the bad-input lines): a deterministic run of
//! net_rx_action with a spike, as `netlat record` would write it. Not
//! used by netlat itself.

use crate::model::{
    histogram::Histogram,
    recording::{Accounting, FORMAT, RecWindow, Recording, RecordingFile, WindowSamples},
    report::{Conditions, HistogramReport, SCHEMA_VERSION, Summary},
    slow_call::SlowCall,
};

/// 2026-12-03 03:12:00 UTC.
pub const START_UNIX_NS: u64 = 1_796_267_520_000_000_000;
const SECOND_NS: u64 = 1_000_000_000;
pub const THRESHOLD_NS: u64 = 2_000_000;
/// The spike's stack, as a `flamegraph --during net_rx_action` folds it.
pub const SLOW_STACK: &str = "net_rx_action;__napi_poll;process_backlog;__netif_receive_skb;ip_rcv;tcp_v4_rcv;tcp_rcv_established;tcp_data_queue;tcp_prune_queue;tcp_collapse";
pub const FAST_STACK: &str =
    "net_rx_action;__napi_poll;process_backlog;__netif_receive_skb;ip_rcv;tcp_v4_rcv";

/// A small deterministic generator (an LCG), so fixtures need no crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// The calls of window `i`: ~1-3 us calls, more in busy seconds, and
/// every `spike_every` windows (from `spike_at`) a few of 2-12 ms.
fn window_calls(rng: &mut Lcg, i: usize, spiky: bool) -> Vec<u64> {
    let busy = 20 + rng.next() % 60 + if i.is_multiple_of(7) { 40 } else { 0 };
    let mut v: Vec<u64> = (0..busy).map(|_| 800 + rng.next() % 2_400).collect();
    if spiky {
        v.extend((0..3).map(|_| THRESHOLD_NS + rng.next() % 10_000_000));
    }
    v
}

fn histogram_of(values: &[u64]) -> Histogram {
    let mut h = Histogram::default();
    for &v in values {
        let one = Histogram {
            count: 1,
            sum_ns: v,
            min_ns: v,
            max_ns: v,
            buckets: {
                let mut b = vec![0; h.buckets.len()];
                b[netlat_common::buckets::index(v)] = 1;
                b
            },
            ..Histogram::default()
        };
        h.merge(&one);
    }
    h
}

fn slow_call(start_unix_ns: u64, duration_ns: u64, cpu: u32) -> SlowCall {
    SlowCall {
        start_unix_ns,
        duration_ns,
        cpu,
        exit_cpu: None,
        context: "softirq".into(),
        softirq: Some("NET_RX".into()),
        interrupted_idle: false,
        pid: 4242,
        tid: 4242,
        comm: "iperf3".into(),
        socket: None,
        stack: None,
        net_rx: None,
    }
}

/// A recording of `windows` windows of 1 s; windows `spikes` hold slow
/// calls (with samples inside them on SLOW_STACK), the others samples of
/// fast calls on FAST_STACK. `seed` varies the counts.
pub fn recording(windows: usize, spikes: &[usize], seed: u64) -> (HistogramReport, Recording) {
    let mut rng = Lcg(seed);
    let mut recs = Vec::with_capacity(windows);
    let mut calls = Vec::new();
    let mut samples = Vec::new();
    for i in 0..windows {
        let start = START_UNIX_NS + i as u64 * SECOND_NS;
        let spiky = spikes.contains(&i);
        let values = window_calls(&mut rng, i, spiky);
        for (k, &d) in values.iter().filter(|&&d| d >= THRESHOLD_NS).enumerate() {
            // Ends inside the window: started early enough.
            let at = start + 100_000_000 * (k as u64 + 1);
            calls.push(slow_call(at, d, (k % 2) as u32));
        }
        if spiky {
            samples.push(WindowSamples {
                window: i,
                stack: 0,
                slow: 5 + rng.next() % 20,
                fast: 0,
            });
        } else if i.is_multiple_of(10) {
            samples.push(WindowSamples {
                window: i,
                stack: 1,
                slow: 0,
                fast: 1 + rng.next() % 3,
            });
        }
        recs.push(RecWindow::from_histogram(start, &histogram_of(&values)));
    }
    let recording = Recording {
        format: FORMAT,
        netlat_version: crate::VERSION.to_owned(),
        start_unix_ns: START_UNIX_NS,
        end_unix_ns: START_UNIX_NS + windows as u64 * SECOND_NS,
        interval_ns: SECOND_NS,
        threshold_ns: Some(THRESHOLD_NS),
        frequency_hz: 99,
        windows: recs,
        accounting: Accounting {
            over_threshold: calls.len() as u64,
            recorded: calls.len() as u64,
            ..Accounting::default()
        },
        slow_calls: calls,
        stacks: vec![SLOW_STACK.to_owned(), FAST_STACK.to_owned()],
        samples,
    };
    let total = recording.total();
    let report = HistogramReport {
        schema: SCHEMA_VERSION,
        function: "net_rx_action".into(),
        backend: "raw_tp".into(),
        backend_detail: "raw_tp irq:softirq_entry/exit (fixture)".into(),
        host: "fixture-host".into(),
        kernel: "6.1.0-fixture".into(),
        cpus: 2,
        start: "2026-12-03T03:12:00Z".into(),
        window_ns: windows as u64 * SECOND_NS,
        cpu: None,
        summary: Summary::from(&total),
        unfinished_calls: Some(0),
        per_cpu: None,
        conditions: Some(Conditions {
            sysctls_start: [(
                "net.ipv4.tcp_rmem".to_owned(),
                Some("4096 131072 6291456".to_owned()),
            )]
            .into_iter()
            .collect(),
            sysctls_end: Default::default(),
            netstat_delta: [("TCPRcvCollapsed".to_owned(), 12)].into_iter().collect(),
            softnet_delta: Vec::new(),
        }),
        by: None,
        windows: None,
        missed: None,
        experiment: None,
    };
    (report, recording)
}

/// The file `netlat record` would write for this run.
pub fn file_text(report: &HistogramReport, recording: &Recording) -> String {
    serde_json::to_string(&RecordingFile {
        result: report,
        recording,
    })
    .expect("a recording serializes")
}

/// The fixtures the report's tests use, by name.
pub fn named(name: &str) -> String {
    let (r, rec) = match name {
        "empty" => recording(0, &[], 1),
        "one-window" => recording(1, &[0], 2),
        "day" => recording(86_400, &[3_600, 50_000, 50_001], 3),
        "before" => recording(120, &[30, 31, 90], 4),
        "after" => recording(100, &[], 5),
        _ => panic!("no fixture named {name}"),
    };
    file_text(&r, &rec)
}
