use anyhow::{Context as _, anyhow, bail};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("MetadataCommand::exec")?;
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
