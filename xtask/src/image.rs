//! The container image (deploy/Containerfile): built FROM scratch around
//! the static netlat binary with Debian's podman, then checked for what it
//! holds: the entrypoint and command, one layer with exactly that binary
//! (same SHA-256), nothing else. Running it is tried too; where the
//! machine's limits refuse containers (crun cannot set RLIMIT_NPROC on
//! CI's machines) that is said, and the run is left to hosts that allow it.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{cmd, workspace_root};

pub const DEFAULT_TAG: &str = "localhost/netlat:dev";
/// Where the Containerfile puts the binary.
const BINARY: &str = "usr/local/bin/netlat";

#[derive(clap::Args)]
pub struct ImageArgs {
    /// Name for the built image.
    #[arg(long, default_value = DEFAULT_TAG)]
    pub tag: String,
    /// Then check what the image holds, as `cargo xtask test` does.
    #[arg(long)]
    pub check: bool,
}

/// podman from Debian when missing.
fn ensure_podman() -> Result<()> {
    crate::setup::debian_packages(&[("podman", "podman")], "image")
}

/// Builds the image from `netlat` (a static binary); returns the image id.
pub fn build(netlat: &Path, tag: &str) -> Result<String> {
    ensure_podman()?;
    let context = workspace_root().join("target/image/context");
    if context.exists() {
        fs::remove_dir_all(&context)
            .with_context(|| format!("failed to clear {}", context.display()))?;
    }
    fs::create_dir_all(&context)?;
    fs::copy(netlat, context.join("netlat"))
        .with_context(|| format!("failed to copy {}", netlat.display()))?;
    cmd::run(
        Command::new("podman")
            .args(["build", "--quiet", "--file"])
            .arg(workspace_root().join("deploy/Containerfile"))
            .args(["--tag", tag])
            .arg(&context),
    )?;
    let id = crate::cmd::stdout(
        Command::new("podman").args(["image", "inspect", "--format", "{{.Id}}", tag]),
    )?;
    Ok(id.trim().to_owned())
}

/// `cargo xtask image`: the static binary, then the image.
pub fn run(args: &ImageArgs) -> Result<()> {
    // The same file `cargo xtask dist` ships and the VM stage boots.
    let netlat = crate::dist::binary(crate::arch::Arch::X86_64)?;
    let id = build(&netlat, &args.tag)?;
    println!("image: built {} ({id})", args.tag);
    if args.check {
        check(&args.tag, &netlat)?;
    }
    Ok(())
}

/// The image test of `cargo xtask test`: build, then check what it holds.
pub fn test() -> Result<()> {
    run(&ImageArgs {
        tag: DEFAULT_TAG.to_owned(),
        check: true,
    })
}

