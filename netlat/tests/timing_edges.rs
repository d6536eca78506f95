//! Edges of timing on this host's real kernel: what the "exits without a
//! seen entry" figure counts when netlat attaches under load, and what
//! `--interval` does with a write that lands after its window was read.
//!
//! These need root; without it each test says why and returns. Run them one
//! at a time (`--test-threads=1`).

mod common;

use std::time::Duration;

use aya::maps::{PerCpuArray, PerCpuValues};
use common::Netlat;
use netlat::{
    model::histogram::Histogram,
    tracing::{
        backend::{Backend, attach::Tracer},
        collect::Collector,
    },
};
use netlat_common::{STATS_MAP, Stats, buckets};
use netlat_testkit::{loopback, softirqs};
use serde_json::Value;

/// Attaching under loopback load: the softirq exit program is attached
/// before the entry program, and NET_RX softirqs that end in between have
/// no entry. Only exits after both are attached count: at most the calls
/// in flight at that moment, one per CPU.
#[test]
fn attaching_under_load_counts_at_most_one_unmatched_exit_per_cpu() {
    common::skip_unless_root!("needs root to load eBPF programs");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mut worst = 0;
    // A few attaches: the gap between the two programs is short, and the
    // load has to be there when it opens.
    for backend in ["auto", "tracepoint"] {
        let traffic = std::thread::spawn(|| loopback::run_for(Duration::from_millis(1500)));
        std::thread::sleep(Duration::from_millis(300));
        let out = Netlat::run(&[
            "histogram",
            "net_rx_action",
            "0.5",
            "--json",
            "--backend",
            backend,
        ]);
        let trips = traffic.join().expect("traffic thread");
        assert!(out.success, "{backend}: {}", out.stderr);
        let report: Value = serde_json::from_str(&out.stdout).expect("JSON report");
        let unmatched = report["unmatched_exits"].as_u64().expect("unmatched_exits");
        let count = report["count"].as_u64().expect("count");
        println!(
            "{backend}: {count} calls timed, {unmatched} exits without a seen entry ({trips} round trips, {cpus} CPUs)"
        );
        assert!(count > 100, "{backend}: too little load: {count} calls");
        worst = worst.max(unmatched);
    }
    assert!(
        worst <= cpus,
        "at most one call per CPU can be in flight when both programs are in, got {worst} exits without a seen entry"
    );
}

/// A duration no real call has: 2^50 ns is 13 days.
const LATE_NS: u64 = 1 << 50;

/// What a program preempted past the end of window `parity`'s read would
/// do: add one call to that slot (group 0, CPU 0) after userspace read it.
fn write_late(tracer: &mut Tracer, parity: u32) {
    let mut stats: PerCpuArray<_, Stats> =
        PerCpuArray::try_from(tracer.map_mut(STATS_MAP).expect("STATS map"))
            .expect("STATS map type");
    let mut values: Vec<Stats> = stats
        .get(&parity, 0)
        .expect("read STATS")
        .iter()
        .copied()
        .collect();
    let s = &mut values[0];
    s.count += 1;
    s.sum_ns += LATE_NS;
    s.buckets[buckets::index(LATE_NS)] += 1;
    stats
        .set(
            parity,
            PerCpuValues::try_from(values).expect("per-CPU values"),
            0,
        )
        .expect("write STATS");
}

/// `--interval` never zeroes a slot, so a write that lands after its
/// window was read is in the next read of that slot: counted once, also
/// when that next read is the final one after detaching.
#[test]
fn a_late_write_to_a_finished_window_is_counted_exactly_once() {
    common::skip_unless_root!("needs root to load eBPF programs");
    let mut tracer = Tracer::load("net_rx_action", Backend::RawTp).expect("load raw_tp");
    let before = softirqs::net_rx_total();
    tracer.attach().expect("attach raw_tp");
    let inside_start = softirqs::net_rx_total();
    let traffic = std::thread::spawn(|| loopback::run_for(Duration::from_millis(1200)));
    let mut collector = Collector::new();
    let mut windows = Vec::new();
    let pause = || std::thread::sleep(Duration::from_millis(250));
    pause();
    // Window 0 ends; its slot (parity 0) is quiet until window 2.
    windows.push(collector.rotate(&mut tracer).expect("rotate"));
    write_late(&mut tracer, 0);
    pause();
    windows.push(collector.rotate(&mut tracer).expect("rotate"));
    pause();
    // Window 2 (parity 0) holds the late call; then another late call
    // lands in parity 0, which only the final read can still see.
    windows.push(collector.rotate(&mut tracer).expect("rotate"));
    write_late(&mut tracer, 0);
    traffic.join().expect("traffic thread");
    let inside_end = softirqs::net_rx_total();
    tracer.detach().expect("detach");
    let after = softirqs::net_rx_total();
    windows.push(collector.read(&tracer).expect("final read"));

    let late_bucket = buckets::index(LATE_NS);
    let merged: Vec<Histogram> = windows
        .iter()
        .map(|w| Histogram::merged(&w.per_cpu))
        .collect();
    let late: Vec<u64> = merged.iter().map(|h| h.buckets[late_bucket]).collect();
    let counts: Vec<u64> = merged.iter().map(|h| h.count).collect();
    println!("calls per window {counts:?}, late calls per window {late:?}");
    assert_eq!(late, [0, 0, 1, 1], "each late call in exactly one window");
    for h in &merged {
        assert_eq!(h.bucket_total(), h.count, "buckets sum to count");
    }
    assert_eq!(merged[2].max_ns, LATE_NS.max(merged[2].max_ns));
    let real = counts.iter().sum::<u64>() - 2;
    let (inside, lifetime) = (inside_end - inside_start, after - before);
    assert!(
        inside <= real && real <= lifetime,
        "windows add up to {real} calls, /proc/softirqs says between {inside} and {lifetime}"
    );
}
