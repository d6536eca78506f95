//! Installing the eBPF toolchain: nightly + rust-src, and bpf-linker built
//! against rustc's own libLLVM (Debian's LLVM is older than rustc's, and
//! bpf-linker must use an LLVM at least as new). Reuses whatever is there.

use std::{
    fs,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

const NIGHTLY: &str = "nightly";
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn all() -> Result<()> {
    nightly_with_rust_src()?;
    bpf_linker()?;
    // The serve tests scrape netlat with a real Prometheus and lint its
    // output with promtool.
    debian_packages(
        &[("prometheus", "prometheus"), ("promtool", "prometheus")],
        "setup",
    )
}

/// apt-get installs the packages whose program (a name on PATH, or an
/// absolute path) is missing. `who` prefixes the progress line.
pub fn debian_packages(wanted: &[(&str, &str)], who: &str) -> Result<()> {
    let present = |program: &str| {
        if program.starts_with('/') {
            std::path::Path::new(program).exists()
        } else {
            cmd::output(Command::new("sh").args(["-c", &format!("command -v {program}")])).is_some()
        }
    };
    let mut missing: Vec<&str> = wanted
        .iter()
        .filter(|(program, _)| !present(program))
        .map(|(_, package)| *package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    println!("{who}: installing {} (Debian packages)", missing.join(" "));
    cmd::run(Command::new("apt-get").arg("update").stdout(Stdio::null()))?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .stdout(Stdio::null()),
    )
}

fn nightly_with_rust_src() -> Result<()> {
    let installed = cmd::output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        NIGHTLY,
    ]))
    .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    println!("xtask: installing the {NIGHTLY} toolchain with rust-src");
    cmd::run(Command::new("rustup").args([
        "toolchain",
        "install",
        NIGHTLY,
        "--profile",
        "minimal",
        "--component",
        "rust-src",
    ]))
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set")
}

fn bpf_linker() -> Result<()> {
    let working = cmd::output(Command::new("bpf-linker").arg("--version"))
        .is_some_and(|v| v.contains(BPF_LINKER_VERSION));
    if working {
        return Ok(());
    }
    let sysroot =
        cmd::output(Command::new("rustc").args([&format!("+{NIGHTLY}"), "--print", "sysroot"]))
            .context("cannot find the nightly sysroot")?;
    let lib = PathBuf::from(sysroot.trim()).join("lib");
    let libllvm = fs::read_dir(&lib)
        .with_context(|| format!("failed to read {}", lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so."))
        .with_context(|| format!("no libLLVM.so.* in {}", lib.display()))?;
    let major = libllvm
        .trim_start_matches("libLLVM.so.")
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned();
    // bpf-linker keeps an rpath to this prefix, so it lives in a stable place.
    let prefix = home()?.join(".local/share/netlat/llvm");
    let prefix_lib = prefix.join("lib");
    fs::create_dir_all(&prefix_lib)
        .with_context(|| format!("failed to create {}", prefix_lib.display()))?;
    for name in [libllvm.as_str(), "libLLVM.so"] {
        let link = prefix_lib.join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(lib.join(&libllvm), &link)
            .with_context(|| format!("failed to link {}", link.display()))?;
    }
    println!(
        "xtask: building bpf-linker {BPF_LINKER_VERSION} against rustc's LLVM {major} (about a minute)"
    );
    cmd::run(
        Command::new("cargo")
            .args([
                "install",
                "--locked",
                "--force",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
            ])
            .env("LLVM_PREFIX", &prefix),
    )?;
    if cmd::output(Command::new("bpf-linker").arg("--version")).is_none() {
        bail!("bpf-linker was installed but does not run; is ~/.cargo/bin on PATH?");
    }
    Ok(())
}
