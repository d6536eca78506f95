//! `netlat_experiment` on the kernel command line: try generator variants
//! and print the kernel's prune counters for each, instead of the tests.

use std::time::Duration;

use netlat_testkit::{collapse, netstat::Pruning};

pub fn run() {
    if std::fs::read_to_string("/proc/cmdline")
        .unwrap_or_default()
        .contains("netlat_experiment=autotuned")
    {
        return autotuned_variants();
    }
    if std::fs::read_to_string("/proc/cmdline")
        .unwrap_or_default()
        .contains("netlat_experiment=story_stacks")
    {
        return story_stacks();
    }
    use collapse::Recipe;
    let base = Recipe::default();
    let long = Recipe {
        first_stall: Duration::from_secs(3),
        second_stall: Duration::from_secs(3),
        ..base
    };
    let rcvbuf = |bytes| Recipe {
        shrunk_rcvbuf: bytes,
        ..base
    };
    let variants = [
        ("default_64k", base),
        ("rcvbuf_48k", rcvbuf(48 * 1024)),
        ("rcvbuf_32k", rcvbuf(32 * 1024)),
        ("rcvbuf_16k", rcvbuf(16 * 1024)),
        (
            "long_stalls_32k",
            Recipe {
                shrunk_rcvbuf: 32 * 1024,
                ..long
            },
        ),
        (
            "slow_drain_100_32k",
            Recipe {
                shrunk_rcvbuf: 32 * 1024,
                read_size: 100,
                ..base
            },
        ),
        (
            "pace_0_32k",
            Recipe {
                shrunk_rcvbuf: 32 * 1024,
                pace: Duration::ZERO,
                ..base
            },
        ),
    ];
    for (name, recipe) in variants {
        let pruning0 = Pruning::now();
        let drained = collapse::run_recipe(Duration::from_secs(4), recipe).drained;
        let pruning = pruning0.since();
        println!("netlat-vm: experiment {name} drained={drained} {pruning}");
    }
}

/// The autotuned generator's knobs under the story's two tcp_rmem
/// settings: how long the trickle takes to make the kernel collapse, and
/// how long tcp_collapse then runs.
fn autotuned_variants() {
    use netlat_testkit::{autotuned, netlat::Netlat};
    let set = |key: &str, value: &str| {
        std::fs::write(format!("/proc/sys/{}", key.replace('.', "/")), value).expect("sysctl")
    };
    set("net.ipv4.tcp_autocorking", "0");
    let tcp_mem = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem").unwrap_or_default();
    println!("netlat-vm: experiment tcp_mem {}", tcp_mem.trim());
    let base = autotuned::Knobs {
        trickle: Duration::from_secs(25),
        ..autotuned::Knobs::default()
    };
    for (rmem, chunk, bulk_ms) in [
        ("4096 1048576 2097152", 10, 600),
        ("4096 1048576 2097152", 400, 600),
        ("4096 5242880 33554432", 400, 600),
        ("4096 5242880 33554432", 800, 600),
        ("4096 5242880 33554432", 10, 600),
    ] {
        set("net.ipv4.tcp_rmem", rmem);
        let netlat = Netlat::start(crate::NETLAT, &["histogram", "--json", "tcp_collapse"]);
        let pruning0 = Pruning::now();
        let cycle = autotuned::one_cycle(autotuned::Knobs {
            chunk,
            bulk: Duration::from_millis(bulk_ms),
            ..base
        });
        let pruning = pruning0.since();
        let out = netlat.interrupt();
        let r: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        println!(
            "netlat-vm: experiment rmem={rmem:?} chunk={chunk} bulk={bulk_ms}ms: {cycle:?} {pruning} tcp_collapse count={} max_ns={} mean_ns={}",
            r["count"], r["max_ns"], r["mean_ns"]
        );
    }
}

/// The story's slow net_rx_action stacks in full, with the kallsyms lines
/// around a frame name given as `netlat_frame=NAME`: for a frame a kernel's
/// unwinder may have named wrongly.
fn story_stacks() {
    use netlat_testkit::{autotuned, netlat::Netlat};
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let frame = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("netlat_frame="))
        .unwrap_or("elfcorehdr_read")
        .to_owned();
    let restore = crate::sysctl::large_rmem().expect("sysctls");
    let generator = autotuned::spawn_held(crate::sysctl::sampling_knobs(), 0.9);
    generator.held(Duration::from_secs(30));
    let netlat = Netlat::start(
        crate::NETLAT,
        &[
            "flamegraph",
            "--during",
            "net_rx_action",
            "--slower-than",
            "5ms",
            "--duration",
            "10",
            "--frequency",
            "2999",
            "-o",
            "/tmp/s.svg",
            "--folded",
            "/tmp/s.folded",
        ],
    );
    generator.release();
    let out = netlat.wait(Duration::from_secs(60));
    generator.stop();
    drop(restore);
    println!(
        "netlat-vm: experiment {}",
        out.stderr.lines().last().unwrap_or("")
    );
    let folded = std::fs::read_to_string("/tmp/s.folded").unwrap_or_default();
    let mut stacks: Vec<(u64, &str)> = folded
        .lines()
        .filter_map(|l| {
            let (s, n) = l.rsplit_once(' ')?;
            Some((n.parse().ok()?, s))
        })
        .collect();
    stacks.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (n, s) in stacks.iter().take(6) {
        println!("netlat-vm: experiment stack {n} {s}");
    }
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let lines: Vec<&str> = kallsyms.lines().collect();
    let mut sorted: Vec<&str> = lines.clone();
    sorted
        .sort_by_key(|l| u64::from_str_radix(l.split(' ').next().unwrap_or("0"), 16).unwrap_or(0));
    if let Some(i) = sorted
        .iter()
        .position(|l| l.ends_with(&format!(" {frame}")))
    {
        for l in &sorted[i.saturating_sub(3)..(i + 4).min(sorted.len())] {
            println!("netlat-vm: experiment kallsyms {l}");
        }
    }
}
