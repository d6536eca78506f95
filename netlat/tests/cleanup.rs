//! Nothing of netlat stays in the kernel after it exits, whatever way it
//! exits: its programs are referenced only by its own file descriptors.

mod common;

use std::time::{Duration, Instant};

use common::{Netlat, is_root, skip};

/// Names of the loaded BPF programs that are netlat's (the kernel keeps the
/// first 15 bytes of a program's name).
fn netlat_programs() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_owned))
        .filter(|name| name.starts_with("netlat_"))
        .collect()
}

fn assert_all_gone(how: &str) {
    // Programs are freed after an RCU grace period, not at close().
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = netlat_programs();
        if left.is_empty() {
            println!("{how}: no netlat program left");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{how}: programs left attached: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn nothing_stays_loaded_after_sigkill_sigint_or_a_fixed_window() {
    if !is_root() {
        return skip("needs root to load eBPF programs");
    }
    assert_all_gone("before");
    for (how, signal) in [("SIGKILL", libc::SIGKILL), ("SIGINT", libc::SIGINT)] {
        let netlat = Netlat::start(&["histogram", "net_rx_action"]);
        let loaded = netlat_programs();
        println!("while attached: {loaded:?}");
        assert_eq!(
            loaded.len(),
            2,
            "entry and exit programs while attached: {loaded:?}"
        );
        let out = match signal {
            libc::SIGKILL => netlat.kill(),
            _ => netlat.interrupt(),
        };
        assert_eq!(
            out.success,
            signal != libc::SIGKILL,
            "{how}: {}",
            out.stderr
        );
        assert_all_gone(how);
    }
    let out = common::run(&["histogram", "net_rx_action", "0.3"]);
    assert!(out.success, "{}", out.stderr);
    assert_all_gone("fixed window");
}
