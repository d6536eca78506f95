//! The VM stage: netlat's kprobe and fentry backends tested in real kernels
//! that have them (CI's own kernel has no kprobes and refuses fentry).
//!
//! For each kernel: fetch Debian's cloud kernel package with apt (cached),
//! pack a newc initramfs with busybox, a static netlat and the static guest
//! test driver (netlat-testkit's `netlat-vm-guest`), boot it under QEMU/TCG
//! (nested KVM does not work here), and turn the guest's result lines into a
//! pass or fail. A panic, a hang or a missing line is a failure.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cmd, workspace_root};

/// Kernels to test, as apt package name patterns; the newest match is used.
/// Adding a kernel is adding a line.
const KERNELS: &[&str] = &[
    r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$",
    r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$",
];

/// TCG is slow: boot ~5 s, the tests ~1 min. A hang ends here.
const BOOT_TIMEOUT: Duration = Duration::from_secs(360);
const TARGET: &str = "x86_64-unknown-linux-gnu";

#[derive(clap::Args, Default)]
pub struct VmArgs {
    /// A kernel to boot instead of the default list: an apt package name
    /// (or pattern), or a path to a vmlinuz. Repeatable.
    #[arg(long)]
    kernel: Vec<String>,
    /// Extra kernel command line (e.g. netlat_experiment for the guest's
    /// generator experiments instead of the tests).
    #[arg(long, default_value = "")]
    append: String,
}

pub fn run(args: &VmArgs) -> Result<()> {
    ensure_packages()?;
    let (netlat, guest) = build_static()?;
    let initramfs = pack_initramfs(&netlat, &guest)?;
    let specs: Vec<String> = if args.kernel.is_empty() {
        KERNELS.iter().map(|k| k.to_string()).collect()
    } else {
        args.kernel.clone()
    };
    let mut failures = Vec::new();
    let mut total = Counts::default();
    for spec in &specs {
        let vmlinuz = kernel_image(spec)?;
        println!("vm: booting {} ({spec})", vmlinuz.display());
        let mut outcome = boot(&vmlinuz, &initramfs, &args.append);
        if let Err(e) = &outcome
            && never_reached_the_tests(e)
        {
            // Seen once on 6.12 under TCG: a panic in the timer code 1.5 s
            // into boot, before init. One more boot tells a flake from a
            // kernel that cannot run the guest at all.
            println!("vm: the guest never reached its tests ({e:#}); booting once more");
            outcome = boot(&vmlinuz, &initramfs, &args.append);
        }
        match outcome {
            Ok(counts) => {
                total.add(counts);
                if counts.failed > 0 {
                    failures.push(format!(
                        "{}: {} test(s) failed",
                        vmlinuz.display(),
                        counts.failed
                    ));
                }
            }
            Err(e) => {
                // The whole kernel's run is lost: at least one failure.
                total.failed += 1;
                println!("vm: FAILED on {}: {e:#}", vmlinuz.display());
                failures.push(format!("{}: {e:#}", vmlinuz.display()));
            }
        }
    }
    // A closing line CI readers (and CI's own parser) know.
    println!(
        "vm: {} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    if !failures.is_empty() {
        bail!("VM tests failed: {}", failures.join("; "));
    }
    Ok(())
}

/// QEMU, a static busybox and cpio, from Debian, when missing.
fn ensure_packages() -> Result<()> {
    crate::setup::debian_packages(
        &[
            ("qemu-system-x86_64", "qemu-system-x86"),
            ("cpio", "cpio"),
            ("dpkg-deb", "dpkg"),
            ("/bin/busybox", "busybox-static"),
        ],
        "vm",
    )
}

/// Static binaries: the guest has no libc of its own.
pub(crate) fn build_static() -> Result<(PathBuf, PathBuf)> {
    cmd::run(
        Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--target",
                TARGET,
                "--package",
                "netlat",
                "--bin",
                "netlat",
                "--package",
                "netlat-testkit",
                "--bin",
                "netlat-vm-guest",
            ])
            // In the environment, not in config: a config-wide crt-static
            // breaks proc-macro builds.
            .env(
                format!(
                    "CARGO_TARGET_{}_RUSTFLAGS",
                    TARGET.to_uppercase().replace('-', "_")
                ),
                "-C target-feature=+crt-static",
            )
            .current_dir(workspace_root()),
    )?;
    // Where cargo put them: CARGO_TARGET_DIR when set, else ./target.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let dir = target.join(TARGET).join("release");
    Ok((dir.join("netlat"), dir.join("netlat-vm-guest")))
}

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
ip link set lo up
if /bin/netlat-vm-guest; then echo "init: success"; else echo "init: failure"; fi
poweroff -f
"#;

fn pack_initramfs(netlat: &Path, guest: &Path) -> Result<PathBuf> {
    let out = workspace_root().join("target/vm");
    let root = out.join("initramfs");
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("failed to clear {}", root.display()))?;
    }
    for dir in ["bin", "dev", "proc", "sys", "tmp"] {
        fs::create_dir_all(root.join(dir))?;
    }
    for (from, to) in [
        (Path::new("/bin/busybox"), "bin/busybox"),
        (netlat, "bin/netlat"),
        (guest, "bin/netlat-vm-guest"),
    ] {
        fs::copy(from, root.join(to))
            .with_context(|| format!("failed to copy {}", from.display()))?;
    }
    let init = root.join("init");
    fs::write(&init, INIT)?;
    cmd::run(Command::new("chmod").arg("755").arg(&init))?;
    let cpio = out.join("initramfs.cpio");
    cmd::run(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "find . | cpio --quiet -o -H newc > '{}'",
                cpio.display()
            ))
            .current_dir(&root),
    )?;
    Ok(cpio)
}

