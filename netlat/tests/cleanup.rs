//! Nothing of netlat stays in the kernel after it exits, whatever way it
//! exits: its programs are referenced only by its own file descriptors.

mod common;

use std::time::Duration;

use common::Netlat;
use netlat_testkit::netlat::{loaded_programs, wait_until_unloaded};

fn assert_all_gone(how: &str) {
    let left = wait_until_unloaded(Duration::from_secs(5));
    assert!(left.is_empty(), "{how}: programs left attached: {left:?}");
    println!("{how}: no netlat program left");
}

#[test]
fn nothing_stays_loaded_after_sigkill_sigint_or_a_fixed_window() {
    common::skip_unless_root!("needs root to load eBPF programs");
    assert_all_gone("before");
    for (how, signal) in [("SIGKILL", libc::SIGKILL), ("SIGINT", libc::SIGINT)] {
        let netlat = Netlat::start(&["histogram", "net_rx_action"]);
        let loaded = loaded_programs();
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
