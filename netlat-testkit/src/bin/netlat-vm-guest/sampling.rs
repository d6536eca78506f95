//! Flame graphs of a function that runs often: perf-event stack sampling
//! and the `--during` filter on every kernel, with a signal strong enough
//! under TCG to be judged (tcp_collapse runs too rarely there to be sampled
//! reliably).

use std::time::Duration;

use netlat_testkit::{loopback, netlat::Netlat, softirqs};

use crate::{
    NETLAT,
    verdict::{Outcome, check},
};

/// Every kept stack holds net_rx_action, and the call count the summary
/// gives lies inside the /proc/softirqs bracket, as with `histogram`.
pub fn flamegraph_during_net_rx_action() -> Result<Outcome, String> {
    let folded = "/tmp/net_rx.folded";
    let before = softirqs::net_rx_total();
    let netlat = Netlat::start(
        NETLAT,
        &[
            "flamegraph",
            "--during",
            "net_rx_action",
            "--frequency",
            "999",
            "-o",
            "/tmp/net_rx.svg",
            "--folded",
            folded,
        ],
    );
    let inside_start = softirqs::net_rx_total();
    loopback::run_for(Duration::from_secs(2));
    let inside = softirqs::net_rx_total() - inside_start;
    let out = netlat.interrupt();
    let lifetime = softirqs::net_rx_total() - before;
    check(out.success, || format!("flamegraph failed: {}", out.stderr))?;
    let summary = out.stderr.lines().last().unwrap_or("").trim().to_owned();
    let calls: u64 = summary
        .split_once("; net_rx_action: ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no net_rx_action call count in: {summary}"))?;
    check(inside <= calls && calls <= lifetime, || {
        format!("{calls} calls outside [{inside}, {lifetime}] from /proc/softirqs: {summary}")
    })?;
    let text = std::fs::read_to_string(folded).map_err(|e| format!("{folded}: {e}"))?;
    let stacks = text.lines().count();
    check(stacks > 0, || format!("no stacks: {summary}"))?;
    check(text.lines().all(|l| l.contains("net_rx_action")), || {
        format!("a stack without net_rx_action: {text}")
    })?;
    let svg = std::fs::read_to_string("/tmp/net_rx.svg").map_err(|e| e.to_string())?;
    check(
        svg.contains("<svg") && svg.contains("net_rx_action"),
        || "the SVG does not show net_rx_action".into(),
    )?;
    Ok(Outcome::Pass(format!(
        "{stacks} distinct stacks; softirqs inside={inside} lifetime={lifetime}; {summary}"
    )))
}
