//! Timing whole functions against ground truth: net_rx_action against
//! /proc/softirqs with kprobe and fentry, tcp_sendmsg under a transfer.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use netlat_testkit::{
    loopback,
    netlat::{Netlat, bucket_total, run},
    softirqs,
};

use crate::{
    NETLAT, capabilities,
    verdict::{Outcome, check, json},
};

/// netlat's count of NET_RX calls against /proc/softirqs, bracketed by the
/// delta inside the attach window and the delta over netlat's lifetime.
fn net_rx_bracket(backend: &str) -> Result<String, String> {
    let before = softirqs::net_rx_total();
    let netlat = Netlat::start(
        NETLAT,
        &["histogram", "--backend", backend, "net_rx_action", "--json"],
    );
    let inside_start = softirqs::net_rx_total();
    let trips = loopback::run_for(Duration::from_secs(2));
    let inside_end = softirqs::net_rx_total();
    let out = netlat.interrupt();
    let after = softirqs::net_rx_total();
    check(out.success, || format!("netlat failed: {}", out.stderr))?;
    let r = json(&out.stdout)?;
    let count = r["count"].as_u64().unwrap_or(0);
    let (inside, lifetime) = (inside_end - inside_start, after - before);
    check(r["backend"] == backend, || {
        format!("backend {} not {backend}", r["backend"])
    })?;
    check(inside <= count && count <= lifetime, || {
        format!("count {count} outside [{inside}, {lifetime}] from /proc/softirqs")
    })?;
    check(count > 100, || {
        format!("only {count} calls under {trips} round trips")
    })?;
    check(bucket_total(&r) == count, || {
        "buckets do not sum to count".into()
    })?;
    Ok(format!(
        "count={count} softirqs_inside={inside} softirqs_lifetime={lifetime} round_trips={trips} max_ns={}",
        r["max_ns"]
    ))
}

pub fn kprobe_net_rx_action() -> Result<Outcome, String> {
    net_rx_bracket("kprobe").map(Outcome::Pass)
}

/// Where the kernel attaches fentry (its own probe says), netlat's fentry
/// must count exactly; where it refuses, netlat must refuse in one line and
/// auto fall back to kprobes.
pub fn fentry_net_rx_action() -> Result<Outcome, String> {
    let expected = &capabilities::get().fentry;
    let probe = run(
        Path::new(NETLAT),
        &["histogram", "--backend", "fentry", "net_rx_action", "0.2"],
    );
    if expected.yes() {
        check(probe.success, || {
            format!(
                "this kernel attaches fentry to net_rx_action, netlat did not: {}",
                probe.stderr.trim()
            )
        })?;
        return net_rx_bracket("fentry").map(|f| Outcome::Pass(format!("fentry works: {f}")));
    }
    check(!probe.success, || {
        format!("the kernel refused fentry ({expected}), yet netlat's fentry attached")
    })?;
    check(
        probe.stderr.lines().count() == 1 && probe.stderr.contains("fentry"),
        || format!("fentry error not one line about fentry: {}", probe.stderr),
    )?;
    let auto = run(
        Path::new(NETLAT),
        &["histogram", "--json", "tcp_sendmsg", "0.2"],
    );
    check(auto.success, || {
        format!("auto did not fall back: {}", auto.stderr)
    })?;
    let r = json(&auto.stdout)?;
    check(r["backend"] == "kprobe", || {
        format!("auto picked {}", r["backend"])
    })?;
    Ok(Outcome::Pass(format!(
        "fentry refused as the kernel does ({expected}): {}; auto fell back to kprobe",
        probe.stderr.trim()
    )))
}

pub fn tcp_sendmsg() -> Result<Outcome, String> {
    let netlat = Netlat::start(
        NETLAT,
        &["histogram", "--backend", "kprobe", "--json", "tcp_sendmsg"],
    );
    let started = Instant::now();
    loopback::run_for(Duration::from_secs(2));
    let out = netlat.interrupt();
    let lifetime = started.elapsed().as_nanos() as u64;
    check(out.success, || format!("netlat failed: {}", out.stderr))?;
    let r = json(&out.stdout)?;
    let count = r["count"].as_u64().unwrap_or(0);
    let max = r["max_ns"].as_u64().unwrap_or(u64::MAX);
    let window = r["window_ns"].as_u64().unwrap_or(0);
    check(count > 100, || format!("only {count} tcp_sendmsg calls"))?;
    check(max <= window && window <= lifetime + 1_000_000_000, || {
        format!("max {max} ns vs window {window} ns")
    })?;
    check(bucket_total(&r) == count, || {
        "buckets do not sum to count".into()
    })?;
    Ok(Outcome::Pass(format!(
        "count={count} max_ns={max} window_ns={window} unmatched_exits={}",
        r["unmatched_exits"]
    )))
}
