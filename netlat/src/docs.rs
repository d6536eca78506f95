//! Shell completions and man pages, generated from the clap definitions so
//! they never drift from the real options. Built into the binary itself:
//! whoever copies the one static netlat onto a host can generate them
//! there (`netlat completions bash`), and `cargo xtask docs` gets them from
//! the same code for release archives.

use std::{
    io,
    path::{Path, PathBuf},
};

use clap_complete::Shell;

use crate::system::atomic_file::{self, WriteError};

/// The subcommands a user can type (hidden ones left out) of `cmd`, the
/// built command tree (`cli::command`).
pub fn subcommands(cmd: &clap::Command) -> Vec<String> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_owned())
        .collect()
}

pub fn completions(cmd: &clap::Command, shell: Shell, out: &mut dyn io::Write) {
    let mut cmd = cmd.clone();
    clap_complete::generate(shell, &mut cmd, "netlat", out);
}

/// Writes `netlat.1` and one `netlat-SUBCOMMAND.1` per subcommand of `cmd`
/// into `dir`, each whole or not at all; returns their paths.
pub fn man_pages(cmd: &clap::Command, dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    let pages = std::iter::once(cmd.clone())
        .chain(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut written = Vec::new();
    for page in pages {
        let man = clap_mangen::Man::new(page);
        let path = dir.join(man.get_filename());
        let mut roff = Vec::new();
        man.render(&mut roff).map_err(|e| WriteError::Io {
            path: path.display().to_string(),
            why: crate::oneline::io_text(&e),
        })?;
        atomic_file::write(&path, &roff)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_is_in_each_shells_completions() {
        let cmd = crate::cli::command();
        let subcommands = subcommands(&cmd);
        assert!(subcommands.len() >= 7, "{subcommands:?}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(&cmd, shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            for sub in &subcommands {
                assert!(text.contains(sub.as_str()), "{shell}: no {sub}");
            }
        }
    }
}