fn cache_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".cache/netlat/kernels"))
}

/// A vmlinuz path as given, or the newest package matching the pattern,
/// downloaded and unpacked once into ~/.cache/netlat/kernels.
fn kernel_image(spec: &str) -> Result<PathBuf> {
    if Path::new(spec).is_file() {
        return Ok(PathBuf::from(spec));
    }
    let package = resolve_package(spec)?;
    let dir = cache_dir()?.join(&package);
    let extracted = dir.join("root");
    if let Some(found) = find_vmlinuz(&extracted) {
        return Ok(found);
    }
    fs::create_dir_all(&dir)?;
    println!("vm: downloading {package}");
    cmd::run(
        Command::new("apt-get")
            .args(["download", &package])
            .current_dir(&dir),
    )?;
    let deb = fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download left no .deb in {}", dir.display()))?;
    cmd::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&extracted))?;
    // Only the kernel image is needed: loopback needs no modules.
    let _ = fs::remove_dir_all(extracted.join("lib"));
    let _ = fs::remove_file(&deb);
    find_vmlinuz(&extracted).with_context(|| format!("no boot/vmlinuz-* in {package}"))
}

fn find_vmlinuz(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root.join("boot"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
}

fn resolve_package(pattern: &str) -> Result<String> {
    let search = || {
        cmd::output(Command::new("apt-cache").args(["search", "--names-only", pattern]))
            .unwrap_or_default()
    };
    let mut found = search();
    if found.trim().is_empty() {
        // A fresh machine has empty package lists.
        cmd::run(Command::new("apt-get").arg("update").stdout(Stdio::null()))?;
        found = search();
    }
    let mut names: Vec<String> = found
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort_by_key(|n| natural_key(n));
    names
        .pop()
        .with_context(|| format!("no apt package matches {pattern}"))
}

/// Orders "6.12.9" before "6.12.117": numbers compare as numbers.
fn natural_key(s: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            key.push((0, rest[..text].to_owned()));
            rest = &rest[text..];
        }
    }
    key
}

#[derive(Clone, Copy, Default)]
struct Counts {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// How an error of [`boot`] starts when the guest never reported a test.
const NO_TEST_REPORTED: &str = "no test reported";

/// No test reported at all: the kernel died or hung before the guest ran.
fn never_reached_the_tests(e: &anyhow::Error) -> bool {
    format!("{e:#}").starts_with(NO_TEST_REPORTED)
}

/// Boots one kernel; Err when the run itself broke (panic, hang, missing
/// results), else the per-test counts.
fn boot(vmlinuz: &Path, initramfs: &Path, append: &str) -> Result<Counts> {
    let started = Instant::now();
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args([
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-smp",
        "2",
        "-m",
        "1024",
    ])
    .arg("-kernel")
    .arg(vmlinuz)
    .arg("-initrd")
    .arg(initramfs)
    .arg("-append")
    .arg(format!("console=ttyS0 quiet panic=-1 {append}"))
    .args(["-nographic", "-no-reboot"])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = qemu
        .spawn()
        .with_context(|| format!("failed to run {qemu:?}"))?;
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
    let deadline = started + BOOT_TIMEOUT;
    let mut console = Vec::new();
    let mut result: Option<bool> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                // The firmware's terminal escapes can precede the guest's
                // first line on the same console line.
                let line = line.trim_end_matches('\r');
                let line = ["netlat-vm:", "init:"]
                    .iter()
                    .find_map(|m| line.find(m).map(|i| &line[i..]))
                    .unwrap_or(line)
                    .to_owned();
                if line.starts_with("netlat-vm:") || line.starts_with("init:") {
                    println!("  {line}");
                }
                if line.contains("Kernel panic") || line.contains("soft lockup") {
                    println!("  {line}");
                    result = Some(false);
                }
                match line.as_str() {
                    "init: success" => result = result.or(Some(true)),
                    "init: failure" => result = Some(false),
                    _ => {}
                }
                console.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                println!(
                    "vm: no result after {}s; last console lines:",
                    BOOT_TIMEOUT.as_secs()
                );
                for l in console.iter().rev().take(20).rev() {
                    println!("  | {l}");
                }
                bail!("timed out");
            }
        }
    }
    let _ = child.wait();
    println!(
        "vm: {:.1}s for this kernel",
        started.elapsed().as_secs_f64()
    );
    let tests: Vec<&String> = console
        .iter()
        .filter(|l| l.starts_with("netlat-vm: test "))
        .collect();
    let failed: Vec<&&String> = tests
        .iter()
        .filter(|l| !l.contains(" ok (") && !l.contains(" skip ("))
        .collect();
    let skipped = tests.iter().filter(|l| l.contains(" skip (")).count();
    if skipped > 0 {
        println!(
            "vm: {skipped} test(s) could not be judged on this kernel (see 'skip' lines above)"
        );
    }
    // The guest says how many results must follow before it runs any.
    let planned = console
        .iter()
        .find_map(|l| l.strip_prefix("netlat-vm: planned "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    if tests.is_empty() || planned != Some(tests.len()) {
        for l in console.iter().rev().take(30).rev() {
            println!("  | {l}");
        }
        let planned = planned.map_or("an unknown number".to_owned(), |n| n.to_string());
        if tests.is_empty() {
            bail!("{NO_TEST_REPORTED} (of {planned} planned)");
        }
        bail!("{} of {planned} test results reported", tests.len());
    }
    if failed.is_empty() && result != Some(true) {
        bail!("the guest did not end with 'init: success'");
    }
    Ok(Counts {
        passed: tests.len() - failed.len() - skipped,
        failed: failed.len(),
        skipped,
    })
}
