//! `netlat completions SHELL` and `netlat man-pages --out DIR`: generated
//! from the clap definitions (see `docs`).

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::docs;

#[derive(clap::Args, Debug, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete for; e.g. `netlat completions bash >
    /// /etc/bash_completion.d/netlat`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `cmd`: the whole command tree, handed down by `cli` (which owns it).
pub fn run(args: &CompletionsArgs, cmd: &clap::Command) -> Result<()> {
    let mut text = Vec::new();
    docs::completions(cmd, args.shell, &mut text);
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(&text)
        .and_then(|()| out.flush())
        .context("cannot write the completions")
}

#[derive(clap::Args, Debug, Clone)]
pub struct ManPagesArgs {
    /// Directory to write netlat.1 and netlat-SUBCOMMAND.1 into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run_man_pages(args: &ManPagesArgs, cmd: &clap::Command) -> Result<()> {
    if !args.out.is_dir() {
        bail!(
            "--out {}: not a directory (create it first)",
            args.out.display()
        );
    }
    let pages = docs::man_pages(cmd, &args.out)
        .with_context(|| format!("cannot write man pages into {}", args.out.display()))?;
    for page in pages {
        println!("{}", page.display());
    }
    Ok(())
}
