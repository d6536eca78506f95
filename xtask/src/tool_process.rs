//! A tracing tool run as a child process by the benchmarks: wait until it
//! has attached, and read its memory. Shared by every benchmark, so none
//! reaches into another for it.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    thread,
};

use anyhow::{Context as _, Result, bail};

/// Returns once the tool printed a line containing `marker`, then keeps
/// reading its output in the background.
pub fn wait_for_line(stream: Box<dyn std::io::Read + Send>, marker: &str) -> Result<()> {
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

/// A kB field of /proc/PID/status (VmRSS:, VmHWM:).
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}
