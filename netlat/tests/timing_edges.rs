//! Edges of pairing entries with exits on this host's real kernel: what
//! the "exits without a seen entry" figure counts when netlat attaches
//! under load.
//!
//! These need root; without it each test says why and returns. Run them one
//! at a time (`--test-threads=1`).

mod common;

use std::time::Duration;

use common::{Netlat, is_root, skip};
use netlat_testkit::loopback;
use serde_json::Value;

/// Attaching under loopback load: the softirq exit program is attached
/// before the entry program, and NET_RX softirqs that end in between have
/// no entry. Only exits after both are attached count: at most the calls
/// in flight at that moment, one per CPU.
#[test]
fn attaching_under_load_counts_at_most_one_unmatched_exit_per_cpu() {
    if !is_root() {
        return skip("needs root to load eBPF programs");
    }
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
