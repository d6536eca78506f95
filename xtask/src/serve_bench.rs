//! `cargo xtask bench`, serve part: memory of `netlat serve` over an hour's
//! worth of scrapes (10,000: ~3 per second), and what one scrape costs.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use netlat_testkit::scrape::{free_port, get};

use crate::tool_process::{status_kib, wait_for_line};

const SCRAPES: usize = 10_000;

pub fn run(netlat: &Path) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let listen = addr.to_string();
    let mut child = Command::new(netlat)
        .args([
            "serve",
            "--doctor",
            "--per-cpu",
            "--listen",
            &listen,
            "net_rx_action",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start netlat serve")?;
    let stderr = child.stderr.take().context("no stderr")?;
    wait_for_line(Box::new(stderr), "netlat: serving")?;
    let pid = child.id();
    let result = scrape_many(addr, pid);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait()?;
    let (rss_after_first, rss_end, peak, per_scrape_us, bytes) = result?;
    println!(
        "serve: {SCRAPES} scrapes of {bytes} B: RSS {:.1} MB after the first, {:.1} MB after the last (growth {:+.0} kB), peak {:.1} MB; {per_scrape_us:.0} us per scrape",
        rss_after_first as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        rss_end as f64 - rss_after_first as f64,
        peak as f64 / 1024.0
    );
    if !status.success() {
        bail!("netlat serve did not exit cleanly on SIGTERM: {status}");
    }
    Ok(())
}

/// (RSS after 1st scrape, RSS after the last, peak, µs per scrape, page size).
fn scrape_many(addr: SocketAddr, pid: u32) -> Result<(u64, u64, u64, f64, usize)> {
    let mut bytes = scrape(addr)?;
    let first = status_kib(pid, "VmRSS:")?;
    let started = Instant::now();
    for _ in 1..SCRAPES {
        bytes = scrape(addr)?;
    }
    let per_scrape = started.elapsed().as_secs_f64() * 1e6 / (SCRAPES - 1) as f64;
    Ok((
        first,
        status_kib(pid, "VmRSS:")?,
        status_kib(pid, "VmHWM:")?,
        per_scrape,
        bytes,
    ))
}

/// Page size in bytes; an error unless the answer is 200.
fn scrape(addr: SocketAddr) -> Result<usize> {
    match get(addr, "/metrics") {
        (200, page) => Ok(page.len()),
        (status, body) => bail!("scrape failed ({status}): {}", &body[..body.len().min(80)]),
    }
}
