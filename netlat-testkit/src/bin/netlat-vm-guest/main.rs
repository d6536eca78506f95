//! Runs inside the QEMU guest (as the initramfs's test driver): netlat's
//! kprobe/fentry tests against a kernel that has them. It first prints
//! `netlat-vm: planned N` and `netlat-vm: plan NAME,...`, then one line per test,
//! `netlat-vm: test NAME ok|skip|FAIL FIGURES`; xtask's VM runner turns
//! those into the host's pass or fail.
//!
//! One module per subject; a new test is a function in its module and a
//! line in [`TESTS`].

mod capabilities;
mod capture;
mod collapse;
mod generator_experiment;
mod info;
mod lifecycle;
mod missed;
mod net_rx;
mod recursion;
mod sampling;
mod slow;
mod story;
mod sysctl;
mod timing;
mod verdict;

use std::{panic, time::Instant};

use verdict::{Outcome, Test};

pub const NETLAT: &str = "/bin/netlat";

const TESTS: &[(&str, Test)] = &[
    (
        "kprobe_net_rx_action_matches_softirqs",
        timing::kprobe_net_rx_action,
    ),
    (
        "fentry_net_rx_action_or_fallback",
        timing::fentry_net_rx_action,
    ),
    ("tcp_collapse_counted_under_pruning", collapse::tcp_collapse),
    ("tcp_sendmsg_durations_plausible", timing::tcp_sendmsg),
    (
        "sigkill_leaves_nothing_attached",
        lifecycle::sigkill_cleanup,
    ),
    (
        "flamegraph_during_tcp_collapse",
        collapse::flamegraph_tcp_collapse,
    ),
    (
        "flamegraph_during_net_rx_action",
        sampling::flamegraph_during_net_rx_action,
    ),
    (
        "blacklisted_function_one_line_error",
        lifecycle::blacklisted_function,
    ),
    ("by_rcvbuf_band_matches_so_rcvbuf", collapse::by_rcvbuf),
    (
        "experiment_tcp_rmem_records_both_runs",
        collapse::experiment_tcp_rmem,
    ),
    ("serve_defaults_with_kprobes", lifecycle::serve_defaults),
    (
        "slow_tcp_collapse_names_the_socket",
        slow::slow_tcp_collapse,
    ),
    ("slow_stacks_kept_over_many_stacks", slow::slow_stacks_kept),
    (
        "info_agrees_with_histogram",
        info::info_agrees_with_histogram,
    ),
    (
        "kretprobe_misses_reported",
        missed::kretprobe_misses_reported,
    ),
    (
        "fentry_nested_skip_not_mistimed",
        recursion::nested_skip_not_mistimed,
    ),
    (
        "story_tcp_rmem_cause_cure_and_culprit",
        story::rmem_cause_and_cure,
    ),
    (
        "story_caught_by_the_flight_recorder",
        capture::story_captured,
    ),
    (
        "slow_net_rx_packets_on_every_backend",
        net_rx::slow_net_rx_packets_on_every_backend,
    ),
    (
        "starved_ksoftirqd_raises_the_wait",
        net_rx::starved_ksoftirqd_raises_the_wait,
    ),
];

/// The guest kernel's release, e.g. "6.1.0-27-cloud-amd64".
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `netlat_tests=a,b` on the kernel command line runs only those (the host
/// runs a subset where emulation is slow); names that match no test are
/// returned too, to fail loudly rather than shrink the run.
fn selected(cmdline: &str) -> (Vec<(&'static str, Test)>, Vec<String>) {
    let Some(list) = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("netlat_tests="))
    else {
        return (TESTS.to_vec(), Vec::new());
    };
    let wanted: Vec<&str> = list.split(',').filter(|n| !n.is_empty()).collect();
    let tests = TESTS
        .iter()
        .filter(|(name, _)| wanted.contains(name))
        .copied()
        .collect();
    let unknown = wanted
        .iter()
        .filter(|w| !TESTS.iter().any(|(name, _)| name == *w))
        .map(|w| w.to_string())
        .collect();
    (tests, unknown)
}

fn main() {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    println!("netlat-vm: cmdline {}", cmdline.trim());
    if cmdline.contains("netlat_experiment") || std::env::args().any(|a| a == "--experiment") {
        generator_experiment::run();
        println!("netlat-vm: done");
        return;
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("netlat-vm: kernel {}", kernel.trim());
    println!("netlat-vm: capabilities {}", capabilities::get());
    let (tests, unknown) = selected(&cmdline);
    println!("netlat-vm: planned {}", tests.len() + unknown.len());
    // By name too, so the host can resume after a kernel panic.
    let names: Vec<&str> = unknown
        .iter()
        .map(String::as_str)
        .chain(tests.iter().map(|(name, _)| *name))
        .collect();
    println!("netlat-vm: plan {}", names.join(","));
    let mut failed = 0;
    for name in unknown {
        failed += 1;
        println!("netlat-vm: test {name} FAIL (0.0s) netlat_tests= names no such test");
    }
    for (name, test) in tests {
        let started = Instant::now();
        let result = panic::catch_unwind(test).unwrap_or_else(|p| {
            Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()))
        });
        let took = started.elapsed().as_secs_f64();
        match result {
            Ok(Outcome::Pass(figures)) => {
                println!("netlat-vm: test {name} ok ({took:.1}s) {figures}")
            }
            Ok(Outcome::Skip(why)) => println!("netlat-vm: test {name} skip ({took:.1}s) {why}"),
            Err(why) => {
                failed += 1;
                println!(
                    "netlat-vm: test {name} FAIL ({took:.1}s) {}",
                    why.replace('\n', " | ")
                );
            }
        }
        // `netlat_crash_after=NAME`: the host runner's resume after a
        // kernel panic, exercised for real (sysrq's crash is a panic).
        if cmdline
            .split_whitespace()
            .any(|w| w.strip_prefix("netlat_crash_after=") == Some(name))
        {
            let _ = std::fs::write("/proc/sysrq-trigger", "c");
        }
    }
    println!("netlat-vm: done");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_without_a_filter() {
        let (tests, unknown) = selected("console=ttyS0 quiet");
        assert_eq!(tests.len(), TESTS.len());
        assert!(unknown.is_empty());
    }

    #[test]
    fn a_filter_runs_its_tests_and_names_the_unknown() {
        let (tests, unknown) = selected(
            "console=ttyAMA0 netlat_tests=sigkill_leaves_nothing_attached,no_such_test quiet",
        );
        let names: Vec<&str> = tests.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["sigkill_leaves_nothing_attached"]);
        assert_eq!(unknown, ["no_such_test"]);
    }
}
