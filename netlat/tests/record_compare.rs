//! Recorded runs (`histogram --output`) on the real host: the sysctls beside
//! the numbers are what `sysctl` prints, the kernel counters moved with the
//! traffic, and `netlat compare` reads the files back.

mod common;

use std::{process::Command, time::Duration};

use common::{Netlat, is_root, run, skip};
use netlat_testkit::loopback;
use serde_json::Value;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netlat-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

#[test]
fn recorded_run_carries_sysctls_and_counter_deltas() {
    if !is_root() {
        return skip("needs root to load eBPF programs");
    }
    let path = scratch("run.json");
    let netlat = Netlat::start(&[
        "histogram",
        "net_rx_action",
        "--output",
        path.to_str().unwrap(),
    ]);
    loopback::run_for(Duration::from_secs(2));
    let out = netlat.interrupt();
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains("Sysctls: "),
        "text output shows the sysctls: {}",
        out.stdout
    );
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("result file")).expect("JSON");
    let c = &r["conditions"];
    for (key, value) in c["sysctls_start"].as_object().expect("sysctls") {
        let Ok(printed) = Command::new("sysctl").args(["-n", key]).output() else {
            return skip("sysctl (procps) is not installed");
        };
        let printed = String::from_utf8_lossy(&printed.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match value.as_str() {
            Some(v) => assert_eq!(v, printed, "{key}"),
            None => assert!(
                printed.is_empty(),
                "{key} recorded absent but sysctl prints {printed}"
            ),
        }
    }
    assert_eq!(
        c["sysctls_start"]["net.ipv4.tcp_rmem"],
        c["sysctls_end"]["net.ipv4.tcp_rmem"]
    );
    for counter in [
        "PruneCalled",
        "TCPRcvCollapsed",
        "TCPBacklogDrop",
        "ListenOverflows",
    ] {
        assert!(c["netstat_delta"][counter].is_u64(), "{counter} recorded");
    }
    // Loopback ping-pong delivers about one packet per net_rx_action call.
    let count = r["count"].as_u64().unwrap();
    let processed: u64 = c["softnet_delta"]
        .as_array()
        .expect("softnet rows")
        .iter()
        .map(|row| row["processed"].as_u64().unwrap())
        .sum();
    println!("net_rx_action calls {count}, softnet processed {processed}");
    assert!(count > 1000);
    assert!(
        processed >= count / 2 && processed <= count * 4,
        "calls {count} vs processed {processed}"
    );

    // Two runs compare; different functions are refused unless forced.
    let second = scratch("second.json");
    std::fs::copy(&path, &second).expect("copy");
    let out = run(&["compare", path.to_str().unwrap(), second.to_str().unwrap()]);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("(x1.00)"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Sysctls: the recorded ones are the same in every run.")
    );
    let mut other: Value = r.clone();
    other["function"] = "tcp_collapse".into();
    std::fs::write(&second, other.to_string()).expect("write");
    let out = run(&["compare", path.to_str().unwrap(), second.to_str().unwrap()]);
    assert!(!out.success);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("use --force"), "{}", out.stderr);
    let out = run(&[
        "compare",
        "--force",
        "--json",
        path.to_str().unwrap(),
        second.to_str().unwrap(),
    ]);
    assert!(out.success, "{}", out.stderr);
    let json: Value = serde_json::from_str(&out.stdout).expect("comparison JSON");
    assert_eq!(json["functions"][1], "tcp_collapse");
}

#[test]
fn output_path_is_checked_before_tracing() {
    if !is_root() {
        return skip("needs root");
    }
    let out = run(&[
        "histogram",
        "net_rx_action",
        "1",
        "--output",
        "/nonexistent/dir/run.json",
    ]);
    assert!(!out.success);
    assert_eq!(
        out.stderr.trim_end(),
        "Error: cannot write /nonexistent/dir/run.json: No such file or directory"
    );
}
