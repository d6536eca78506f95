//! `cargo xtask bench`, NET_RX seen whole: what each of the NET_RX hooks
//! (softirq_raise, softirq_entry, napi_poll, softirq_exit) costs, per run
//! and per NET_RX call, and what `netlat softirq` costs in all beside plain
//! `histogram net_rx_action`, which attaches none of them.
//!
//! Per-program figures need the programs' names, which /proc/PID/fdinfo
//! does not give: the ids come from there (so only that netlat's programs
//! count) and the names and kernel run statistics from aya's
//! `loaded_programs` (BPF_OBJ_GET_INFO_BY_FD).

use std::{
    collections::BTreeMap,
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::{Context as _, Result};

use crate::tool_process::wait_for_line;

const WINDOW: Duration = Duration::from_secs(3);
const RUNS: usize = 3;

/// name -> (run_time_ns, run_cnt) of one process's programs.
type Programs = BTreeMap<String, (u64, u64)>;

/// A run's programs and the NET_RX calls over its window.
type Run = (Programs, u64);

fn programs(pid: u32) -> Result<Programs> {
    let mut ids = Vec::new();
    let dir = format!("/proc/{pid}/fd");
    for fd in fs::read_dir(&dir).with_context(|| format!("failed to list {dir}"))? {
        let fd = fd?;
        if fs::read_link(fd.path())
            .unwrap_or_default()
            .to_string_lossy()
            != "anon_inode:bpf-prog"
        {
            continue;
        }
        let info = fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))?;
        if let Some(id) = info
            .lines()
            .find_map(|l| l.strip_prefix("prog_id:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            ids.push(id);
        }
    }
    let mut out = BTreeMap::new();
    for info in aya::programs::loaded_programs() {
        let info = info.context("cannot list the loaded BPF programs")?;
        if ids.contains(&info.id()) {
            let name = info.name_as_str().unwrap_or("?").to_owned();
            let e = out.entry(name).or_insert((0, 0));
            e.0 += info.run_time().as_nanos() as u64;
            e.1 += info.run_count();
        }
    }
    Ok(out)
}

/// One run: per program `(ns, runs)` over the window, and NET_RX calls.
fn one(netlat: &Path, args: &[&str]) -> Result<Run> {
    let mut child = Command::new(netlat)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("failed to run netlat {}", args.join(" ")))?;
    wait_for_line(
        Box::new(child.stderr.take().context("no stderr")?),
        "netlat: tracing",
    )?;
    thread::sleep(Duration::from_millis(300));
    let before = programs(child.id())?;
    let calls0 = netlat_testkit::softirqs::net_rx_total();
    netlat_testkit::loopback::run_for(WINDOW);
    let calls = netlat_testkit::softirqs::net_rx_total() - calls0;
    let after = programs(child.id())?;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait().context("waiting for netlat to exit")?;
    let grew = after
        .into_iter()
        .map(|(name, (t, n))| {
            let (t0, n0) = before.get(&name).copied().unwrap_or_default();
            (name, (t - t0, n - n0))
        })
        .collect();
    Ok((grew, calls.max(1)))
}

/// The run whose total BPF time per NET_RX call is the median.
fn median(netlat: &Path, args: &[&str]) -> Result<Run> {
    let mut runs = (0..RUNS)
        .map(|_| one(netlat, args))
        .collect::<Result<Vec<_>>>()?;
    let per_call = |r: &Run| r.0.values().map(|v| v.0).sum::<u64>() as f64 / r.1 as f64;
    runs.sort_by(|a, b| per_call(a).total_cmp(&per_call(b)));
    Ok(runs.swap_remove(RUNS / 2))
}

pub fn run(netlat: &Path) -> Result<()> {
    println!(
        "\nbench: NET_RX seen whole, {RUNS} runs of {}s, median",
        WINDOW.as_secs()
    );
    let (plain, plain_calls) = median(netlat, &["histogram", "net_rx_action"])?;
    let (whole, calls) = median(netlat, &["softirq"])?;
    let total =
        |p: &Programs, calls: u64| p.values().map(|v| v.0).sum::<u64>() as f64 / calls as f64;
    println!(
        "{:<18} {:>10} {:>10} {:>14}",
        "program", "runs", "ns/run", "ns/NET_RX call"
    );
    for (name, (ns, runs)) in &whole {
        println!(
            "{name:<18} {runs:>10} {:>10.0} {:>14.1}",
            *ns as f64 / (*runs).max(1) as f64,
            *ns as f64 / calls as f64
        );
    }
    let (h, s) = (total(&plain, plain_calls), total(&whole, calls));
    println!(
        "netlat softirq: {s:.0} ns of BPF time per NET_RX call against {h:.0} for histogram net_rx_action ({:+.0} ns for the NET_RX hooks, which histogram never attaches)",
        s - h
    );
    Ok(())
}