fn check(tag: &str, netlat: &Path) -> Result<()> {
    let inspect: Value = serde_json::from_str(&crate::cmd::stdout(
        Command::new("podman").args(["image", "inspect", tag]),
    )?)
    .context("podman image inspect gave no JSON")?;
    let config = &inspect[0]["Config"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    check_config(
        &strings(&config["Entrypoint"]),
        &strings(&config["Cmd"]),
        config["User"].as_str().unwrap_or(""),
        config["ExposedPorts"].get("9435/tcp").is_some(),
    )?;
    let files = layer_files(tag)?;
    let want = sha256(netlat)?;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    if names != [BINARY] {
        bail!("the image should hold only {BINARY}, it holds {names:?}");
    }
    if files[0].1 != want {
        bail!(
            "{BINARY} in the image has SHA-256 {}, the static build {want}",
            files[0].1
        );
    }
    println!(
        "image: {tag}: entrypoint /{BINARY}, one file, SHA-256 {want} = {}",
        netlat.display()
    );
    try_running(tag, netlat)
}

/// What the Containerfile must say, as podman recorded it.
fn check_config(entrypoint: &[String], cmd: &[String], user: &str, port: bool) -> Result<()> {
    let expected = format!("/{BINARY}");
    if entrypoint != [expected.as_str()] {
        bail!("entrypoint is {entrypoint:?}, not [{expected:?}]");
    }
    if cmd != ["serve", "--listen", "0.0.0.0:9435", "--doctor"] {
        bail!("command is {cmd:?}, not serve --listen 0.0.0.0:9435 --doctor");
    }
    if user != "0" {
        bail!("user is {user:?}, not 0 (capabilities reach only root's effective set)");
    }
    if !port {
        bail!("port 9435/tcp is not exposed");
    }
    Ok(())
}

/// Every regular file in the image's layers with its SHA-256, from
/// `podman save` (a docker-archive: manifest.json names the layer tars).
fn layer_files(tag: &str) -> Result<Vec<(String, String)>> {
    let dir = workspace_root().join("target/image/saved");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(dir.join("layers"))?;
    let archive = dir.join("image.tar");
    cmd::run(
        Command::new("podman")
            .args(["save", "--quiet", "--format", "docker-archive", "--output"])
            .arg(&archive)
            .arg(tag),
    )?;
    cmd::run(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&dir),
    )?;
    let manifest: Value = serde_json::from_str(&fs::read_to_string(dir.join("manifest.json"))?)
        .context("the saved image has no readable manifest.json")?;
    let layers: Vec<PathBuf> = manifest[0]["Layers"]
        .as_array()
        .context("manifest.json lists no layers")?
        .iter()
        .filter_map(|l| l.as_str().map(|l| dir.join(l)))
        .collect();
    let root = dir.join("layers");
    for layer in &layers {
        cmd::run(
            Command::new("tar")
                .arg("-xf")
                .arg(layer)
                .arg("-C")
                .arg(&root),
        )?;
    }
    let mut files = Vec::new();
    walk(&root, &root, &mut files)?;
    files.sort();
    Ok(files)
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, files)?;
        } else {
            let name = path.strip_prefix(root)?.to_string_lossy().into_owned();
            files.push((name, sha256(&path)?));
        }
    }
    Ok(())
}

fn sha256(path: &Path) -> Result<String> {
    let out = crate::cmd::stdout(Command::new("sha256sum").arg(path))?;
    out.split_whitespace()
        .next()
        .map(str::to_owned)
        .with_context(|| format!("sha256sum printed nothing for {}", path.display()))
}

/// `podman run IMAGE --version` must print what the binary prints; a
/// refusal by the machine (not by the image) is reported, not failed.
fn try_running(tag: &str, netlat: &Path) -> Result<()> {
    let want = crate::cmd::stdout(Command::new(netlat).arg("--version"))?;
    let out = Command::new("podman")
        .args(["run", "--rm", "--network", "none", tag, "--version"])
        .output()
        .context("failed to run podman run")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        let got = String::from_utf8_lossy(&out.stdout);
        if got != want {
            bail!("the image's netlat --version printed {got:?}, the binary {want:?}");
        }
        println!("image: podman run {tag} --version: {}", got.trim());
        return Ok(());
    }
    if machine_refused(&stderr) {
        println!(
            "image: podman run is refused by this machine's limits, so the image was not run here (run it where containers are allowed): {}",
            stderr.lines().last().unwrap_or("").trim()
        );
        return Ok(());
    }
    bail!("podman run {tag} --version failed: {}", stderr.trim());
}

/// The OCI runtime failing to set up the container, before netlat starts.
fn machine_refused(stderr: &str) -> bool {
    stderr.contains("OCI runtime") || stderr.contains("crun:") || stderr.contains("RLIMIT")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn config_checks_name_what_is_wrong() {
        let entry = strings(&["/usr/local/bin/netlat"]);
        let cmd = strings(&["serve", "--listen", "0.0.0.0:9435", "--doctor"]);
        assert!(check_config(&entry, &cmd, "0", true).is_ok());
        let err = check_config(&strings(&["/bin/sh"]), &cmd, "0", true).unwrap_err();
        assert!(err.to_string().contains("entrypoint"), "{err}");
        let err = check_config(&entry, &strings(&["serve"]), "0", true).unwrap_err();
        assert!(err.to_string().contains("command"), "{err}");
        assert!(check_config(&entry, &cmd, "1000", true).is_err());
        assert!(check_config(&entry, &cmd, "0", false).is_err());
    }

    #[test]
    fn tells_a_refusing_machine_from_a_broken_image() {
        assert!(machine_refused(
            "Error: OCI runtime error: crun: setrlimit `RLIMIT_NPROC`: Operation not permitted"
        ));
        assert!(!machine_refused(
            "Error: executable file `/usr/local/bin/netlat` not found"
        ));
    }
}
