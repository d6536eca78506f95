//! Installing the toolchains: the pinned nightly + rust-src for the eBPF
//! object, bpf-linker built against that nightly's own libLLVM (Debian's LLVM
//! is older than rustc's, and bpf-linker must use an LLVM at least as new),
//! and the arm64 cross toolchain for the release binaries. Reuses whatever
//! is there.

use std::{
    fs,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

/// bpf-linker, pinned like the nightly: a new release cannot break a clean
/// clone. Bumping it is this line.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// The eBPF build's toolchain file: its `channel` line is the one place the
/// nightly is pinned (netlat/build.rs reads the same file).
const EBPF_TOOLCHAIN_FILE: &str = include_str!("../../netlat-ebpf/rust-toolchain.toml");

/// The dated nightly the eBPF object is built with, e.g. `nightly-2026-10-30`.
pub fn ebpf_nightly() -> &'static str {
    EBPF_TOOLCHAIN_FILE
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel"))
        .and_then(|rest| rest.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"'))
        .expect("netlat-ebpf/rust-toolchain.toml has a channel line")
}

pub fn all() -> Result<()> {
    pinned_nightly()?;
    bpf_linker()?;
    cross_toolchain()?;
    // The serve tests scrape netlat with a real Prometheus and lint its
    // output with promtool; the report page's tests open it in a real
    // (headless) Chromium, since its heat map, selection and flame graph
    // are JavaScript that only a browser runs.
    debian_packages(
        &[
            ("prometheus", "prometheus"),
            ("promtool", "prometheus"),
            ("chromium", "chromium"),
        ],
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

fn pinned_nightly() -> Result<()> {
    let pin = ebpf_nightly();
    let installed = cmd::output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        pin,
    ]))
    .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    if reuse_floating_nightly(pin)? {
        return Ok(());
    }
    println!("xtask: installing the {pin} toolchain with rust-src");
    cmd::run(Command::new("rustup").args([
        "toolchain",
        "install",
        pin,
        "--profile",
        "minimal",
        "--component",
        "rust-src",
    ]))
}

/// When the floating `nightly` toolchain is the pinned day's build (its
/// channel manifest says so) with rust-src, hard-links it under the pinned
/// name instead of downloading the same files again. Hard links, not a
/// symlink: a later `rustup update nightly` replaces its files and leaves
/// the pinned copy as it was.
fn reuse_floating_nightly(pin: &str) -> Result<bool> {
    let Some(date) = pin.strip_prefix("nightly-") else {
        return Ok(false);
    };
    let Some(sysroot) = cmd::output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))
    else {
        return Ok(false);
    };
    let sysroot = PathBuf::from(sysroot.trim());
    let rustlib = sysroot.join("lib/rustlib");
    let manifest =
        fs::read_to_string(rustlib.join("multirust-channel-manifest.toml")).unwrap_or_default();
    let same_day = manifest
        .lines()
        .any(|l| l.replace(' ', "") == format!("date=\"{date}\""));
    let has_src = fs::read_to_string(rustlib.join("components"))
        .is_ok_and(|c| c.lines().any(|l| l == "rust-src"));
    let (Some(toolchains), Some(name)) = (sysroot.parent(), sysroot.file_name()) else {
        return Ok(false);
    };
    let Some(host) = name
        .to_string_lossy()
        .strip_prefix("nightly-")
        .map(str::to_owned)
    else {
        return Ok(false);
    };
    if !same_day || !has_src {
        return Ok(false);
    }
    let pinned = toolchains.join(format!("{pin}-{host}"));
    println!(
        "xtask: the installed nightly is {pin}; linking it as {}",
        pinned.display()
    );
    cmd::run(Command::new("cp").arg("-al").arg(&sysroot).arg(&pinned))?;
    Ok(true)
}

/// The arm64 release binary: Rust's target, and Debian's cross linker with
/// a static glibc for arm64.
fn cross_toolchain() -> Result<()> {
    let target = crate::arch::Arch::Aarch64.rust_target();
    let installed = cmd::output(Command::new("rustup").args(["target", "list", "--installed"]))
        .unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == target) {
        println!("xtask: adding the Rust target {target}");
        cmd::run(
            Command::new("rustup")
                .args(["target", "add", target])
                .current_dir(crate::workspace_root()),
        )?;
    }
    debian_packages(
        &[
            ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
            ("/usr/aarch64-linux-gnu/lib/libc.a", "libc6-dev-arm64-cross"),
        ],
        "setup",
    )
}

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set")
}

fn bpf_linker() -> Result<()> {
    let pin = ebpf_nightly();
    let sysroot =
        cmd::output(Command::new("rustc").args([&format!("+{pin}"), "--print", "sysroot"]))
            .with_context(|| format!("cannot find the sysroot of {pin}"))?;
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
    // Only the pinned nightly's libLLVM is offered: a bpf-linker built
    // against another LLVM then fails to start and is rebuilt below. Links
    // already right are left alone (a build may be using them).
    let wanted = lib.join(&libllvm);
    for entry in fs::read_dir(&prefix_lib)?.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let right = (name == libllvm || name == "libLLVM.so")
            && fs::read_link(entry.path()).is_ok_and(|t| t == wanted);
        if name.starts_with("libLLVM") && !right {
            let _ = fs::remove_file(entry.path());
        }
    }
    for name in [libllvm.as_str(), "libLLVM.so"] {
        let link = prefix_lib.join(name);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(&wanted, &link)
                .with_context(|| format!("failed to link {}", link.display()))?;
        }
    }
    let working = cmd::output(Command::new("bpf-linker").arg("--version"))
        .is_some_and(|v| v.contains(BPF_LINKER_VERSION));
    if working {
        return Ok(());
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

#[cfg(test)]
mod tests {
    /// A floating `nightly` would let a new nightly break a clean clone.
    #[test]
    fn the_ebpf_nightly_is_a_dated_one() {
        let pin = super::ebpf_nightly();
        let date = pin.strip_prefix("nightly-").expect("a nightly");
        let parts: Vec<&str> = date.split('-').collect();
        assert_eq!(parts.len(), 3, "{pin}");
        assert!(parts.iter().all(|p| p.parse::<u32>().is_ok()), "{pin}");
    }
}
