//! The histogram report's renderers against whole expected outputs.
use super::*;
use crate::{model::histogram::Histogram, model::report::SCHEMA_VERSION};
use netlat_common::buckets;

fn report(values: &[(u64, u64)]) -> HistogramReport {
    let mut h = Histogram::default();
    for &(ns, n) in values {
        let mut one = Histogram {
            count: n,
            sum_ns: ns * n,
            min_ns: ns,
            max_ns: ns,
            ..Histogram::default()
        };
        one.buckets[buckets::index(ns)] = n;
        h.merge(&one);
    }
    HistogramReport {
        schema: SCHEMA_VERSION,
        function: "net_rx_action".into(),
        backend: "tp_btf".into(),
        backend_detail: "tp_btf irq:softirq_entry/exit (vec NET_RX)".into(),
        host: "h".into(),
        kernel: "6.18".into(),
        cpus: 2,
        start: "2026-11-22T22:00:00Z".into(),
        window_ns: 30_000_000_000,
        cpu: None,
        summary: Summary::from(&h),
        unfinished_calls: None,
        conditions: None,
        per_cpu: None,
        by: None,
        missed: None,
        windows: None,
        experiment: None,
    }
}

#[test]
fn net_rx_action_histogram_in_milliseconds_as_in_the_latency_spike_story() {
    // The shape of the story's net_rx_action run: most calls under 1 ms.
    let r = report(&[
        (200_000, 3_685_011),
        (1_500_000, 215),
        (2_500_000, 30),
        (5_000_000, 9),
        (9_000_000, 5),
        (23_000_000, 1),
    ]);
    let text = render(&r, Unit::Ms);
    let expected = "\
Duration min:0ms avg:0ms max:23ms count:3685271
Duration (ms):
value |-------------------------------------------------- count
    0 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 3685011
    1 |@                                                      215
    2 |@                                                       30
    4 |@                                                        9
    8 |@                                                        5
   16 |@                                                        1
   32 |                                                         0
";
    assert!(text.starts_with(expected), "got:\n{text}");
    assert!(
        text.contains("Percentiles (ms): p50:0.23 p90:0.23 p99:0.23 p99.9:0.23 max:23.0"),
        "got:\n{text}"
    );
    assert!(text.contains("Backend: tp_btf irq:softirq_entry/exit (vec NET_RX); window 30.00 s"));
}

#[test]
fn half_seen_nested_calls_get_a_line_of_their_own() {
    let mut r = report(&[(20_000, 5)]);
    let text = render(&r, Unit::Us);
    assert!(!text.contains("Not timed"), "got:\n{text}");
    r.summary.mismatched_exits = 7;
    let text = render(&r, Unit::Us);
    assert!(
        text.contains("Not timed: 7 nested calls the kernel saw only half of"),
        "got:\n{text}"
    );
    assert!(!text.contains("exits without a seen entry"), "got:\n{text}");
}

#[test]
fn groups_get_a_table_row_and_a_histogram_each() {
    use crate::tracing::group_by::{GroupBy, KeySource};
    let small = report(&[(20_000, 5)]).summary;
    let big = report(&[(3_000_000, 2)]).summary;
    let as_hist = |s: &Summary, ns: u64| {
        let mut h = Histogram {
            count: s.count,
            sum_ns: s.sum_ns,
            min_ns: ns,
            max_ns: ns,
            ..Histogram::default()
        };
        h.buckets[buckets::index(ns)] = s.count;
        h
    };
    let mut per_group = vec![Histogram::default(); 32];
    per_group[18] = as_hist(&small, 20_000); // [128K, 256K)
    per_group[23] = as_hist(&big, 3_000_000); // [4M, 8M)
    let key = KeySource {
        by: GroupBy::Rcvbuf,
        offset: 236,
    };
    let mut r = report(&[(20_000, 5), (3_000_000, 2)]);
    r.by = Some(crate::model::report::Grouping::new(
        key.by.name(),
        key.describe(),
        &per_group,
    ));
    let text = render(&r, Unit::Us);
    assert!(
        text.contains("By rcvbuf (struct sock.sk_rcvbuf at offset 236 (kernel BTF)):"),
        "{text}"
    );
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("128K+") || l.trim_start().starts_with("4M+"))
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0]
            .split_whitespace()
            .eq(["128K+", "5", "20.0", "20.0", "20.0", "20.0"]),
        "{text}"
    );
    assert!(
        text.contains("rcvbuf 4M+:\nDuration min:3000us avg:3000us max:3000us count:2"),
        "{text}"
    );
    let by = r.by.unwrap();
    assert_eq!(
        (by.groups[0].low, by.groups[0].high),
        (Some(131072), Some(262143))
    );
}

#[test]
fn missed_counts_are_printed_zeros_and_silence_included() {
    use crate::model::report::{KernelCount, Missed};
    let mut r = report(&[(3, 10)]);
    r.missed = Some(Missed {
        program_runs: KernelCount::Counted(0),
        kprobe_hits: Some(KernelCount::from_option(None)),
    });
    let text = render(&r, Unit::Ns);
    assert!(
            text.contains("Missed by the kernel: program runs skipped (recursion_misses) 0; kprobe hits missed (kretprobes without a free instance: exits never seen) not reported by this kernel"),
            "{text}"
        );
    r.missed = Some(Missed {
        program_runs: KernelCount::Counted(3),
        kprobe_hits: None,
    });
    let text = render(&r, Unit::Ns);
    assert!(
        text.contains("Missed by the kernel: program runs skipped (recursion_misses) 3\n"),
        "{text}"
    );
}

#[test]
fn missed_counts_round_trip_through_json() {
    use crate::model::report::{KernelCount, Missed};
    let mut r = report(&[(3, 10)]);
    r.missed = Some(Missed {
        program_runs: KernelCount::Counted(2),
        kprobe_hits: Some(KernelCount::from_option(None)),
    });
    let json = crate::render::histogram::json(&r, true);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["missed"]["program_runs"], 2);
    assert_eq!(v["missed"]["kprobe_hits"], "not reported by this kernel");
    let back: HistogramReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn empty_rows_inside_the_range_are_shown() {
    let r = report(&[(3, 10), (100, 1)]);
    let text = render(&r, Unit::Ns);
    // Rows sit after the two header lines and the column line.
    let labels: Vec<&str> = text
        .lines()
        .skip(3)
        .take_while(|l| l.contains('|'))
        .map(|l| l.split('|').next().unwrap_or_default().trim())
        .collect();
    assert_eq!(labels, ["2", "4", "8", "16", "32", "64", "128"], "{text}");
}

#[test]
fn zero_calls_say_so() {
    let r = report(&[]);
    let text = render(&r, Unit::Us);
    assert!(text.starts_with(
        "Duration min:0us avg:0us max:0us count:0\nNo calls of net_rx_action were seen"
    ));
}

#[test]
fn row_folding_is_exact_in_nanoseconds() {
    let r = report(&[
        (1, 1),
        (2, 1),
        (3, 1),
        (4, 1),
        (7, 1),
        (8, 1),
        (1023, 1),
        (1024, 1),
    ]);
    let rows = fold_rows(&r.summary, Unit::Ns);
    assert_eq!(&rows[..12], &[0, 1, 2, 2, 1, 0, 0, 0, 0, 0, 1, 1]);
    assert_eq!(rows.iter().sum::<u64>(), r.summary.count);
}
