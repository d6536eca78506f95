//! Booting one kernel under QEMU/TCG (nested KVM does not work here) and
//! reading its serial console until the guest powers off.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::arch::Arch;

pub struct Boot<'a> {
    pub arch: Arch,
    pub vmlinuz: &'a Path,
    pub initramfs: &'a Path,
    /// Extra kernel command line (the guest reads its options there).
    pub append: String,
    /// Prefixes the console lines echoed to the host's output.
    pub label: &'a str,
    /// A hang ends here.
    pub timeout: Duration,
}

/// What the guest printed, once it powered off.
pub struct Console {
    /// The guest's `netlat-vm:` and `init:` lines, and everything else.
    pub lines: Vec<String>,
    /// A kernel panic or soft lockup was printed.
    pub crashed: bool,
    pub elapsed: Duration,
}

/// Console lines shown before a panic: an x86_64 oops with its call
/// trace fits.
const OOPS_LINES: usize = 60;

/// Boots and collects the console; Err only when QEMU cannot run or the
/// guest hangs past the timeout.
pub fn boot(b: &Boot) -> Result<Console> {
    let started = Instant::now();
    let (qemu, _) = b.arch.qemu();
    let mut cmd = Command::new(qemu);
    cmd.args(b.arch.qemu_machine())
        .args(["-smp", "2", "-m", "1024"])
        .arg("-kernel")
        .arg(b.vmlinuz)
        .arg("-initrd")
        .arg(b.initramfs)
        .arg("-append")
        .arg(format!(
            "console={} quiet panic=-1 {}",
            b.arch.console(),
            b.append
        ))
        .args(["-nographic", "-no-reboot"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().context("no stdout")?) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().context("no stderr")?),
    ] {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let deadline = started + b.timeout;
    let mut console = Console {
        lines: Vec::new(),
        crashed: false,
        elapsed: Duration::ZERO,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let line = guest_line(&line);
                if line.starts_with("netlat-vm:") || line.starts_with("init:") {
                    println!("  [{}] {line}", b.label);
                }
                if line.contains("Kernel panic") || line.contains("soft lockup") {
                    // The oops before the panic says what crashed (and
                    // whether a BPF program was on the stack); `quiet`
                    // does not hide it, the kernel prints it verbosely.
                    let oops = console
                        .lines
                        .iter()
                        .rev()
                        .take(OOPS_LINES)
                        .take_while(|l| !l.starts_with("netlat-vm:"))
                        .collect::<Vec<_>>();
                    for l in oops.iter().rev() {
                        println!("  [{}] | {l}", b.label);
                    }
                    println!("  [{}] {line}", b.label);
                    console.crashed = true;
                }
                console.lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                println!(
                    "vm: {}: no result after {}s; last console lines:",
                    b.label,
                    b.timeout.as_secs()
                );
                for l in console.lines.iter().rev().take(20).rev() {
                    println!("  [{}] | {l}", b.label);
                }
                bail!("timed out after {}s", b.timeout.as_secs());
            }
        }
    }
    let _ = child.wait();
    console.elapsed = started.elapsed();
    Ok(console)
}

/// The firmware's terminal escapes can precede the guest's first line on
/// the same console line: start at the guest's own marker.
fn guest_line(raw: &str) -> String {
    let line = raw.trim_end_matches('\r');
    ["netlat-vm:", "init:"]
        .iter()
        .find_map(|m| line.find(m).map(|i| &line[i..]))
        .unwrap_or(line)
        .to_owned()
}
