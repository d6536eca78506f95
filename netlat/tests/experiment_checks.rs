//! `experiment` checks its sysctl before run 1: a bad value or a read-only
//! key fails at once, in one line, instead of after a whole run.

mod common;

use std::time::{Duration, Instant};

use common::{Netlat, is_root, run, skip};

#[test]
fn bad_value_and_read_only_key_fail_before_run_1() {
    if !is_root() {
        return skip("needs root (experiment checks privileges first)");
    }
    let budget = std::fs::read_to_string("/proc/sys/net/core/netdev_budget").unwrap();
    for (sysctl, expected) in [
        (
            "net.core.netdev_budget=lots",
            "Error: cannot set net.core.netdev_budget = lots: Invalid argument (checked before run 1; nothing was changed)",
        ),
        (
            "kernel.ngroups_max=5",
            "Error: kernel.ngroups_max is read-only (its /proc/sys file has no write permission) (checked before run 1; nothing was changed)",
        ),
    ] {
        let t = Instant::now();
        let out = run(&[
            "experiment",
            "net_rx_action",
            "--sysctl",
            sysctl,
            "--duration",
            "5",
        ]);
        let took = t.elapsed();
        println!("{sysctl}: {took:?}: {}", out.stderr);
        assert!(!out.success);
        assert_eq!(out.stderr.trim_end(), expected);
        assert!(took < Duration::from_secs(2), "{sysctl} took {took:?}");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/core/netdev_budget").unwrap(),
        budget
    );
}

/// A failure after run 1 still shows run 1: here a second experiment on the
/// same key finds the first one's change in force when its own run 1 ends.
#[test]
fn a_later_failure_prints_run_1_first() {
    if !is_root() {
        return skip("needs root to load eBPF and set sysctls");
    }
    const PATH: &str = "/proc/sys/net/core/netdev_budget";
    let original = std::fs::read_to_string(PATH).unwrap().trim().to_owned();
    let changed = if original == "600" { "601" } else { "600" };
    let sysctl = format!("net.core.netdev_budget={changed}");
    let args = [
        "experiment",
        "net_rx_action",
        "--sysctl",
        &sysctl,
        "--duration",
        "3",
    ];
    // The second starts once the first is attached, so the first's run 1
    // (3 s from its attach) surely ends first. A fixed 700 ms head start
    // lost on a loaded CI machine: the first, loading on a cold cache,
    // attached later than the second and found the second's change.
    let first = Netlat::start(&args);
    let second = run(&args);
    let first = first.wait(Duration::from_secs(60));
    let now = std::fs::read_to_string(PATH).unwrap().trim().to_owned();
    if now != original {
        std::fs::write(PATH, &original).unwrap();
    }
    println!(
        "first:\n{}{}\nsecond:\n{}{}",
        first.stderr, first.stdout, second.stderr, second.stdout
    );
    assert!(first.success, "{}", first.stderr);
    assert_eq!(now, original);
    assert!(!second.success);
    assert!(
        second
            .stderr
            .lines()
            .last()
            .unwrap()
            .contains("net.core.netdev_budget is being changed by another netlat (pid"),
        "{}",
        second.stderr
    );
    assert!(
        second.stdout.contains("before") && second.stdout.contains("p99"),
        "run 1 is printed: {}",
        second.stdout
    );
}
