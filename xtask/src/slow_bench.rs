//! `netlat slow` throughput: records per second with a threshold of 0 (a
//! record for every NET_RX call) under loopback load, read by a consumer
//! like `| grep` would, and the kernel's count of records lost.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

const WINDOW: Duration = Duration::from_secs(5);
/// Ping-pong pairs at once: more calls per second than one pair makes.
const PAIRS: usize = 3;

pub fn run(netlat: &Path) -> Result<()> {
    for json in [false, true] {
        let mut args = vec!["slow", "net_rx_action", "0"];
        if json {
            args.push("--json");
        }
        let mut child = Command::new(netlat)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("failed to run {} {}", netlat.display(), args.join(" ")))?;
        let mut stderr = BufReader::new(child.stderr.take().context("no stderr")?);
        let mut first = String::new();
        stderr.read_line(&mut first)?;
        if !first.starts_with("netlat: tracing") {
            bail!("netlat slow did not attach: {first}");
        }
        // The consumer: counts lines, as `| wc -l` would.
        let stdout = child.stdout.take().context("no stdout")?;
        let lines = thread::spawn(move || BufReader::new(stdout).lines().count());
        let started = Instant::now();
        let load: Vec<_> = (0..PAIRS)
            .map(|_| thread::spawn(|| netlat_testkit::loopback::run_for(WINDOW)))
            .collect();
        for l in load {
            l.join()
                .map_err(|_| anyhow::anyhow!("load thread panicked"))?;
        }
        let window = started.elapsed().as_secs_f64();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let mut rest = String::new();
        stderr.read_to_string(&mut rest)?;
        child.wait()?;
        let lines = lines
            .join()
            .map_err(|_| anyhow::anyhow!("reader panicked"))?;
        let summary = rest
            .lines()
            .find(|l| l.starts_with("netlat: slow "))
            .with_context(|| format!("no summary from netlat slow: {rest}"))?;
        println!(
            "slow net_rx_action 0{}: {:.0} records/s read over {window:.1} s ({lines} lines); {}",
            if json { " --json" } else { "" },
            lines as f64 / window,
            summary.trim_start_matches("netlat: ")
        );
    }
    println!("(aim: at least 50,000 records/s with 0 lost)");
    Ok(())
}
