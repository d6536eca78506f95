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

use crate::{
    cmd,
    tool_process::{status_kib, wait_for_line},
};

const WINDOW: Duration = Duration::from_secs(3);
const RUNS: usize = 3;
/// bpftrace's equivalent of `netlat histogram net_rx_action`.
const BPFTRACE_SCRIPT: &str = "tracepoint:irq:softirq_entry /args->vec == 3/ { @start[cpu] = nsecs; } \
     tracepoint:irq:softirq_exit /args->vec == 3 && @start[cpu]/ { @ns = hist(nsecs - @start[cpu]); delete(@start[cpu]); }";

pub(crate) struct Sample {
    /// The timing programs' run time per call (the sampler's apart).
    ns_per_call: f64,
    calls: u64,
    attach_ms: f64,
    rss_kib: u64,
    /// The tool's own CPU time over the window, percent of one CPU.
    cpu_pct: f64,
    /// perf_event (sampler) programs: runs and mean ns per run.
    samples: u64,
    ns_per_sample: f64,
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
    let capture_dir =
        std::env::temp_dir().join(format!("netlat-bench-captures-{}", std::process::id()));
    for (name, extra) in [
        ("netlat serve net_rx_action", None),
        ("netlat serve --capture (1h)", Some("net_rx_action=1h")),
    ] {
        rows.push((
            name.to_owned(),
            median(RUNS, || {
                let listen = format!("127.0.0.1:{}", netlat_testkit::scrape::free_port());
                let mut cmd = Command::new(netlat);
                cmd.args(["serve", "--listen", &listen]);
                match extra {
                    Some(capture) => {
                        cmd.args(["--capture", capture, "--capture-dir"])
                            .arg(&capture_dir);
                    }
                    None => {
                        cmd.arg("net_rx_action");
                    }
                }
                measure(&mut cmd, Marker::Stderr("netlat: serving"), 2)
            })?,
        ));
    }
    let _ = fs::remove_dir_all(&capture_dir);
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
        "{:<34} {:>12} {:>10} {:>16} {:>10} {:>8} {:>16}",
        "tool", "BPF ns/call", "calls", "launch->attach", "peak RSS", "CPU", "sampler ns/run"
    );
    for (name, s) in &rows {
        let sampler = if s.samples > 0 {
            format!("{:.0} ({} runs)", s.ns_per_sample, s.samples)
        } else {
            "-".to_owned()
        };
        println!(
            "{name:<34} {:>12.0} {:>10} {:>13.1} ms {:>7.1} MB {:>7.1}% {sampler:>16}",
            s.ns_per_call,
            s.calls,
            s.attach_ms,
            s.rss_kib as f64 / 1024.0,
            s.cpu_pct
        );
    }
    if let Some((serve, capture)) = rows
        .iter()
        .find(|(n, _)| n == "netlat serve net_rx_action")
        .zip(
            rows.iter()
                .find(|(n, _)| n.starts_with("netlat serve --capture")),
        )
    {
        let (s, c) = (&serve.1, &capture.1);
        let sampler_ns_per_s = c.samples as f64 * c.ns_per_sample / WINDOW.as_secs_f64();
        println!(
            "serve --capture with nothing slow: {:+.0}% BPF ns per call, CPU {:.1}% against {:.1}%, sampler {:.0} us of kernel time per second ({:.3}% of one CPU); aim: about what serve costs",
            100.0 * (c.ns_per_call / s.ns_per_call - 1.0),
            c.cpu_pct,
            s.cpu_pct,
            sampler_ns_per_s / 1e3,
            sampler_ns_per_s / 1e7
        );
    }
    if let [(_, histogram), (_, slow), ..] = rows.as_slice() {
        println!(
            "netlat slow with a threshold no call reaches costs {:+.0}% per call against histogram (aim: within 10%)",
            100.0 * (slow.ns_per_call / histogram.ns_per_call - 1.0)
        );
    }
    if let (Some((_, netlat)), Some((_, bt))) = (
        rows.first(),
        rows.iter().find(|(n, _)| n.starts_with("bpftrace")),
    ) {
        println!(
            "netlat costs {:.0}% of bpftrace per call (aim: at most 50%)",
            100.0 * netlat.ns_per_call / bt.ns_per_call
        );
    }
    println!(
        "(entry + exit programs per net_rx_action call; the floor for two empty programs measured here is ~95 ns)"
    );
    crate::slow_bench::run(netlat)?;
    crate::softirq_bench::run(netlat)?;
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
    let ticks_before = cpu_ticks(child.id())?;
    let started = Instant::now();
    netlat_testkit::loopback::run_for(WINDOW);
    let after = prog_stats(child.id())?;
    let cpu_pct = (cpu_ticks(child.id())? - ticks_before) as f64
        / ticks_per_second()
        / started.elapsed().as_secs_f64()
        * 100.0;
    let rss_kib = peak_rss_kib(child.id())?;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait().context("waiting for the tool to exit")?;
    let (time, cnt) = (
        after.timing.0 - before.timing.0,
        after.timing.1 - before.timing.1,
    );
    let (sample_time, samples) = (
        after.sampler.0 - before.sampler.0,
        after.sampler.1 - before.sampler.1,
    );
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
        cpu_pct,
        samples,
        ns_per_sample: sample_time as f64 / samples.max(1) as f64,
    })
}

/// (run_time_ns, run_cnt) summed over a process's BPF programs: the
/// perf_event ones (the sampler) apart from the rest.
#[derive(Default)]
struct ProgStats {
    timing: (u64, u64),
    sampler: (u64, u64),
}

/// BPF_PROG_TYPE_PERF_EVENT (include/uapi/linux/bpf.h).
const PERF_EVENT_PROG: u64 = 7;

fn prog_stats(pid: u32) -> Result<ProgStats> {
    let mut total = ProgStats::default();
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
        let sum = if field("prog_type:") == PERF_EVENT_PROG {
            &mut total.sampler
        } else {
            &mut total.timing
        };
        sum.0 += field("run_time_ns:");
        sum.1 += field("run_cnt:");
    }
    Ok(total)
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    field(11)
        .zip(field(12))
        .map(|(u, s)| u + s)
        .with_context(|| format!("cannot read /proc/{pid}/stat"))
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

fn peak_rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM:")
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
