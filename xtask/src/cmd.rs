//! Running child processes with errors that name what failed.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Runs a command and returns its stdout; `None` if it could not run or failed.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command and returns its stdout; an error, with its stderr, if it
/// could not run or failed.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn cargo(args: &[&str]) -> Result<()> {
    run(Command::new(env!("CARGO"))
        .args(args)
        .current_dir(crate::workspace_root()))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn run_as_root(bin: &Path, args: &[String]) -> Result<()> {
    let mut cmd = if is_root() {
        Command::new(bin)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg(bin);
        sudo
    };
    let status = cmd
        .args(args)
        .status()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    std::process::exit(status.code().unwrap_or(1));
}
