//! `netlat slow` against this host's real kernel (raw_tp on net_rx_action):
//! every record accounted for against the kernel's own counts and against
//! /proc/softirqs, per CPU; timestamps inside the run; a threshold that
//! keeps only the calls at or over it.
//!
//! These need root; without it each test says why and returns. Run them one
//! at a time (`--test-threads=1`): they compare machine-wide counters.

mod common;

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use common::{Netlat, is_root, run, skip};
use netlat_testkit::{loopback, softirqs};
use serde_json::Value;

/// The closing line's figures, in its order.
#[derive(Debug)]
struct Summary {
    timed: u64,
    over: u64,
    printed: u64,
    lost: u64,
}

fn summary(stderr: &str) -> Summary {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("netlat: slow "))
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    let after = line.split_once(": ").unwrap().1.split_once(": ").unwrap().1;
    let n: Vec<u64> = after
        .split(", ")
        .map(|part| part.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    Summary {
        timed: n[0],
        over: n[1],
        printed: n[2],
        lost: n[3],
    }
}

fn records(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn threshold_zero_records_every_net_rx_call_per_cpu() {
    if !is_root() {
        return skip("needs root to load eBPF programs");
    }
    let started = now_ns();
    let before = softirqs::net_rx_per_cpu();
    let netlat = Netlat::start(&["slow", "net_rx_action", "0", "--json"]);
    let inside_start = softirqs::net_rx_per_cpu();
    let trips = loopback::run_for(Duration::from_secs(2));
    let inside_end = softirqs::net_rx_per_cpu();
    let out = netlat.interrupt();
    let after = softirqs::net_rx_per_cpu();
    let ended = now_ns();
    assert!(out.success, "netlat failed: {}", out.stderr);
    let s = summary(&out.stderr);
    let recs = records(&out.stdout);
    println!("{trips} round trips; {s:?}; {} lines", recs.len());

    // Every call is over a threshold of 0; each is printed or counted lost.
    assert_eq!(s.over, s.timed, "{s:?}");
    assert_eq!(s.printed + s.lost, s.timed, "{s:?}");
    assert_eq!(recs.len() as u64, s.printed);
    assert_eq!(
        s.lost,
        0,
        "records lost at {} calls/s: userspace must keep up",
        s.timed / 2
    );
    assert!(s.timed > 1000, "too few calls under loopback: {s:?}");
    let total = |v: &[u64]| v.iter().sum::<u64>();
    let (inside, lifetime) = (
        total(&inside_end) - total(&inside_start),
        total(&after) - total(&before),
    );
    assert!(
        inside <= s.timed && s.timed <= lifetime,
        "timed {} outside [{inside}, {lifetime}] from /proc/softirqs",
        s.timed
    );

    let mut per_cpu: BTreeMap<usize, u64> = BTreeMap::new();
    let mut last_start: BTreeMap<usize, u64> = BTreeMap::new();
    for r in &recs {
        let cpu = r["cpu"].as_u64().unwrap() as usize;
        let start = r["start_unix_ns"].as_u64().unwrap();
        let duration = r["duration_ns"].as_u64().unwrap();
        assert_eq!(r["context"], "softirq");
        assert_eq!(r["softirq"], "NET_RX");
        assert!(
            started <= start && start + duration <= ended,
            "call at {start} (+{duration} ns) outside the run [{started}, {ended}]"
        );
        if let Some(&prev) = last_start.get(&cpu) {
            assert!(prev < start, "CPU {cpu}: start {start} after {prev}");
        }
        last_start.insert(cpu, start);
        *per_cpu.entry(cpu).or_default() += 1;
    }
    for (cpu, n) in &per_cpu {
        let (lo, hi) = (
            inside_end[*cpu] - inside_start[*cpu],
            after[*cpu] - before[*cpu],
        );
        println!("CPU {cpu}: {n} records, /proc/softirqs {lo}..{hi}");
        assert!(
            lo <= *n && *n <= hi,
            "CPU {cpu}: {n} records outside [{lo}, {hi}]"
        );
    }
    for cpu in 0..before.len() {
        let lo = inside_end[cpu] - inside_start[cpu];
        assert!(
            lo == 0 || per_cpu.contains_key(&cpu),
            "CPU {cpu} ran {lo} NET_RX softirqs but has no record"
        );
    }
}

#[test]
fn a_threshold_keeps_exactly_the_calls_at_or_over_it() {
    if !is_root() {
        return skip("needs root to load eBPF programs");
    }
    // A threshold between the median and the max of this host's calls.
    let traffic = std::thread::spawn(|| loopback::run_for(Duration::from_secs(2)));
    let h = run(&["histogram", "net_rx_action", "1.5", "--json"]);
    traffic.join().unwrap();
    assert!(h.success, "{}", h.stderr);
    let h: Value = serde_json::from_str(&h.stdout).unwrap();
    let p = &h["percentiles_ns"];
    let (p50, max) = (p["p50"].as_u64().unwrap(), h["max_ns"].as_u64().unwrap());
    let threshold = p["p90"].as_u64().unwrap().clamp(p50 + 1, max);
    println!("histogram: p50 {p50} ns, max {max} ns; threshold {threshold} ns");

    let arg = format!("{threshold}ns");
    let netlat = Netlat::start(&["slow", "net_rx_action", &arg, "--json"]);
    loopback::run_for(Duration::from_secs(2));
    let out = netlat.interrupt();
    assert!(out.success, "netlat failed: {}", out.stderr);
    let s = summary(&out.stderr);
    let recs = records(&out.stdout);
    println!("{s:?}");
    assert!(s.over > 0 && s.over < s.timed, "{s:?}");
    assert_eq!(s.lost, 0, "{s:?}");
    assert_eq!(recs.len() as u64, s.over, "one record per call over");
    for r in &recs {
        let d = r["duration_ns"].as_u64().unwrap();
        assert!(
            d >= threshold,
            "a {d} ns call under the {threshold} ns threshold"
        );
    }
}

#[test]
fn text_lines_and_entry_stacks() {
    if !is_root() {
        return skip("needs root to load eBPF programs");
    }
    let netlat = Netlat::start(&["slow", "net_rx_action", "0", "--stack", "--utc"]);
    loopback::run_for(Duration::from_millis(500));
    let out = netlat.interrupt();
    assert!(out.success, "netlat failed: {}", out.stderr);
    let s = summary(&out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let calls: Vec<&&str> = lines.iter().filter(|l| !l.starts_with("    ")).collect();
    assert_eq!(calls.len() as u64, s.printed, "{s:?}");
    let first = calls[0];
    println!("{first}");
    assert!(
        first.contains(" cpu=")
            && first.contains(" ctx=softirq:NET_RX")
            && first.contains(" comm="),
        "{first}"
    );
    // The softirq's entry stack: the dispatcher that ran it, no netlat frame.
    let frames: Vec<&&str> = lines.iter().filter(|l| l.starts_with("    ")).collect();
    assert!(!frames.is_empty(), "no stack under any line");
    assert!(
        frames.iter().any(|f| f.contains("softirq")),
        "no softirq frame in the entry stacks: {frames:?}"
    );
    assert!(
        !frames.iter().any(|f| f.contains("bpf_trace_run")),
        "tracing frames left in: {frames:?}"
    );
}

#[test]
fn bad_input_is_one_line() {
    for (args, expected) in [
        (
            &["slow", "net_rx_action", "2"][..],
            "invalid threshold '2': give it a unit",
        ),
        (
            &["slow", "net_rx_action", "fast"][..],
            "invalid threshold 'fast'",
        ),
        (
            &["slow", "net_rx_action", "1ms", "-3"][..],
            "invalid duration",
        ),
    ] {
        let out = run(args);
        assert!(!out.success, "{args:?} succeeded");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
    }
    if !is_root() {
        return skip("the socket check needs root");
    }
    let out = run(&["slow", "tcp_v4_rcv", "1ms", "--socket", "1"]);
    assert!(!out.success);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--socket needs a function whose first argument is a struct sock *, and tcp_v4_rcv's is struct sk_buff *"),
        "{}",
        out.stderr
    );
}

/// Puts a sysctl back when dropped, whatever the test did.
struct Restore(&'static str, String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, &self.1);
    }
}

#[test]
fn stack_without_kernel_addresses_is_one_line() {
    if !is_root() {
        return skip("needs root to change kernel.kptr_restrict");
    }
    const KPTR: &str = "/proc/sys/kernel/kptr_restrict";
    let old = std::fs::read_to_string(KPTR).expect("kptr_restrict");
    let _restore = Restore(KPTR, old);
    // 2: /proc/kallsyms shows every address as 0, even to root.
    std::fs::write(KPTR, "2").expect("set kptr_restrict");
    let out = run(&["slow", "net_rx_action", "1ms", "1", "--stack"]);
    assert!(
        !out.success,
        "--stack ran without addresses: {}",
        out.stdout
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("stacks cannot be named") && out.stderr.contains("kptr_restrict"),
        "{}",
        out.stderr
    );
}
