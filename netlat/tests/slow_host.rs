//! `netlat slow` against this host's real kernel (raw_tp on net_rx_action):
//! every record accounted for against the kernel's own counts and against
//! /proc/softirqs, per CPU; timestamps inside the run; a threshold that
//! keeps only the calls at or over it.
//!
//! These need root; without it each test says why and returns. Run them one
//! at a time (`--test-threads=1`): they compare machine-wide counters.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write as _,
    net::{TcpListener, TcpStream, UdpSocket},
    process::{Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{Netlat, run};
use netlat_testkit::{loopback, softirqs};
use serde_json::Value;

/// The closing line's figures, in its order.
#[derive(Debug)]
struct Summary {
    timed: u64,
    over: u64,
    printed: u64,
    lost: u64,
    /// Taken from the buffer but not printed (a stop's grace ran out, or
    /// stdout failed).
    unprinted: u64,
}

fn summary(stderr: &str) -> Summary {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("netlat: slow "))
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    let after = line.split_once(": ").unwrap().1.split_once(": ").unwrap().1;
    let n: Vec<u64> = after
        .split(", ")
        .take(4)
        .map(|part| part.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    Summary {
        timed: n[0],
        over: n[1],
        printed: n[2],
        lost: n[3],
        unprinted: line.split_once(" not printed").map_or(0, |(head, _)| {
            head.rsplit(' ').next().unwrap().parse().unwrap()
        }),
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

/// Round trips a second for the accounting test: two NET_RX calls each.
const PACED_ROUND_TRIPS: u32 = 10_000;

#[test]
fn threshold_zero_records_every_net_rx_call_per_cpu() {
    common::skip_unless_root!("needs root to load eBPF programs");
    let started = now_ns();
    let before = softirqs::net_rx_per_cpu();
    // Ended by its own deadline, not a signal: then netlat prints all the
    // buffer holds, however long that takes.
    let netlat = Netlat::start(&["slow", "net_rx_action", "0", "3", "--json"]);
    let inside_start = softirqs::net_rx_per_cpu();
    // A known rate, well within what the debug build prints and the ring
    // holds: flat out, loopback here reaches ~190 k NET_RX calls/s, which
    // says more about the machine than about netlat (`cargo xtask bench`
    // measures how many records a second the release build keeps up with).
    let trips = loopback::run_paced(Duration::from_secs(2), PACED_ROUND_TRIPS);
    let inside_end = softirqs::net_rx_per_cpu();
    let out = netlat.wait(Duration::from_secs(60));
    let after = softirqs::net_rx_per_cpu();
    let ended = now_ns();
    assert!(out.success, "netlat failed: {}", out.stderr);
    let s = summary(&out.stderr);
    let recs = records(&out.stdout);
    println!("{trips} round trips; {s:?}; {} lines", recs.len());

    // Every call is over a threshold of 0; each is printed or counted lost.
    assert_eq!(s.over, s.timed, "{s:?}");
    assert_eq!(s.unprinted, 0, "{s:?}");
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
    common::skip_unless_root!("needs root to load eBPF programs");
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
    let netlat = Netlat::start(&["slow", "net_rx_action", &arg, "3", "--json"]);
    loopback::run_for(Duration::from_secs(2));
    let out = netlat.wait(Duration::from_secs(60));
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
    common::skip_unless_root!("needs root to load eBPF programs");
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
        // Past u64::MAX ns it once meant "no threshold": attached, printed
        // nothing. Below that, it saturated silently.
        (
            &["slow", "net_rx_action", "999999999999s"][..],
            "invalid threshold '999999999999s': at most 1000000000s",
        ),
        (
            &["slow", "net_rx_action", "600years"][..],
            "invalid threshold '600years': at most 1000000000s",
        ),
        (&["slow", "", "1ms"][..], "the function name is empty"),
        (
            &["slow", "net_rx_action", "1ms", "--buffer", "512"][..],
            "--buffer 512: at most 256 MiB",
        ),
    ] {
        let out = run(args);
        assert!(!out.success, "{args:?} succeeded");
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
    }
    common::skip_unless_root!("the socket check needs root");
    // No note about BTF or socket fields before the error.
    let out = run(&["slow", "netlat_no_such_fn", "1ms", "1"]);
    assert!(!out.success);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("unknown kernel function netlat_no_such_fn"),
        "{}",
        out.stderr
    );
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
    common::skip_unless_root!("needs root to change kernel.kptr_restrict");
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

/// Loopback traffic through several system calls and protocols, so that
/// NET_RX softirqs start from several distinct kernel stacks.
fn varied_traffic(stop: &AtomicBool) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_to = udp.local_addr().unwrap();
    while !stop.load(Ordering::Relaxed) {
        // connect, accept, write, close: each goes through its own path.
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        c.write_all(b"x").unwrap();
        let _ = c.write_vectored(&[std::io::IoSlice::new(b"y")]);
        if let Ok((s, _)) = listener.accept() {
            drop(s);
        }
        drop(c);
        udp.send_to(b"z", udp_to).unwrap();
        let mut buf = [0u8; 8];
        udp.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let _ = udp.recv_from(&mut buf);
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Each entry stack is taken into its own call's slot and travels in that
/// call's record: whatever the number of distinct stacks and however long
/// the run, every record carries its stack (a shared stack map kept the
/// stacks of calls never read, filled, and lost stacks to collisions).
#[test]
fn every_record_carries_its_own_entry_stack() {
    common::skip_unless_root!("needs root to load eBPF programs");
    let netlat = Netlat::start(&["slow", "net_rx_action", "0", "--stack", "--json"]);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| varied_traffic(&stop));
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
    });
    let out = netlat.interrupt();
    assert!(out.success, "netlat failed: {}", out.stderr);
    let recs = records(&out.stdout);
    let mut distinct = BTreeSet::new();
    let mut without = 0;
    for r in &recs {
        match r["stack"].as_array() {
            Some(frames) if !frames.is_empty() => {
                distinct.insert(format!("{frames:?}"));
            }
            _ => without += 1,
        }
    }
    println!(
        "{} records, {} distinct entry stacks, {without} without one; {}",
        recs.len(),
        distinct.len(),
        out.stderr.lines().last().unwrap_or("")
    );
    assert!(recs.len() >= 100, "too few records to tell: {}", recs.len());
    assert!(
        distinct.len() >= 3,
        "too few distinct stacks: {}",
        distinct.len()
    );
    assert_eq!(without, 0, "records without their entry stack");
    assert!(
        !out.stderr.contains("stacks could not be taken"),
        "{}",
        out.stderr
    );
}

