//! `netlat flamegraph` on this host's real kernel: real samples, real
//! traffic, the SVG parsed back as XML.

mod common;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::run;
use netlat_testkit::{loopback, scratch::Scratch};

fn kept(stderr: &str) -> u64 {
    stderr
        .split("samples kept")
        .next()
        .and_then(|s| s.rsplit(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no kept count in: {stderr}"))
}

fn assert_svg(path: &PathBuf) -> String {
    let svg = std::fs::read_to_string(path).expect("SVG written");
    // inferno's SVG carries the standard SVG 1.1 DOCTYPE.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&svg, options)
        .unwrap_or_else(|e| panic!("SVG is not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    svg
}

#[test]
fn during_net_rx_action_every_stack_contains_it() {
    common::skip_unless_root!("needs root to load eBPF programs");
    let dir = Scratch::new("flamegraph");
    let (svg, folded) = (dir.join("rx.svg"), dir.join("rx.folded"));
    let traffic = std::thread::spawn(|| loopback::run_for(Duration::from_secs(4)));
    let out = run(&[
        "flamegraph",
        "--during",
        "net_rx_action",
        "--duration",
        "3",
        "--frequency",
        "2000",
        "-o",
        svg.to_str().unwrap(),
        "--folded",
        folded.to_str().unwrap(),
    ]);
    traffic.join().expect("traffic");
    println!("{}", out.stderr);
    assert!(out.success, "{}", out.stderr);
    assert!(kept(&out.stderr) > 0, "{}", out.stderr);
    let svg_text = assert_svg(&svg);
    assert!(svg_text.contains("Kernel stacks during net_rx_action"));
    let folded = std::fs::read_to_string(&folded).expect("folded written");
    assert!(!folded.is_empty());
    let mut total = 0;
    for line in folded.lines() {
        let (stack, n) = line.rsplit_once(' ').expect("stack count");
        assert!(
            stack.split(';').any(|f| f == "net_rx_action"),
            "stack without net_rx_action: {line}"
        );
        total += n.parse::<u64>().expect("count");
    }
    assert_eq!(
        total,
        kept(&out.stderr),
        "folded counts add up to the kept samples"
    );
    // Without --slower-than the table ranks by share of all in-call samples.
    assert!(
        out.stdout
            .starts_with("Where net_rx_action spent its time (")
            || out.stdout.starts_with("Only "),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("fast"), "{}", out.stdout);
}

/// The median net_rx_action call under the ping-pong load, in ns.
fn median_call_ns() -> u64 {
    let traffic = std::thread::spawn(|| loopback::run_for(Duration::from_secs(3)));
    let out = run(&["histogram", "--json", "net_rx_action", "2"]);
    traffic.join().expect("traffic");
    assert!(out.success, "{}", out.stderr);
    let r: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    r["percentiles_ns"]["p50"]
        .as_u64()
        .unwrap_or_else(|| panic!("no p50: {}", out.stdout))
}

#[test]
fn slower_than_under_the_median_ranks_with_fast_and_slow_adding_up() {
    common::skip_unless_root!("needs root to load eBPF programs");
    let median = median_call_ns();
    // p50 is a bucket's upper bound: half of it is surely under the median,
    // so both slow and fast calls exist.
    let threshold = format!("{}ns", (median / 2).max(1));
    let dir = Scratch::new("flamegraph");
    let (svg, diff) = (dir.join("rank.svg"), dir.join("rank-diff.svg"));
    let traffic = std::thread::spawn(|| loopback::run_for(Duration::from_secs(4)));
    let out = run(&[
        "flamegraph",
        "--during",
        "net_rx_action",
        "--slower-than",
        &threshold,
        "--duration",
        "3",
        "--frequency",
        "4999",
        "--json",
        "-o",
        svg.to_str().unwrap(),
        "--diff",
        diff.to_str().unwrap(),
    ]);
    traffic.join().expect("traffic");
    println!("median {median} ns, threshold {threshold}\n{}", out.stderr);
    assert!(out.success, "{}", out.stderr);
    let r: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    println!("{r:#}");
    let n = |v: &serde_json::Value| {
        v.as_u64()
            .unwrap_or_else(|| panic!("not a count: {v} in {r}"))
    };
    let (slow, fast) = (n(&r["slow"]["samples"]), n(&r["fast"]["samples"]));
    assert!(
        n(&r["slow"]["calls"]) > 0 && n(&r["fast"]["calls"]) > 0,
        "{r}"
    );
    assert_eq!(slow, kept(&out.stderr), "JSON and summary line agree");
    // The kernel's own count of in-call samples, against where each went.
    assert_eq!(
        slow + fast + n(&r["undecided_samples"]) + n(&r["lost_in_call_samples"]),
        n(&r["in_call_samples"]),
        "{r}"
    );
    assert!(slow + fast > 0, "{r}");
    assert_eq!(
        n(&r["lost_in_call_samples"]),
        0,
        "nothing lost under light load: {r}"
    );
    let ranking = r["ranking"].as_array().expect("ranking");
    assert!(!ranking.is_empty(), "something is ranked: {r}");
    for row in ranking {
        // With no fast-call sample there is no fast share to give.
        let keys: &[&str] = if fast > 0 {
            &["pct", "fast_pct"]
        } else {
            &["pct"]
        };
        for &key in keys {
            let share = row[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key} in {row}"));
            assert!((0.0..=100.0).contains(&share), "{row}");
        }
        assert_ne!(row["function"], "net_rx_action", "{row}");
    }
    assert!(r["sample_cost_ns"].as_f64().is_some_and(|c| c > 0.0), "{r}");
    assert_svg(&diff);
}

#[test]
fn all_cpus_shows_the_tests_own_busy_loop() {
    common::skip_unless_root!("needs root to load eBPF programs");
    let dir = Scratch::new("flamegraph");
    let (svg, folded) = (dir.join("all.svg"), dir.join("all.folded"));
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = Arc::clone(&stop);
        // statx() walks a path in the kernel: samples land in vfs_statx.
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::metadata("/proc/self/status");
            }
        })
    };
    let out = run(&[
        "flamegraph",
        "--duration",
        "2",
        "--frequency",
        "499",
        "-o",
        svg.to_str().unwrap(),
        "--folded",
        folded.to_str().unwrap(),
    ]);
    stop.store(true, Ordering::Relaxed);
    busy.join().expect("busy loop");
    println!("{}", out.stderr);
    assert!(out.success, "{}", out.stderr);
    assert_svg(&svg);
    let folded = std::fs::read_to_string(&folded).expect("folded written");
    let statx: u64 = folded
        .lines()
        .filter(|l| l.contains("statx"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    println!("samples in statx: {statx}");
    assert!(
        statx > 10,
        "the busy loop's statx stacks should appear:\n{folded}"
    );
}

#[test]
fn flamegraph_errors_are_one_line() {
    for (args, expected) in [
        (
            vec!["flamegraph", "--slower-than", "1ms"],
            "--during <FUNCTION>",
        ),
        (
            vec!["flamegraph", "--frequency", "0"],
            "0 Hz is out of range: 1 to 10000 samples per second",
        ),
        (
            vec!["flamegraph", "--frequency", "20000"],
            "20000 Hz is out of range: 1 to 10000 samples per second",
        ),
        (
            vec!["flamegraph", "--frequency", "fast"],
            "'fast' is not a whole number of samples per second (1 to 10000)",
        ),
    ] {
        let out = run(&args);
        assert!(!out.success);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains(expected), "{}", out.stderr);
    }
    common::skip_unless_root!("the rest needs root");
    let out = run(&[
        "flamegraph",
        "--duration",
        "1",
        "-o",
        "/nonexistent/dir/x.svg",
    ]);
    assert!(!out.success);
    assert_eq!(
        out.stderr.trim_end(),
        "Error: cannot write /nonexistent/dir/x.svg: No such file or directory"
    );
}

#[test]
fn slower_than_keeps_only_samples_of_slow_calls() {
    common::skip_unless_root!("needs root to load eBPF programs");
    // Every call is slower than 1 ns: all samples inside calls are kept.
    let dir = Scratch::new("flamegraph");
    let (svg, folded) = (dir.join("slow.svg"), dir.join("slow.folded"));
    let traffic = std::thread::spawn(|| loopback::run_for(Duration::from_secs(5)));
    let out = run(&[
        "flamegraph",
        "--during",
        "net_rx_action",
        "--slower-than",
        "1ns",
        "--duration",
        "2",
        "--frequency",
        "2000",
        "-o",
        svg.to_str().unwrap(),
        "--folded",
        folded.to_str().unwrap(),
    ]);
    println!("{}", out.stderr);
    assert!(out.success, "{}", out.stderr);
    assert!(kept(&out.stderr) > 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("dropped") && out.stderr.contains(" 0 in calls faster than 1ns"),
        "{}",
        out.stderr
    );
    let text = std::fs::read_to_string(&folded).expect("folded");
    assert!(text.lines().all(|l| l.contains("net_rx_action")));

    // No call lasts an hour: every held sample is dropped at its call's exit.
    let out = run(&[
        "flamegraph",
        "--during",
        "net_rx_action",
        "--slower-than",
        "1h",
        "--duration",
        "2",
        "--frequency",
        "2000",
        "-o",
        svg.to_str().unwrap(),
    ]);
    traffic.join().expect("traffic");
    println!("{}", out.stderr);
    assert!(!out.success);
    assert!(
        out.stderr.contains("no samples were kept"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.lines().last().unwrap().starts_with("Error: "),
        "{}",
        out.stderr
    );
}
