//! Recordings made in code for the tests of `netlat report` (the page in a
//! real browser, the bad-input lines): deterministic runs of
//! net_rx_action, some with spikes, written as `netlat record` writes
//! them. Not used by netlat itself.

use std::{borrow::Cow, collections::BTreeMap};

use crate::model::{
    histogram::Histogram,
    recording::{Accounting, FORMAT, RecWindow, Recording, RecordingFile, WindowSamples},
    report::{Conditions, HistogramReport, SCHEMA_VERSION, Summary},
    slow_call::{SlowCall, Socket},
};

/// 2026-12-03 03:12:00 UTC.
pub const START_UNIX_NS: u64 = 1_796_267_520_000_000_000;
const SECOND: u64 = 1_000_000_000;
pub const THRESHOLD_NS: u64 = 2_000_000;
const HZ: u64 = 999;
pub const FAST_STACK: &str =
    "ret_from_fork;__do_softirq;net_rx_action;__napi_poll;tcp_v4_rcv;tcp_rcv_established";
pub const SLOW_STACK: &str = "ret_from_fork;__do_softirq;net_rx_action;__napi_poll;tcp_v4_rcv;tcp_rcv_established;tcp_data_queue;tcp_prune_queue;tcp_collapse";
pub const OTHER_STACK: &str =
    "ret_from_fork;__do_softirq;net_rx_action;__napi_poll;tcp_v4_rcv;tcp_ack";

/// splitmix64: the same numbers on every machine and run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (sum of uniforms), mean 0, deviation 1.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.unit()).sum::<f64>() - 6.0
    }
}

/// What a fixture run looks like.
pub struct Shape {
    pub windows: usize,
    /// Calls per window, about.
    pub calls: u64,
    pub median_ns: f64,
    /// Windows holding a tcp_collapse spike.
    pub spikes: Vec<usize>,
    /// Where the generator starts: each fixture its own numbers.
    pub stream: u64,
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
        pid: 22,
        tid: 22,
        comm: "ksoftirqd/1".into(),
        socket: Some(Socket {
            family: Cow::Borrowed("ipv4"),
            local: "10.0.0.1:5201".parse().expect("an address"),
            remote: "10.0.0.2:40000".parse().expect("an address"),
            rcvbuf: 6_291_456,
            rmem_alloc: 6_000_000,
        }),
        stack: None,
        net_rx: None,
    }
}

/// Windows of log-normal call durations (now and then one over the 2 ms
/// threshold), spikes of 5 ms to 1.8 s calls with samples on SLOW_STACK,
/// and fast calls' samples on the ordinary stacks in every window.
pub fn recording(shape: &Shape) -> (HistogramReport, Recording) {
    let mut rng = Rng(shape.stream);
    let mut windows = Vec::with_capacity(shape.windows);
    let mut calls = Vec::new();
    let mut samples = Vec::new();
    for w in 0..shape.windows {
        let t = w as u64 * SECOND;
        let n = shape.calls / 2 + rng.next() % shape.calls.max(1);
        let mut values: Vec<u64> = (0..n)
            .map(|_| (shape.median_ns * (0.7 * rng.normal()).exp()) as u64)
            .collect();
        if shape.spikes.contains(&w) {
            values.extend([5_000_000, 40_000_000, 1_800_000_000]);
        } else if rng.unit() < 0.002 {
            values.push(2_500_000 + rng.next() % 3_000_000);
        }
        let mut slow_samples = 0;
        for (i, &v) in values.iter().enumerate() {
            if v >= THRESHOLD_NS {
                // Ends inside its window, spread over it.
                let end = t + (i as u64 + 1) * SECOND / (values.len() as u64 + 1);
                let start = end.saturating_sub(v);
                calls.push(slow_call(START_UNIX_NS + start, v, (i % 4) as u32));
                slow_samples += (v * HZ / SECOND).max(1);
            }
        }
        let mut sample = |stack, slow, fast| {
            samples.push(WindowSamples {
                window: w,
                stack,
                slow,
                fast,
            })
        };
        if slow_samples > 0 {
            sample(1, slow_samples, 0);
        }
        sample(0, 0, 2 + rng.next() % 5);
        if w % 3 == 0 {
            sample(2, 0, 1 + rng.next() % 3);
        }
        windows.push(RecWindow::from_histogram(
            START_UNIX_NS + t,
            &Histogram::from_values(&values),
        ));
    }
    calls.sort_by_key(|c| c.start_unix_ns);
    let recording = Recording {
        format: FORMAT,
        netlat_version: crate::VERSION.to_owned(),
        start_unix_ns: START_UNIX_NS,
        end_unix_ns: START_UNIX_NS + shape.windows as u64 * SECOND,
        interval_ns: SECOND,
        threshold_ns: Some(THRESHOLD_NS),
        frequency_hz: HZ,
        windows,
        accounting: Accounting {
            over_threshold: calls.len() as u64,
            recorded: calls.len() as u64,
            ..Accounting::default()
        },
        slow_calls: calls,
        stacks: [FAST_STACK, SLOW_STACK, OTHER_STACK]
            .map(str::to_owned)
            .to_vec(),
        samples,
    };
    (result_of(&recording), recording)
}

