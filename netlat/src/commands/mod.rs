//! One module per subcommand: checks, then the data path, then output.

pub mod captures;
pub mod compare;
pub mod completions;
pub mod experiment;
pub mod flamegraph;
pub mod histogram;
pub mod info;
pub mod progress;
pub mod record;
pub mod report;
pub mod request;
pub mod slow;
pub mod softirq;
pub mod stop;

use std::path::Path;

use anyhow::Result;

use crate::system::atomic_file;

/// Checks that `path` can be written (replaced whole, see `atomic_file`)
/// without creating it, so a run that fails later leaves no file behind and
/// a path that can never hold a result is refused before tracing starts.
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    Ok(atomic_file::check(path)?)
}
