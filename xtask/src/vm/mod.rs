//! The VM stage: netlat's kprobe and fentry backends tested in real kernels
//! that have them (CI's own kernel has no kprobes and refuses fentry), on
//! every kernel of the matrix and on arm64.
//!
//! For each kernel of [`kernels`]: its Debian cloud kernel package (private
//! apt configuration, cached), one initramfs per architecture with busybox,
//! the release binary from `cargo xtask dist` and the guest test driver
//! (netlat-testkit's `netlat-vm-guest`), one boot under QEMU/TCG, its
//! console turned into verdicts. Kernels boot in parallel. A panic, a hang,
//! a missing result or a kernel that cannot be fetched is a failure.

mod apt;
mod initramfs;
mod kernels;
mod matrix;
mod qemu;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use crate::{arch::Arch, dist};
use kernels::Kernel;
use matrix::{KernelRun, NO_TEST_REPORTED};

#[derive(clap::Args)]
pub struct VmArgs {
    /// A kernel to boot instead of the default list: a label of the list
    /// (5.10, 6.1, 6.12, sid, 6.1-arm64), an apt package name pattern, or a
    /// path to a vmlinuz. Repeatable.
    #[arg(long)]
    kernel: Vec<String>,
    /// Extra kernel command line (e.g. netlat_experiment for the guest's
    /// generator experiments instead of the tests).
    #[arg(long, default_value = "")]
    append: String,
    /// Kernels booted at once. Under TCG a guest's tests spend much of
    /// their time waiting (stalled readers, fixed windows), so two at a time
    /// on two cores finish sooner than one.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Build, fetch and pack everything, but boot nothing: what needs no
    /// kernel lock.
    #[arg(long)]
    prepare: bool,
}

impl Default for VmArgs {
    fn default() -> Self {
        VmArgs {
            kernel: Vec::new(),
            append: String::new(),
            jobs: 2,
            prepare: false,
        }
    }
}

/// A hang ends here: a whole run takes about a minute alone under TCG, on
/// either architecture, and up to a few beside another boot and a loaded host.
const BOOT_TIMEOUT: Duration = Duration::from_secs(420);

pub fn run(args: &VmArgs) -> Result<()> {
    let started = Instant::now();
    let kernels: Vec<Kernel> = if args.kernel.is_empty() {
        kernels::default_list()
    } else {
        args.kernel.iter().map(|s| kernels::from_spec(s)).collect()
    };
    let mut archs: Vec<Arch> = kernels.iter().map(|k| k.arch).collect();
    archs.sort();
    archs.dedup();
    ensure_packages(&archs)?;
    let apt = apt::Apt::new(&kernels::cache_root()?)?;
    if let Err(e) = apt.update_if_stale() {
        // Stale lists still name the cached kernels; no lists name none,
        // and then each kernel fails below, in its own line.
        println!("vm: {e:#}; going on with the package lists already fetched");
    }

    // The guest's userspace per architecture: the exact release binary.
    let mut initramfs = BTreeMap::new();
    for &arch in &archs {
        let netlat = dist::binary(arch)?;
        let guest = dist::static_build(arch, "netlat-testkit", "netlat-vm-guest")?;
        let busybox = kernels::busybox(&apt, arch)?;
        let contents = initramfs::Contents {
            busybox: &busybox,
            netlat: &netlat,
            guest: &guest,
        };
        initramfs.insert(arch, initramfs::pack(arch, &contents)?);
    }

    // Every image before any boot: a kernel that cannot be had is a
    // failed row of the matrix, said in one line, never a silent skip.
    let images: Vec<Result<(PathBuf, String), String>> = kernels
        .iter()
        .map(|k| kernels::image(&apt, k).map_err(|e| format!("{e:#}")))
        .collect();
    if args.prepare {
        for (k, image) in kernels.iter().zip(&images) {
            match image {
                Ok((_, package)) => println!("vm: {}: {package} ready", k.label),
                Err(e) => println!("vm: {}: {e}", k.label),
            }
        }
        return Ok(());
    }

    let booting = Instant::now();
    let next = AtomicUsize::new(0);
    let runs: Mutex<Vec<Option<KernelRun>>> =
        Mutex::new((0..kernels.len()).map(|_| None).collect());
    thread::scope(|s| {
        for _ in 0..args.jobs.clamp(1, kernels.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(kernel) = kernels.get(i) else { break };
                    let run = match &images[i] {
                        Ok((vmlinuz, package)) => {
                            println!("vm: {}: booting {package}", kernel.label);
                            let r = boot_and_judge(
                                kernel,
                                vmlinuz,
                                package,
                                &initramfs[&kernel.arch],
                                &args.append,
                            );
                            println!("{}", r.line());
                            r
                        }
                        Err(e) => KernelRun {
                            label: kernel.label.clone(),
                            package: kernel.package.clone(),
                            elapsed: Duration::ZERO,
                            outcome: Err(e.clone()),
                        },
                    };
                    runs.lock().expect("no worker panics holding it")[i] = Some(run);
                }
            });
        }
    });
    let runs: Vec<KernelRun> = runs
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .flatten()
        .collect();

    println!();
    for run in &runs {
        println!("{}", run.line());
    }
    print!("{}", matrix::render(&runs));
    println!(
        "vm: {} kernel(s) booted in {:.0}s, {} at a time ({:.0}s with builds and downloads)",
        runs.len(),
        booting.elapsed().as_secs_f64(),
        args.jobs,
        started.elapsed().as_secs_f64(),
    );
    let total = matrix::total(&runs);
    // A closing line CI readers (and CI's own parser) know.
    println!(
        "vm: {} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    let failures: Vec<String> = runs
        .iter()
        .filter(|r| r.counts().failed > 0)
        .map(|r| match &r.outcome {
            Ok(_) => format!("{}: {} test(s) failed", r.label, r.counts().failed),
            Err(e) => format!("{}: {e}", r.label),
        })
        .collect();
    if !failures.is_empty() {
        bail!("VM tests failed: {}", failures.join("; "));
    }
    Ok(())
}

