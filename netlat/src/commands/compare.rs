//! `netlat compare A.json B.json [...]`: load, check, compare, render.

use std::io::Write as _;

use anyhow::{Context as _, Result};

use crate::{
    cli::CompareArgs,
    compare::{self, Named},
    render,
};

pub fn run(args: &CompareArgs) -> Result<()> {
    let runs = args
        .files
        .iter()
        .map(|p| compare::load(p))
        .collect::<Result<Vec<Named>, _>>()?;
    compare::check_functions(&runs, args.force)?;
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
