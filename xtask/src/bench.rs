//! `cargo xtask bench`: what netlat costs the kernel and the host, beside
//! bpftrace doing the same job, under the same fixed loopback load.
//!
//! Per-call cost comes from the kernel's own accounting
//! (`kernel.bpf_stats_enabled`: run_time_ns / run_cnt of every program),
//! read from /proc/PID/fdinfo of the tool's program fds, so it needs no
//! bpftool and measures exactly that tool's programs.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

const WINDOW: Duration = Duration::from_secs(3);
const RUNS: usize = 3;
/// bpftrace's equivalent of `netlat histogram net_rx_action`.
const BPFTRACE_SCRIPT: &str = "tracepoint:irq:softirq_entry /args->vec == 3/ { @start[cpu] = nsecs; } \
     tracepoint:irq:softirq_exit /args->vec == 3 && @start[cpu]/ { @ns = hist(nsecs - @start[cpu]); delete(@start[cpu]); }";

pub(crate) struct Sample {
    ns_per_call: f64,
    calls: u64,
    attach_ms: f64,
    rss_kib: u64,
}

pub fn run(netlat: &Path) -> Result<()> {
    if !cmd::is_root() {
        bail!(
            "the benchmark loads eBPF programs and sets kernel.bpf_stats_enabled: run it as root"
        );
    }
    let bpftrace = ensure_bpftrace();
    let _stats = BpfStats::enable()?;
    println!(
        "bench: {RUNS} runs of {}s each under loopback TCP ping-pong, median shown",
        WINDOW.as_secs()
    );
    let mut rows = vec![(
        "netlat histogram net_rx_action".to_owned(),
        median(RUNS, || {
            measure(
                Command::new(netlat).args(["histogram", "net_rx_action"]),
                Marker::Stderr("netlat: tracing"),
                2,
            )
        })?,
    )];
    rows.push((
        "netlat slow net_rx_action 1h".to_owned(),
        median(RUNS, || {
            measure(
                Command::new(netlat).args(["slow", "net_rx_action", "1h"]),
                Marker::Stderr("netlat: tracing"),
                2,
            )
        })?,
    ));
    match bpftrace {
        Some(bt) => rows.push((
            "bpftrace hist one-liner".to_owned(),
            median(RUNS, || {
                measure(
                    Command::new(&bt).args(["-e", BPFTRACE_SCRIPT]),
                    Marker::Stdout("Attaching"),
                    2,
                )
            })?,
        )),
        None => println!("bench: bpftrace is not available; netlat's figures only"),
    }
    println!(
        "{:<34} {:>14} {:>12} {:>16} {:>12}",
        "tool", "BPF ns/call", "calls", "launch->attach", "peak RSS"
    );
    for (name, s) in &rows {
        println!(
            "{name:<34} {:>14.0} {:>12} {:>13.1} ms {:>9.1} MB",
            s.ns_per_call,
            s.calls,
            s.attach_ms,
            s.rss_kib as f64 / 1024.0
        );
    }
    if let [(_, histogram), (_, slow), ..] = rows.as_slice() {
        println!(
            "netlat slow with a threshold no call reaches costs {:+.0}% per call against histogram (aim: within 10%)",
            100.0 * (slow.ns_per_call / histogram.ns_per_call - 1.0)
        );
    }
    if let [(_, netlat), _, (_, bt)] = rows.as_slice() {
        println!(
            "netlat costs {:.0}% of bpftrace per call (aim: at most 50%)",
            100.0 * netlat.ns_per_call / bt.ns_per_call
        );
    }
    println!(
        "(entry + exit programs per net_rx_action call; the floor for two empty programs measured here is ~95 ns)"
    );
    crate::slow_bench::run(netlat)?;
    crate::serve_bench::run(netlat)
}

pub(crate) fn median(runs: usize, mut one: impl FnMut() -> Result<Sample>) -> Result<Sample> {
    let mut all = (0..runs).map(|_| one()).collect::<Result<Vec<_>>>()?;
    all.sort_by(|a, b| a.ns_per_call.total_cmp(&b.ns_per_call));
    Ok(all.swap_remove(runs / 2))
}

