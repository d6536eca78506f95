//! `netlat info` on the running kernel, against what the kernel's own
//! files say (the kprobe PMU, the BTF file) and what every kernel netlat
//! supports has (raw_tp, perf events, the ring buffer); on this project's
//! CI host that is no kprobes and fentry refused, on a contributor's
//! laptop it may be both. Each backend pick must be the one `histogram`
//! then makes, or, where info says none works, histogram must refuse for
//! the same reason. Root (it loads programs); without root the answers
//! that need it must say so.

mod common;

use std::time::Duration;

use common::{run, skip};
use netlat_testkit::{kernel_facts::KernelFacts, netlat::wait_until_unloaded};
use serde_json::Value;

fn info_json(out: &common::Output) -> Value {
    assert!(out.success, "netlat info failed: {}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", out.stdout))
}

fn status<'a>(info: &'a Value, key: &str) -> &'a str {
    info["capabilities"][key]["status"]
        .as_str()
        .unwrap_or_else(|| panic!("no capability {key} in {info:#}"))
}

#[test]
fn info_matches_the_host_kernel_and_histogram() {
    common::skip_unless_root!("netlat info loads programs to probe the kernel: needs root");
    let info = info_json(&run(&["info", "--json"]));
    println!("{info:#}");
    let detail = |key: &str| {
        info["capabilities"][key]["detail"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let kprobes = has_kprobe_pmu();
    if kprobes {
        assert_eq!(status(&info, "kprobes"), "yes", "{}", detail("kprobes"));
    } else {
        assert_eq!(status(&info, "kprobes"), "no");
        assert!(
            detail("kprobes").contains("CONFIG_KPROBES"),
            "{}",
            detail("kprobes")
        );
        assert_eq!(status(&info, "kretprobe_maxactive"), "no");
        // 6.18 has the kprobe link's missed field, but no kprobes to use it.
        assert_eq!(status(&info, "link_missed"), "no");
        assert!(
            detail("link_missed").contains("no kprobes"),
            "{}",
            detail("link_missed")
        );
    }
    // Whether this kernel lets fentry attach only loading says; info must
    // answer one way or the other, and say why when it is no.
    match status(&info, "fentry") {
        "yes" => {}
        "no" => assert!(detail("fentry").contains("refused"), "{}", detail("fentry")),
        other => panic!("fentry: {other}: {}", detail("fentry")),
    }
    let btf = if has_btf() { "yes" } else { "no" };
    assert_eq!(status(&info, "btf"), btf, "{}", detail("btf"));
    assert_eq!(status(&info, "tp_btf"), btf, "{}", detail("tp_btf"));
    for yes in ["raw_tp", "perf_events", "ring_buffer", "bpf_stats"] {
        assert_eq!(status(&info, yes), "yes", "{yes}: {}", detail(yes));
    }
    assert_eq!(info["root"], true);

    // net_rx_action has the softirq tracepoints on every kernel netlat
    // supports, and raw_tp is the first of them (raw_tp is "yes" above).
    let picked = &info["backends"]["net_rx_action"];
    assert_eq!(picked["status"], "yes", "{picked}");
    assert_eq!(picked["backend"], "raw_tp");
    assert_pick_is_histograms(&info, "net_rx_action");
    assert_pick_is_histograms(&info, "tcp_collapse");
    if !kprobes && status(&info, "fentry") == "no" {
        // This project's CI host: neither function backend works, and the
        // reason names both.
        let reason = info["backends"]["tcp_collapse"]["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.contains("fentry") && reason.contains("kprobe"),
            "{reason}"
        );
    }

    let left = wait_until_unloaded(Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "netlat info left programs loaded: {left:?}"
    );
}

fn has_kprobe_pmu() -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
}

fn has_btf() -> bool {
    std::path::Path::new("/sys/kernel/btf/vmlinux").exists()
}

/// info's pick for `function` is the backend histogram then uses; where
/// info says nothing works, histogram refuses with info's reason.
fn assert_pick_is_histograms(info: &Value, function: &str) {
    let picked = &info["backends"][function];
    let traced = run(&["histogram", function, "0.2", "--json"]);
    match picked["status"].as_str() {
        Some("yes") => {
            assert!(traced.success, "{function}: {}", traced.stderr);
            let report: Value = serde_json::from_str(&traced.stdout).unwrap();
            assert_eq!(picked["backend"], report["backend"], "{function}");
        }
        Some("no") => {
            let reason = picked["reason"].as_str().unwrap();
            assert!(!traced.success, "{function}: info said no, histogram ran");
            assert!(
                traced.stderr.contains(reason),
                "info said '{reason}', histogram said '{}'",
                traced.stderr
            );
        }
        other => panic!("{function}: status {other:?} in {picked}"),
    }
}

#[test]
fn info_text_lists_every_check() {
    common::skip_unless_root!("netlat info loads programs to probe the kernel: needs root");
    let out = run(&["info"]);
    assert!(out.success, "{}", out.stderr);
    for row in [
        "kprobes",
        "fentry/fexit",
        "raw_tp",
        "BTF",
        "ring buffer",
        "link missed counts",
    ] {
        assert!(
            out.stdout.contains(&format!("\n  {row} ")),
            "no row {row}:\n{}",
            out.stdout
        );
    }
    // Each function's row names the backend the JSON picks on this kernel.
    let facts = KernelFacts::probe(std::path::Path::new(common::BIN));
    for function in ["net_rx_action", "tcp_collapse"] {
        let pick = facts.backend(function).unwrap_or("none");
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("  {function} "))
                    && l.split_whitespace().nth(1) == Some(pick)),
            "no {function} row with {pick}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn info_without_root_says_which_answers_need_it() {
    common::skip_unless_root!("run as root: the test drops to nobody itself");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args([common::BIN, "info", "--json"])
        .output();
    let Ok(out) = out else {
        return skip("setpriv (util-linux) is not installed");
    };
    let out = common::Output {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let info = info_json(&out);
    assert_eq!(info["root"], false);
    // Files settle these without root ...
    assert_eq!(status(&info, "btf"), if has_btf() { "yes" } else { "no" });
    let kprobes = if has_kprobe_pmu() { "yes" } else { "no" };
    assert_eq!(status(&info, "kprobes"), kprobes);
    // ... loading programs and creating maps cannot be tried.
    for key in [
        "fentry",
        "tp_btf",
        "raw_tp",
        "perf_events",
        "ring_buffer",
        "bpf_stats",
    ] {
        assert_eq!(status(&info, key), "needs_root", "{key}");
    }
    assert_eq!(info["backends"]["net_rx_action"]["status"], "needs_root");
}
