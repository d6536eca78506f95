//! `netlat flamegraph`'s files: the window's samples folded, then drawn
//! into the SVG, the folded stacks and the differential graph.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::{
    collect::Collected,
    fold::{self, Folded},
    svg,
};
use crate::system::atomic_file::{self, WriteError};

/// The kept samples' stacks (drawn) and the fast calls' (ranked against).
pub struct Graphs {
    pub kept: Folded,
    pub fast: Folded,
}

/// Folds both sets of samples, under `during` when sampling was limited
/// to its calls.
pub fn fold(collected: &Collected, during: Option<&str>) -> Graphs {
    let anchor = during.map(|function| fold::Anchor {
        function,
        softirq: collected.softirq,
    });
    let samples = &collected.samples;
    Graphs {
        kept: fold::fold(&samples.kept, &collected.symbols, anchor),
        fast: fold::fold(&samples.fast, &collected.symbols, anchor),
    }
}

/// Where each file goes: `--output`, `--folded`, `--diff`.
pub struct Files<'a> {
    pub svg: &'a Path,
    pub folded: Option<&'a Path>,
    pub diff: Option<&'a Path>,
}

/// The text on the graphs.
pub struct Titles<'a> {
    pub title: &'a str,
    pub diff_title: &'a str,
    pub subtitle: &'a str,
}

/// Each file's write, held so the report can say what was measured
/// before a failed write becomes the error.
pub struct Writes {
    svg: Result<(), WriteError>,
    folded: Option<Result<(), WriteError>>,
    diff: Option<Result<(), WriteError>>,
}

impl Writes {
    pub fn svg_written(&self) -> bool {
        self.svg.is_ok()
    }

    pub fn folded_written(&self) -> bool {
        self.folded.as_ref().is_some_and(Result::is_ok)
    }

    /// The first failed write, in the order the files were written.
    pub fn first_failure(self) -> Result<()> {
        self.svg?;
        self.folded.transpose()?;
        self.diff.transpose()?;
        Ok(())
    }
}

/// Writes every file asked for, even after one failed (a full disk), so
/// none is lost to another's error; drawing a graph is the only failure
/// returned here.
pub fn write(graphs: &Graphs, files: &Files, titles: &Titles) -> Result<Writes> {
    let image = svg::render(&graphs.kept.stacks, titles.title, titles.subtitle)
        .context("cannot render the flame graph")?;
    let svg = atomic_file::write(files.svg, &image);
    let folded = files
        .folded
        .map(|path| atomic_file::write(path, fold::to_text(&graphs.kept.stacks).as_bytes()));
    let diff = match files.diff {
        Some(path) => {
            let image = svg::render_diff(
                &graphs.fast.stacks,
                &graphs.kept.stacks,
                titles.diff_title,
                titles.subtitle,
            )
            .context("cannot render the differential flame graph")?;
            Some(atomic_file::write(path, &image))
        }
        None => None,
    };
    Ok(Writes { svg, folded, diff })
}
