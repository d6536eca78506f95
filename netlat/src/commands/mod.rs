//! One module per subcommand: checks, then the data path, then output.

pub mod captures;
pub mod compare;
pub mod completions;
pub mod experiment;
pub mod flamegraph;
pub mod histogram;
pub mod info;
pub mod progress;
pub mod slow;
pub mod softirq;
pub mod stop;

use std::{io::Write as _, path::Path};

use anyhow::{Result, bail};

use crate::{
    system::atomic_file,
    system::kallsyms::{self, Lookup},
    tracing::backend::{
        Backend,
        attach::{self, Globals, Tracer},
        choice::{self, BackendChoice},
    },
    tracing::group_by::{self, GroupBy},
};

/// Attaches the best backend the user allows for `function`. kallsyms is
/// consulted only when that fails: it turns "the kernel refused" into
/// "no such function, did you mean ..." and keeps it (a 10 MB read) off the
/// start-up path of every successful run.
pub(crate) fn attach_traced(
    function: &str,
    choice: BackendChoice,
    globals: &Globals,
) -> Result<(Tracer, Vec<(Backend, String)>)> {
    kallsyms::function_name(function).map_err(anyhow::Error::msg)?;
    let mut candidates = choice::candidates(choice, function).map_err(anyhow::Error::msg)?;
    if globals.rcvbuf_offset.is_some() {
        candidates = group_by::argument_backends(GroupBy::Rcvbuf, &candidates)
            .map_err(anyhow::Error::msg)?;
    }
    match attach::attach_first(function, &candidates, globals) {
        Ok(attached) => Ok(attached),
        Err(e) => {
            check_function(function)?;
            Err(e.into())
        }
    }
}

/// The first line on stderr: what is traced, how, for how long, and why
/// any better backend was skipped.
pub(crate) fn announce(
    what: &str,
    function: &str,
    tracer: &Tracer,
    skipped: &[(Backend, String)],
    seconds: Option<std::time::Duration>,
) {
    let how_long = match seconds {
        Some(d) => format!("for {}", humantime::format_duration(d)),
        None => "until Ctrl-C".to_owned(),
    };
    let fallback = if skipped.is_empty() {
        String::new()
    } else {
        let why: Vec<String> = skipped.iter().map(|(b, w)| format!("{b}: {w}")).collect();
        format!(" (skipped {})", why.join("; "))
    };
    // Not eprintln: with stderr on a full device it panics, and a run that
    // cannot say it started can still trace.
    let _ = writeln!(
        std::io::stderr(),
        "netlat: tracing {what} with {}{fallback} {how_long}",
        tracer.backend().detail(function)
    );
}

/// Fails with a one-line reason unless kallsyms knows `function` as code.
fn check_function(function: &str) -> Result<()> {
    // Without kallsyms the kernel's own refusal decides.
    let Ok(file) = std::fs::File::open("/proc/kallsyms") else {
        return Ok(());
    };
    match kallsyms::lookup(std::io::BufReader::new(file), function) {
        Lookup::Function => Ok(()),
        Lookup::NotAFunction(ty) => {
            bail!("{function} is a kernel symbol of type '{ty}' in /proc/kallsyms, not a function")
        }
        Lookup::Unknown { suggestions } if suggestions.is_empty() => {
            bail!("unknown kernel function {function} (not in /proc/kallsyms)")
        }
        Lookup::Unknown { suggestions } => bail!(
            "unknown kernel function {function} (not in /proc/kallsyms); did you mean {}?",
            suggestions.join(", ")
        ),
    }
}

/// Checks that `path` can be written (replaced whole, see `atomic_file`)
/// without creating it, so a run that fails later leaves no file behind and
/// a path that can never hold a result is refused before tracing starts.
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    Ok(atomic_file::check(path)?)
}
