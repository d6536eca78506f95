//! `netlat record` against this host's real kernel: real programs, real
//! loopback traffic, the windows' counts against the kernel's count of
//! NET_RX softirqs in /proc/softirqs (one per net_rx_action call), and
//! the slow calls and samples against the windows they belong to.
//!
//! These need root; without it each test says why and returns. Run them
//! one at a time (`--test-threads=1`): they compare machine-wide counters.

mod common;

use std::time::Duration;

use common::Netlat;
use netlat::model::recording::{Recording, RecordingDocument};
use netlat_testkit::{loopback, scratch::Scratch, softirqs};

const THRESHOLD_NS: u64 = 8_000;

#[test]
fn windows_add_up_to_the_kernel_count_and_slow_calls_lie_in_their_windows() {
    common::skip_unless_root!("needs root to load eBPF programs");
    let scratch = Scratch::new("record");
    let path = scratch.join("run.nlat");
    let before_start = softirqs::net_rx_total();
    let netlat = Netlat::start(&[
        "record",
        "net_rx_action",
        "--slower-than",
        "8us",
        "--interval",
        "500ms",
        "-o",
        path.to_str().unwrap(),
    ]);
    let inside_start = softirqs::net_rx_total();
    loopback::run_for(Duration::from_millis(3300));
    let inside_end = softirqs::net_rx_total();
    let out = netlat.interrupt();
    let after_end = softirqs::net_rx_total();
    assert!(out.success, "stderr: {}", out.stderr);
    let text = std::fs::read_to_string(&path).expect("the recording");
    let doc: RecordingDocument = serde_json::from_str(&text).expect("a recording");
    let whole: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rec: &Recording = &doc.recording;
    let counts: Vec<u64> = rec.windows.iter().map(|w| w.count).collect();
    let total = whole["count"].as_u64().unwrap();
    let (inside, outside) = (inside_end - inside_start, after_end - before_start);
    println!(
        "windows {counts:?}, total {total}; /proc/softirqs: {inside} inside, {outside} over netlat's lifetime; {} slow calls, {} stacks, {} sample rows; {:?}",
        rec.slow_calls.len(),
        rec.stacks.len(),
        rec.samples.len(),
        rec.accounting
    );
    assert!(counts.len() >= 6, "3.3 s of 500 ms windows: {counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), total, "total = sum of windows");
    assert!(
        inside <= total && total <= outside,
        "netlat counted {total}, /proc/softirqs says between {inside} and {outside}"
    );
    assert!(total >= 1000, "loopback traffic makes >= 1000 calls");
    for w in &rec.windows {
        assert_eq!(
            w.buckets.iter().map(|b| b[1]).sum::<u64>(),
            w.count,
            "buckets"
        );
    }
    for pair in rec.windows.windows(2) {
        let step = pair[1].start_unix_ns - pair[0].start_unix_ns;
        assert!(
            (400_000_000..=700_000_000).contains(&step),
            "windows start 500 ms apart: {step} ns"
        );
    }

    // Every slow call is over the threshold, ends inside the run, and its
    // window's histogram holds a call at least as long (give or take the
    // one window a boundary can put it in: the window flips in the kernel
    // a few us after its start is read).
    assert_eq!(rec.threshold_ns, Some(THRESHOLD_NS));
    assert_eq!(rec.accounting.recorded, rec.slow_calls.len() as u64);
    assert_eq!(
        rec.accounting.over_threshold,
        rec.accounting.recorded
            + rec.accounting.lost_ring
            + rec.accounting.limited
            + rec.accounting.not_kept,
        "every slow call the kernel counted is in the file or counted lost"
    );
    let longest = |i: usize| rec.windows.get(i).map_or(0, |w| w.max_ns);
    for c in &rec.slow_calls {
        assert!(c.duration_ns >= THRESHOLD_NS, "{c:?}");
        let end = c.start_unix_ns + c.duration_ns;
        assert!(
            end >= rec.start_unix_ns && end <= rec.end_unix_ns,
            "ends inside the run: {c:?}"
        );
        let w = rec.window_of(end);
        let held = [w.saturating_sub(1), w, w + 1]
            .iter()
            .any(|&i| longest(i) >= c.duration_ns);
        assert!(held, "window {w} holds no call as long as {c:?}");
    }
    // The histogram's own count of calls over the threshold brackets the
    // records' (buckets straddle the threshold).
    let (mut surely, mut maybe) = (0, 0);
    for w in &rec.windows {
        for &[i, n] in &w.buckets {
            if netlat_common::buckets::lower_bound(i as usize) >= THRESHOLD_NS {
                surely += n;
            }
            if netlat_common::buckets::upper_bound(i as usize) >= THRESHOLD_NS {
                maybe += n;
            }
        }
    }
    let over = rec.accounting.over_threshold;
    assert!(
        surely <= over && over <= maybe,
        "histograms say {surely}..={maybe} calls over the threshold, the slow path {over}"
    );

    // Samples: in a window of the run, of a stack that exists, taken
    // inside net_rx_action.
    let sampled: u64 = rec.samples.iter().map(|s| s.slow + s.fast).sum();
    if rec.slow_calls.len() >= 50 {
        assert!(
            sampled > 0,
            "no sample inside {} slow calls",
            rec.slow_calls.len()
        );
    }
    for s in &rec.samples {
        assert!(s.window < rec.windows.len(), "{s:?}");
        let stack = &rec.stacks[s.stack];
        assert!(
            stack.split(';').any(|f| f == "net_rx_action"),
            "sampled inside net_rx_action: {stack}"
        );
    }
}

#[test]
fn an_interval_too_short_for_a_heat_map_is_refused() {
    let out = common::run(&[
        "record",
        "net_rx_action",
        "5",
        "--interval",
        "10ms",
        "-o",
        "/tmp/never.nlat",
    ]);
    assert!(!out.success);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("at least 100ms"), "{}", out.stderr);
}