/// The whole run's result, as `netlat record` writes it beside the run.
pub fn result_of(recording: &Recording) -> HistogramReport {
    let sysctls: BTreeMap<String, Option<String>> = [
        ("net.core.netdev_budget", "300"),
        ("net.ipv4.tcp_rmem", "4096 131072 6291456"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Some(v.to_owned())))
    .collect();
    HistogramReport {
        schema: SCHEMA_VERSION,
        function: "net_rx_action".into(),
        backend: "fentry".into(),
        backend_detail: "fentry/fexit on net_rx_action (fixture)".into(),
        host: "testhost".into(),
        kernel: "6.1.0-test".into(),
        cpus: 4,
        start: "2026-12-03T03:12:00Z".into(),
        window_ns: recording.end_unix_ns - recording.start_unix_ns,
        cpu: None,
        summary: Summary::from(&recording.total()),
        unfinished_calls: Some(0),
        per_cpu: None,
        conditions: Some(Conditions {
            sysctls_start: sysctls.clone(),
            sysctls_end: sysctls,
            netstat_delta: [("TCPRcvCollapsed".to_owned(), 1234)].into_iter().collect(),
            softnet_delta: Vec::new(),
        }),
        by: None,
        windows: None,
        missed: None,
        experiment: None,
    }
}

/// The file `netlat record` would write for this run.
pub fn file_text(report: &HistogramReport, recording: &Recording) -> String {
    serde_json::to_string(&RecordingFile {
        result: report,
        recording,
    })
    .expect("a recording serializes")
}

/// The shapes the report's tests use, by name.
pub fn shape(name: &str) -> Shape {
    let (windows, calls, median_ns, spikes, stream) = match name {
        "empty" => (0, 0, 1.0, vec![], 1),
        "one-window" => (1, 400, 20_000.0, vec![0], 2),
        "day" => (86_400, 40, 20_000.0, vec![38_000, 39_500, 40_100], 3),
        "before" => (600, 200, 20_000.0, vec![250, 300], 4),
        "after" => (400, 300, 12_000.0, vec![], 5),
        "quiet" => (3, 0, 1.0, vec![], 6),
        _ => panic!("no fixture named {name}"),
    };
    Shape {
        windows,
        calls,
        median_ns,
        spikes,
        stream,
    }
}

/// The recording of a named shape, and its file's text.
pub fn named(name: &str) -> (Recording, String) {
    let (report, mut recording) = recording(&shape(name));
    if name == "quiet" {
        // Windows without a call: the generator's 0 calls are at least one.
        for w in &mut recording.windows {
            *w = RecWindow::from_histogram(w.start_unix_ns, &Histogram::default());
        }
        recording.slow_calls.clear();
        recording.samples.clear();
        recording.accounting = Accounting::default();
        let report = result_of(&recording);
        let text = file_text(&report, &recording);
        return (recording, text);
    }
    let text = file_text(&report, &recording);
    (recording, text)
}
