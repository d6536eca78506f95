//! What netlat leaves behind and how it refuses: SIGKILL and SIGTERM
//! cleanup, a blacklisted function, serve with its default functions.

use std::{path::Path, time::Duration};

use netlat_testkit::{
    collapse,
    netlat::{Netlat, run, wait_until_unloaded},
    netstat::Pruning,
};

use crate::{
    NETLAT,
    verdict::{Outcome, check, judge_collapse_calls},
};

/// Active kprobes, from debugfs: every kprobe, including the perf-event
/// ones netlat makes, which never show in tracefs kprobe_events.
fn active_kprobes() -> String {
    std::fs::read_to_string("/sys/kernel/debug/kprobes/list").unwrap_or_default()
}

pub fn sigkill_cleanup() -> Result<Outcome, String> {
    let netlat = Netlat::start(
        NETLAT,
        &["histogram", "--backend", "kprobe", "net_rx_action"],
    );
    let during = active_kprobes();
    check(during.contains("net_rx_action"), || {
        format!("no kprobe listed while attached: {during:?}")
    })?;
    let programs = netlat_testkit::netlat::loaded_programs();
    check(programs.len() == 2, || {
        format!("programs while attached: {programs:?}")
    })?;
    netlat.kill();
    let left = wait_until_unloaded(Duration::from_secs(5));
    check(left.is_empty(), || {
        format!("programs left after SIGKILL: {left:?}")
    })?;
    let after = active_kprobes();
    check(!after.contains("net_rx_action"), || {
        format!("kprobes left after SIGKILL: {after}")
    })?;
    let events = std::fs::read_to_string("/sys/kernel/tracing/kprobe_events").unwrap_or_default();
    check(events.trim().is_empty(), || {
        format!("kprobe_events left: {events}")
    })?;
    Ok(Outcome::Pass(format!(
        "kprobes while attached: {}",
        during.lines().count()
    )))
}

/// A function that exists but that kprobes refuse: the kernel's own
/// blacklist names them (debugfs), kallsyms confirms they are code.
pub fn blacklisted_function() -> Result<Outcome, String> {
    let blacklist = std::fs::read_to_string("/sys/kernel/debug/kprobes/blacklist")
        .map_err(|e| format!("cannot read the kprobe blacklist: {e}"))?;
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").map_err(|e| e.to_string())?;
    let function = blacklist
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .find(|name| {
            !name.contains('.')
                && kallsyms.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() == 3 && f[2] == *name && matches!(f[1], "t" | "T")
                })
        })
        .ok_or("no blacklisted function found in kallsyms")?
        .to_owned();
    let out = run(
        Path::new(NETLAT),
        &["histogram", "--backend", "kprobe", &function, "0.2"],
    );
    check(!out.success, || {
        format!("kprobe on blacklisted {function} attached: {}", out.stdout)
    })?;
    check(out.stderr.lines().count() == 1, || {
        format!("not one line: {}", out.stderr)
    })?;
    check(
        out.stderr.contains(&format!(
            "{function} exists but cannot be probed with kprobes"
        )),
        || format!("unexpected error: {}", out.stderr),
    )?;
    Ok(Outcome::Pass(format!("{function}: {}", out.stderr.trim())))
}

/// `netlat serve` with no function named: both suspects of "The story of one latency spike",
/// tcp_collapse through a real kprobe or fentry, counted as the kernel
/// prunes; SIGTERM takes every kprobe away.
pub fn serve_defaults() -> Result<Outcome, String> {
    use netlat_testkit::scrape::{get, sample};
    let addr: std::net::SocketAddr = "127.0.0.1:9435".parse().unwrap();
    let collapse_count = "netlat_function_latency_seconds_count{function=\"tcp_collapse\"}";
    let netlat = Netlat::start(NETLAT, &["serve"]);
    let pruning0 = Pruning::now();
    let (status, before) = get(addr, "/metrics");
    check(status == 200, || format!("GET /metrics: {status}"))?;
    for f in ["net_rx_action", "tcp_collapse"] {
        check(
            before.contains(&format!("netlat_function_info{{function=\"{f}\"")),
            || format!("{f} not served: {}", netlat.first_line.trim()),
        )?;
    }
    let start = sample(&before, collapse_count).unwrap_or(-1.0);
    collapse::run_for(Duration::from_secs(4));
    let pruning = pruning0.since();
    let (_, after) = get(addr, "/metrics");
    let end = sample(&after, collapse_count).unwrap_or(-1.0);
    let kprobes = active_kprobes();
    let out = netlat.terminate();
    check(out.code == Some(0), || {
        format!("SIGTERM exit {:?}: {}", out.code, out.stderr)
    })?;
    let left = active_kprobes();
    check(left.trim().is_empty(), || {
        format!("kprobes left after SIGTERM: {left}")
    })?;
    let calls = end - start;
    check(start >= 0.0 && end >= start, || {
        format!("tcp_collapse count went {start} -> {end}")
    })?;
    if let Some(skip) = judge_collapse_calls(calls as u64, pruning, || {
        format!(
            "both functions served, 0 calls, nothing left after SIGTERM ({} kprobes while serving)",
            kprobes.lines().count()
        )
    })? {
        return Ok(skip);
    }
    Ok(Outcome::Pass(format!(
        "tcp_collapse _count +{calls} with {pruning}; {} kprobes while serving, none after SIGTERM",
        kprobes.lines().count()
    )))
}