/// Printing stacks is slower than the kernel fills the buffer: a stop must
/// not wait for the buffer to drain, and the programs must come off first.
#[test]
fn stack_run_stops_promptly_under_load() {
    common::skip_unless_root!("needs root to load eBPF programs");
    for args in [
        &["slow", "net_rx_action", "0"][..],
        &["slow", "net_rx_action", "0", "--stack"],
    ] {
        let netlat = Netlat::start(args);
        let stop = AtomicBool::new(false);
        let (elapsed, out) = std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        loopback::run_for(Duration::from_millis(200));
                    }
                });
            }
            std::thread::sleep(Duration::from_secs(2));
            let asked = Instant::now();
            let out = netlat.interrupt();
            let elapsed = asked.elapsed();
            stop.store(true, Ordering::Relaxed);
            (elapsed, out)
        });
        assert!(out.success, "netlat failed: {}", out.stderr);
        let s = summary(&out.stderr);
        println!("{args:?}: stopped {elapsed:?} after SIGINT; {s:?}");
        // Asked of it: 0.5 s. A second of slack for a busy test machine;
        // the unbounded drain took 0.4 to 40 s here.
        assert!(
            elapsed < Duration::from_secs(1),
            "{args:?}: {elapsed:?} to stop after SIGINT ({s:?})"
        );
        assert_eq!(s.over, s.timed, "{s:?}");
        assert_eq!(
            s.printed + s.lost + s.unprinted,
            s.over,
            "every record accounted for: {s:?}"
        );
    }
}

/// The closing line goes to stderr whatever became of stdout.
#[test]
fn the_closing_line_survives_a_failed_stdout() {
    common::skip_unless_root!("needs root to load eBPF programs");
    // Three runs of 1, 0.5 and 1 s, each loading its programs first (about
    // a second in a debug build): traffic outlasts all three.
    let traffic = std::thread::spawn(|| loopback::run_for(Duration::from_secs(8)));
    // A full device: an error after the counts.
    let full = Command::new(common::BIN)
        .args(["slow", "net_rx_action", "0", "1"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&full.stderr);
    println!("/dev/full: {stderr}");
    assert!(!full.status.success(), "{stderr}");
    let s = summary(&stderr);
    assert_eq!(s.printed + s.lost + s.unprinted, s.over, "{s:?}");
    assert!(s.printed == 0 && s.unprinted > 0, "{s:?}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .contains("No space left on device"),
        "{stderr}"
    );
    // stderr on a full device too: nothing can be said, but no panic
    // (exit 101) either; stdout's error is the exit status.
    let mute = Command::new(common::BIN)
        .args(["slow", "net_rx_action", "0", "0.5"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(std::fs::File::create("/dev/full").unwrap())
        .status()
        .unwrap();
    assert_eq!(mute.code(), Some(1), "stdout and stderr on /dev/full");
    // A pipe closed by its reader (`| head`): a normal exit, counts said.
    let mut child = Command::new(common::BIN)
        .args(["slow", "net_rx_action", "0", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let closed = child.wait_with_output().unwrap();
    traffic.join().unwrap();
    let stderr = String::from_utf8_lossy(&closed.stderr);
    println!("closed pipe: {stderr}");
    assert!(closed.status.success(), "{stderr}");
    let s = summary(&stderr);
    assert!(s.over > 0 && s.unprinted > 0, "{s:?}");
}
