//! `netlat compare A.json B.json [...]`: load, check, compare, render.

use std::io::Write as _;

use anyhow::{Context as _, Result};

use crate::{
    model::compare::{self, Named},
    render::{self, printable},
    system::run_file,
};

#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Result files written by `netlat histogram --output`; the first is the baseline.
    #[arg(required = true, num_args = 2.., value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// Compare runs of different functions.
    #[arg(long)]
    pub force: bool,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &CompareArgs) -> Result<()> {
    // Errors quote the files (a function name, a JSON fragment): printable.
    let shown = |e: compare::CompareError| anyhow::anyhow!("{}", printable(&e.to_string()));
    let runs = args
        .files
        .iter()
        .map(|p| run_file::load(p))
        .collect::<Result<Vec<Named>, _>>()
        .map_err(shown)?;
    compare::check_functions(&runs, args.force).map_err(shown)?;
    print(&runs, args.json)
}

/// Prints the comparison of `runs` as a table, or as JSON.
pub(crate) fn print(runs: &[Named], json: bool) -> Result<()> {
    let comparison = compare::compare(runs);
    let text = if json {
        serde_json::to_string_pretty(&comparison).context("cannot serialize the comparison")? + "\n"
    } else {
        render::compare::render(&comparison)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the comparison")
}
