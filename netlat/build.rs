use std::{path::Path, process::Command};

use anyhow::{Context as _, anyhow, bail};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let cargo_metadata::Metadata {
        packages,
        workspace_root,
        ..
    } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("MetadataCommand::exec")?;
    version_facts(workspace_root.as_std_path());
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "netlat-ebpf")
        .ok_or_else(|| anyhow!("netlat-ebpf package not found"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    let nightly = pinned_nightly(root_dir.as_std_path())?;
    aya_build::build_ebpf(
        [Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        Toolchain::Custom(&nightly),
    )
}

/// `netlat --version` names the commit and the aya release it was built
/// from. A tarball without .git, or a machine without git, still builds:
/// the commit is then "unknown".
fn version_facts(workspace: &Path) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(workspace)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    // No "-dirty" mark: edits to the work tree do not rerun this script,
    // so it would go stale.
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    println!(
        "cargo:rustc-env=NETLAT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    // Rebuild when HEAD moves: HEAD itself, the branch it names, packed refs.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = workspace.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let lock = workspace.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let aya = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| locked_version(&text, "aya"))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=NETLAT_AYA_VERSION={aya}");
}

/// The version Cargo.lock resolved for `name`: a `[[package]]` entry's
/// `name = "..."` line is followed by its `version = "..."` line.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_owned());
        }
    }
    None
}

/// The dated nightly pinned in netlat-ebpf/rust-toolchain.toml (the one
/// place it is named; `cargo xtask setup` installs it). aya-build already
/// reruns this script when a file in that directory changes.
fn pinned_nightly(ebpf_dir: &std::path::Path) -> anyhow::Result<String> {
    let file = ebpf_dir.join("rust-toolchain.toml");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("failed to read {}", file.display()))?;
    let channel = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel"))
        .and_then(|rest| rest.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .with_context(|| format!("no channel line in {}", file.display()))?;
    let installed = std::process::Command::new("rustup")
        .args(["run", &channel, "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        bail!(
            "the eBPF object is built with {channel} (pinned in {}), which is not installed: run `cargo xtask setup`",
            file.display()
        );
    }
    Ok(channel)
}
