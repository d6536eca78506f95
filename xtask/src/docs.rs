//! `cargo xtask docs --out DIR`: shell completions and man pages, made by
//! netlat itself from its clap definitions (`netlat completions SHELL`,
//! `netlat man-pages`), so they match the binary they ship with.
//!
//! Layout under DIR: `completions/netlat.bash`, `completions/_netlat` (zsh),
//! `completions/netlat.fish`, `man/man1/netlat*.1`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

/// Builds netlat for the host and generates everything into `out_dir`.
pub fn generate(out_dir: &Path) -> Result<()> {
    let netlat = crate::build_release()?;
    generate_with(&netlat, out_dir)
}

/// Generates with a given netlat binary (one that runs on this host).
pub fn generate_with(netlat: &Path, out_dir: &Path) -> Result<()> {
    let completions = out_dir.join("completions");
    let man = out_dir.join("man/man1");
    for dir in [&completions, &man] {
        fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    }
    for (shell, file) in [
        ("bash", "netlat.bash"),
        ("zsh", "_netlat"),
        ("fish", "netlat.fish"),
    ] {
        let text = crate::cmd::stdout(Command::new(netlat).args(["completions", shell]))?;
        let path = completions.join(file);
        fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))?;
    }
    let pages = crate::cmd::stdout(Command::new(netlat).args(["man-pages", "--out"]).arg(&man))?;
    let pages: Vec<PathBuf> = pages.lines().map(PathBuf::from).collect();
    if pages.is_empty() {
        bail!("{} man-pages wrote no page", netlat.display());
    }
    println!(
        "docs: completions for bash, zsh and fish in {}, {} man pages in {}",
        completions.display(),
        pages.len(),
        man.display()
    );
    Ok(())
}