fn boot_and_judge(
    kernel: &Kernel,
    vmlinuz: &std::path::Path,
    package: &str,
    initramfs: &std::path::Path,
    append: &str,
) -> KernelRun {
    let mut cmdline = append.to_owned();
    if let Some(tests) = kernel.tests {
        cmdline.push_str(&format!(" netlat_tests={}", tests.join(",")));
    }
    let once = |cmdline: &str| -> (Duration, Result<qemu::Console, String>) {
        let boot = qemu::Boot {
            arch: kernel.arch,
            vmlinuz,
            initramfs,
            append: cmdline.to_owned(),
            label: &kernel.label,
            timeout: BOOT_TIMEOUT,
        };
        match qemu::boot(&boot) {
            Ok(console) => (console.elapsed, Ok(console)),
            Err(e) => (boot.timeout, Err(format!("{e:#}"))),
        }
    };
    let judged = |console: &Result<qemu::Console, String>| match console {
        Ok(c) => matrix::judge(c),
        Err(e) => Err(e.clone()),
    };
    let (mut elapsed, mut console) = once(&cmdline);
    let mut outcome = judged(&console);
    if let Err(e) = &outcome
        && e.starts_with(NO_TEST_REPORTED)
    {
        // Seen once on 6.12 under TCG: a panic in the timer code 1.5 s
        // into boot, before init. One more boot tells a flake from a
        // kernel that cannot run the guest at all.
        println!(
            "vm: {}: the guest never reached its tests ({e}); booting once more",
            kernel.label
        );
        let (again, second) = once(&cmdline);
        elapsed += again;
        console = second;
        outcome = judged(&console);
    }
    // Not `else`: one boot of sid under TCG panicked 2.5 s in, before init,
    // and its second boot panicked during the story test; the two flakes
    // are independent, so is their handling.
    if let Some(cut) = console.as_ref().ok().and_then(matrix::cut_short) {
        // Seen on sid under TCG: "Fatal exception in interrupt" between or
        // during tests, not reproduced by the next full boot. The tests left
        // get one more boot; the panic stays on the kernel's line (with the
        // oops before it on the console), and a second panic mid-run fails
        // the kernel.
        let note = format!(
            "rebooted once after a kernel panic during {} ({})",
            cut.left[0],
            cut.panic.trim()
        );
        println!(
            "vm: {}: {note}; booting once more for the {} test(s) not reported",
            kernel.label,
            cut.left.len()
        );
        // First: the guest takes the first netlat_tests= it finds.
        let resumed = format!("netlat_tests={} {append}", cut.left.join(","));
        let (again, second) = once(&resumed);
        elapsed += again;
        outcome = judged(&second).map(|rest| {
            let mut report = cut.report;
            report.tests.extend(rest.tests);
            report.rebooted = Some(note);
            report
        });
    }
    KernelRun {
        label: kernel.label.clone(),
        package: package.to_owned(),
        elapsed,
        outcome,
    }
}

/// QEMU for each architecture booted, cpio and dpkg-deb, from Debian,
/// when missing.
fn ensure_packages(archs: &[Arch]) -> Result<()> {
    let mut wanted = vec![("cpio", "cpio"), ("dpkg-deb", "dpkg")];
    wanted.extend(archs.iter().map(|a| a.qemu()));
    crate::setup::debian_packages(&wanted, "vm")
}
