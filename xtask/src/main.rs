//! Project automation: `cargo xtask setup|build|run|test|bench|vm-test|dist|docs|image`.
//!
//! Every command installs what it needs first, into user-level locations, so
//! a fresh clone needs nothing but rustup and cargo.

mod arch;
mod bench;
mod cmd;
mod dist;
mod docs;
mod image;
mod serve_bench;
mod setup;
mod slow_bench;
mod softirq_bench;
mod tool_process;
mod vm;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "netlat's build, run and test automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the pinned nightly with rust-src, bpf-linker and the arm64
    /// cross toolchain if missing.
    Setup,
    /// Set up, then build target/release/netlat with its eBPF object embedded.
    Build,
    /// Set up, build, and run netlat as root (through sudo when not root).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up and run the whole test suite: lints, unit tests, host kernel
    /// tests, and the VM kernel tests.
    Test {
        /// Skip the QEMU stage (kprobe/fentry tests in Debian kernels).
        #[arg(long)]
        no_vm: bool,
    },
    /// Set up, build, and measure netlat's per-call BPF cost, launch time
    /// and memory beside bpftrace's (needs root).
    Bench,
    /// Boot Debian kernels under QEMU and run the kprobe/fentry tests there.
    VmTest(vm::VmArgs),
    /// Build the container image (deploy/Containerfile) from the static
    /// binary, with Debian's podman.
    Image(image::ImageArgs),
    /// Set up, build, and write netlat's shell completions and man pages.
    Docs {
        /// Directory for completions/ and man/man1/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Set up and build the release files in target/dist/: static, stripped
    /// netlat binaries for x86_64 and arm64, and SHA256SUMS.
    Dist,
}

fn main() -> std::process::ExitCode {
    // The error's chain on one line: a failed stage says what failed, and a
    // backtrace of the xtask itself (printed under RUST_BACKTRACE) says
    // nothing more.
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Setup => setup::all(),
        Command::Build => build_release().map(drop),
        Command::Run { args } => {
            let bin = build_release()?;
            cmd::run_as_root(&bin, &args)
        }
        Command::Test { no_vm } => test(no_vm),
        Command::Bench => {
            let bin = build_release()?;
            bench::run(&bin)
        }
        Command::Docs { out } => docs::generate(&out),
        Command::Image(args) => {
            setup::all()?;
            image::run(&args)
        }
        Command::VmTest(args) => {
            setup::all()?;
            vm::run(&args)
        }
        Command::Dist => dist::run(),
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn build_release() -> Result<PathBuf> {
    setup::all()?;
    cmd::cargo(&["build", "--release", "--package", "netlat"])?;
    Ok(workspace_root().join("target/release/netlat"))
}

fn test(no_vm: bool) -> Result<()> {
    let mut stages = Stages::default();
    stages.run("setup", setup::all)?;
    stages.run("fmt", || cmd::cargo(&["fmt", "--all", "--", "--check"]))?;
    // The eBPF crate only builds for the BPF target (netlat's build.rs does
    // that), so it is checked there, not linted for the host.
    stages.run("clippy", || {
        cmd::cargo(&[
            "clippy",
            "--workspace",
            "--exclude",
            "netlat-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    // Pure logic first (parallel, no root needed) ...
    stages.run("unit tests", || {
        cmd::cargo(&[
            "test",
            "--workspace",
            "--exclude",
            "netlat-ebpf",
            "--lib",
            "--bins",
        ])
    })?;
    // ... then the kernel tests, one at a time: they attach probes and compare
    // machine-wide counters, so they must not overlap.
    stages.run("host kernel tests", || {
        cmd::cargo(&[
            "test",
            "--package",
            "netlat",
            "--tests",
            "--",
            "--test-threads=1",
        ])
    })?;
    // The image holds the same static binary the VM stage boots.
    stages.run("image", image::test)?;
    if no_vm {
        println!("xtask: skipping the VM stage (--no-vm)");
    } else {
        stages.run("VM stage", || vm::run(&vm::VmArgs::default()))?;
    }
    stages.report();
    Ok(())
}

/// How long each stage of `cargo xtask test` took, printed at the end so
/// the suite's time budget (CI allows 90 minutes) is visible in every log.
#[derive(Default)]
struct Stages(Vec<(&'static str, std::time::Duration)>);

impl Stages {
    fn run(&mut self, name: &'static str, stage: impl FnOnce() -> Result<()>) -> Result<()> {
        let started = std::time::Instant::now();
        let result = stage();
        self.0.push((name, started.elapsed()));
        if result.is_err() {
            self.report();
        }
        result
    }

    fn report(&self) {
        let total: std::time::Duration = self.0.iter().map(|(_, d)| *d).sum();
        let each: Vec<String> = self
            .0
            .iter()
            .map(|(name, d)| format!("{name} {:.0}s", d.as_secs_f64()))
            .collect();
        println!(
            "xtask: stages took {} (total {:.0}s)",
            each.join(", "),
            total.as_secs_f64()
        );
    }
}
