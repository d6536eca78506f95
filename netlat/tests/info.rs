//! `netlat info` on the host kernel, against what is known of it (see the
//! README's platform notes): no kprobes, fentry refused, raw_tp, tp_btf,
//! perf events and BTF available. Its backend pick must be the one
//! `histogram` then makes. Root (it loads programs); without root the
//! answers that need it must say so.

mod common;

use std::time::Duration;

use common::{is_root, run, skip};
use netlat_testkit::netlat::wait_until_unloaded;
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
    if !is_root() {
        return skip("netlat info loads programs to probe the kernel: needs root");
    }
    let info = info_json(&run(&["info", "--json"]));
    println!("{info:#}");
    let detail = |key: &str| {
        info["capabilities"][key]["detail"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(status(&info, "kprobes"), "no");
    assert!(
        detail("kprobes").contains("CONFIG_KPROBES"),
        "{}",
        detail("kprobes")
    );
    assert_eq!(status(&info, "kretprobe_maxactive"), "no");
    assert_eq!(status(&info, "fentry"), "no");
    assert!(detail("fentry").contains("refused"), "{}", detail("fentry"));
    for yes in [
        "btf",
        "tp_btf",
        "raw_tp",
        "perf_events",
        "ring_buffer",
        "bpf_stats",
    ] {
        assert_eq!(status(&info, yes), "yes", "{yes}: {}", detail(yes));
    }
    // 6.18 has the kprobe link's missed field, but no kprobes to use it.
    assert_eq!(status(&info, "link_missed"), "no");
    assert!(
        detail("link_missed").contains("no kprobes"),
        "{}",
        detail("link_missed")
    );
    assert_eq!(info["root"], true);

    // The pick for net_rx_action is what histogram then uses.
    let picked = &info["backends"]["net_rx_action"];
    assert_eq!(picked["status"], "yes", "{picked}");
    let traced = run(&["histogram", "net_rx_action", "0.2", "--json"]);
    assert!(traced.success, "{}", traced.stderr);
    let report: Value = serde_json::from_str(&traced.stdout).unwrap();
    assert_eq!(picked["backend"], report["backend"]);
    assert_eq!(picked["backend"], "raw_tp");

    // tcp_collapse: neither function backend works here, and info gives
    // the same reasons histogram's one-line error does.
    let collapse = &info["backends"]["tcp_collapse"];
    assert_eq!(collapse["status"], "no", "{collapse}");
    let reason = collapse["reason"].as_str().unwrap();
    let refused = run(&["histogram", "tcp_collapse", "0.2"]);
    assert!(!refused.success);
    assert!(
        refused.stderr.contains(reason),
        "info said '{reason}', histogram said '{}'",
        refused.stderr
    );
    assert!(
        reason.contains("fentry") && reason.contains("kprobe"),
        "{reason}"
    );

    let left = wait_until_unloaded(Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "netlat info left programs loaded: {left:?}"
    );
}

#[test]
fn info_text_lists_every_check() {
    if !is_root() {
        return skip("netlat info loads programs to probe the kernel: needs root");
    }
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
    assert!(
        out.stdout.contains("  net_rx_action  raw_tp "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  tcp_collapse   none "),
        "{}",
        out.stdout
    );
}

#[test]
fn info_without_root_says_which_answers_need_it() {
    if !is_root() {
        return skip("run as root: the test drops to nobody itself");
    }
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
    assert_eq!(status(&info, "btf"), "yes");
    assert_eq!(status(&info, "kprobes"), "no");
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
