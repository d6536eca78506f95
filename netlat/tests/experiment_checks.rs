//! `experiment` checks its sysctl before run 1: a bad value or a read-only
//! key fails at once, in one line, instead of after a whole run.

mod common;

use std::time::{Duration, Instant};

use common::{Netlat, run};

#[test]
fn bad_value_and_read_only_key_fail_before_run_1() {
    common::skip_unless_root!("needs root (experiment checks privileges first)");
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

/// A second experiment on a key the first one holds is refused at once,
/// naming the first one's pid, whichever phase the first is in (here its
/// run 1): it never reads the first one's value as its original.
#[test]
fn a_second_experiment_on_the_same_key_is_refused_at_once() {
    common::skip_unless_root!("needs root to load eBPF and set sysctls");
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
        "1",
    ];
    // The second starts once the first is attached for its run 1.
    let first = Netlat::start(&args);
    let first_pid = first.pid();
    let t = Instant::now();
    let second = run(&args);
    let took = t.elapsed();
    let first = first.wait(Duration::from_secs(60));
    let now = std::fs::read_to_string(PATH).unwrap().trim().to_owned();
    if now != original {
        std::fs::write(PATH, &original).unwrap();
    }
    println!(
        "first:\n{}{}\nsecond ({took:?}):\n{}{}",
        first.stderr, first.stdout, second.stderr, second.stdout
    );
    assert!(first.success, "{}", first.stderr);
    assert_eq!(now, original);
    assert!(!second.success);
    assert_eq!(
        second.stderr.trim_end(),
        format!(
            "Error: net.core.netdev_budget is being changed by another netlat (pid {}): wait for it to end",
            first_pid
        )
    );
    assert!(second.stdout.is_empty(), "{}", second.stdout);
    assert!(
        took < Duration::from_secs(1),
        "refused at once, took {took:?}"
    );
}
