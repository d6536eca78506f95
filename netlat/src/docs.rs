//! Shell completions and man pages, generated from the clap definitions so
//! they never drift from the real options. Built into the binary itself:
//! whoever copies the one static netlat onto a host can generate them
//! there (`netlat completions bash`), and `cargo xtask docs` gets them from
//! the same code for release archives.

use std::{
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::Cli;

/// The command tree as users see it: built (so subcommands carry their
/// full names), without clap's `help` pseudo-subcommand.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The subcommands a user can type (hidden ones left out).
pub fn subcommands() -> Vec<String> {
    command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_owned())
        .collect()
}

pub fn completions(shell: Shell, out: &mut dyn io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "netlat", out);
}

/// Writes `netlat.1` and one `netlat-SUBCOMMAND.1` per subcommand into
/// `dir`; returns their paths.
pub fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let cmd = command();
    let pages = std::iter::once(cmd.clone())
        .chain(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut written = Vec::new();
    for page in pages {
        let man = clap_mangen::Man::new(page);
        let mut roff = Vec::new();
        man.render(&mut roff)?;
        let path = dir.join(man.get_filename());
        write_whole(&path, &roff)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes through a temporary file and a rename: a reader never sees a
/// half-written page.
pub fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_is_in_each_shells_completions() {
        let subcommands = subcommands();
        assert!(subcommands.len() >= 7, "{subcommands:?}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            for sub in &subcommands {
                assert!(text.contains(sub.as_str()), "{shell}: no {sub}");
            }
        }
    }
}