/// The line a tool prints when it attaches, and on which stream.
pub(crate) enum Marker {
    Stdout(&'static str),
    Stderr(&'static str),
}

/// Starts the tool, waits for its "attached" line, runs the load, reads its
/// programs' stats and peak RSS, and stops it.
pub(crate) fn measure(
    tool: &mut Command,
    marker: Marker,
    programs_per_event: u64,
) -> Result<Sample> {
    let launched = Instant::now();
    let mut child = tool
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("failed to run {tool:?}"))?;
    let (watched, other, text): (
        Box<dyn std::io::Read + Send>,
        Box<dyn std::io::Read + Send>,
        _,
    ) = match marker {
        Marker::Stdout(t) => (
            Box::new(child.stdout.take().context("no stdout")?),
            Box::new(child.stderr.take().context("no stderr")?),
            t,
        ),
        Marker::Stderr(t) => (
            Box::new(child.stderr.take().context("no stderr")?),
            Box::new(child.stdout.take().context("no stdout")?),
            t,
        ),
    };
    // Drain the other stream so the tool never blocks on a full pipe.
    thread::spawn(move || BufReader::new(other).lines().for_each(drop));
    wait_for_line(watched, text)?;
    // netlat prints its line once attached; bpftrace prints "Attaching N
    // probes" just before, so its figure is a slight underestimate.
    let attach_ms = launched.elapsed().as_secs_f64() * 1e3;
    // Let bpftrace finish attaching before the window starts.
    thread::sleep(Duration::from_millis(300));
    let before = prog_stats(child.id())?;
    netlat_testkit::loopback::run_for(WINDOW);
    let after = prog_stats(child.id())?;
    let rss_kib = peak_rss_kib(child.id())?;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait().context("waiting for the tool to exit")?;
    let (time, cnt) = (after.0 - before.0, after.1 - before.1);
    if cnt == 0 {
        bail!("no program runs were counted: is kernel.bpf_stats_enabled on?");
    }
    // A timed call runs one entry and one exit program; run_cnt counts both,
    // including the softirqs of other vectors the programs filter out.
    let calls = cnt / programs_per_event;
    Ok(Sample {
        ns_per_call: time as f64 / calls as f64,
        calls,
        attach_ms,
        rss_kib,
    })
}

pub(crate) fn wait_for_line(stream: Box<dyn std::io::Read + Send>, marker: &str) -> Result<()> {
    let mut lines = BufReader::new(stream).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains(marker) => break,
            Some(Ok(_)) => {}
            _ => bail!("the tool exited before attaching"),
        }
    }
    // Keep draining so the tool never blocks on a full pipe.
    thread::spawn(move || lines.for_each(drop));
    Ok(())
}

/// Sum of (run_time_ns, run_cnt) over the BPF programs the process holds.
fn prog_stats(pid: u32) -> Result<(u64, u64)> {
    let mut total = (0, 0);
    let fds = format!("/proc/{pid}/fd");
    for fd in fs::read_dir(&fds).with_context(|| format!("failed to list {fds}"))? {
        let fd = fd?;
        let target = fs::read_link(fd.path()).unwrap_or_default();
        if target.to_string_lossy() != "anon_inode:bpf-prog" {
            continue;
        }
        let info = fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        total.0 += field("run_time_ns:");
        total.1 += field("run_cnt:");
    }
    Ok(total)
}

fn peak_rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM:")
}

/// A kB field of /proc/PID/status (VmRSS:, VmHWM:).
pub(crate) fn status_kib(pid: u32, field: &str) -> Result<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// bpftrace is the comparison; install Debian's when missing, and mount
/// tracefs, which its tracepoint probes need.
fn ensure_bpftrace() -> Option<String> {
    if !Path::new("/sys/kernel/tracing/events").exists() {
        let _ =
            cmd::run(Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]));
    }
    // Without bpftrace the benchmark still gives netlat's own figures.
    let _ = crate::setup::debian_packages(&[("bpftrace", "bpftrace")], "bench");
    cmd::output(Command::new("bpftrace").arg("--version")).map(|_| "bpftrace".to_owned())
}

/// Turns on the kernel's per-program run-time accounting, and restores the
/// old value when dropped (the accounting itself costs time per run).
struct BpfStats {
    old: String,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    fn enable() -> Result<BpfStats> {
        let old =
            fs::read_to_string(BPF_STATS).with_context(|| format!("failed to read {BPF_STATS}"))?;
        fs::write(BPF_STATS, "1").with_context(|| format!("failed to write {BPF_STATS}"))?;
        Ok(BpfStats {
            old: old.trim().to_owned(),
        })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = fs::write(BPF_STATS, &self.old);
    }
}
