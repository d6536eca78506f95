//! `netlat experiment FUNCTION --sysctl KEY=VALUE`: the before-and-after
//! workflow of "The story of one latency spike" in one command. Record a run with the current setting, apply the new
//! value, record a second run, put the original back (also on Ctrl-C,
//! SIGTERM, SIGHUP or an error), and compare. The change is journaled first
//! (`system::journal`), so even a SIGKILLed experiment is undone by the next
//! netlat run.

use anyhow::{Context as _, Result, bail};

use super::{
    compare::print,
    histogram::trace,
    request::{self, BackendArg, TraceRequest},
    stop::{self, Stop},
};
use crate::{
    model::compare::Named,
    model::report::{Experiment, ExperimentRun, HistogramReport},
    render,
    system::atomic_file,
    system::journal::{self, Journal},
    system::procfs::sysctl,
    system::sysctl_change::{self, Change, Restore},
};

#[derive(clap::Args, Debug, Clone)]
#[command(mut_arg("backend", |a| a.help("How to time the function (as for histogram)")))]
pub struct ExperimentArgs {
    /// Kernel function to time, e.g. tcp_collapse.
    #[arg(required_unless_present = "restore", value_parser = crate::system::kallsyms::function_name)]
    pub function: Option<String>,
    /// The setting to try, e.g. net.ipv4.tcp_rmem="4096 1048576 2097152".
    #[arg(long, value_name = "KEY=VALUE", required_unless_present = "restore")]
    pub sysctl: Option<String>,
    /// Put back every sysctl a netlat experiment changed and could not
    /// restore (it was killed), from its records in /run/netlat, then exit.
    /// Any netlat run as root does this too, at start-up.
    #[arg(long, conflicts_with_all = ["function", "sysctl", "output_dir"])]
    pub restore: bool,
    /// Length of each of the two runs.
    #[arg(long, value_parser = crate::model::duration::parse, default_value = "10")]
    pub duration: std::time::Duration,
    #[command(flatten)]
    pub how: BackendArg,
    /// Group each run's calls, as for histogram (e.g. rcvbuf).
    #[arg(long, value_enum, value_name = "KEY")]
    pub by: Option<crate::tracing::group_by::GroupBy>,
    /// Write before.json and after.json here (for netlat compare).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<std::path::PathBuf>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ExperimentArgs) -> Result<()> {
    request::require_privileges()?;
    if args.restore {
        return restore_recorded();
    }
    let (Some(function), Some(assignment)) = (&args.function, &args.sysctl) else {
        bail!("experiment needs FUNCTION and --sysctl KEY=VALUE (or --restore)");
    };
    let (key, value) = parse_assignment(assignment)?;
    let journal = Journal::host();
    // Held for the whole experiment (trial, run 1, change, run 2, restore):
    // a second experiment on this key is refused at once. Claimed before
    // the original is read, so another netlat's trial value, in force for
    // a moment, is never taken for the original.
    let claim = journal.claim(&key)?;
    let key = claim.key().to_owned();
    let original = sysctl::read(&key).with_context(|| format!("cannot read sysctl {key}"))?;
    // Found now, not after run 1: a bad value, a read-only key.
    let trial = sysctl_change::trial(&claim, &value, &original)
        .map_err(|e| anyhow::anyhow!("{e} (checked before run 1; nothing was changed)"))?;
    if trial != value {
        eprintln!("netlat: note: {key} reads back as {trial} after writing {value}");
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        super::check_writable(&dir.join("before.json"))?;
    }
    let online = request::online_cpus()?;
    // experiment writes the files itself (output: None), so a failed
    // write cannot cost the other run or the comparison.
    let run_args = TraceRequest {
        by: args.by,
        ..TraceRequest::plain(function, args.how.backend, Some(args.duration))
    };

    stop::runtime()?.block_on(async {
        let mut stop = Stop::install()?;
        eprintln!("netlat: run 1 of 2, with {key} = {original}");
        let mut before = trace(&run_args, &online, &mut stop, false).await?;
        // Recorded in both files: the key may be outside the ones every
        // report carries (net.core.somaxconn), and compare must see it.
        let experiment = |run, during: &str| Experiment {
            sysctl: key.clone(),
            before: original.clone(),
            during: during.to_owned(),
            run,
        };
        before.report.experiment = Some(experiment(ExperimentRun::Before, &trial));
        if before.interrupted {
            eprintln!("netlat: interrupted before {key} was changed");
            print(&[named("before", before.report.clone())], args.json)?;
            return save(args, "before", &before.report);
        }
        if let Err(e) = save(args, "before", &before.report) {
            // Nothing changed yet: show run 1 and stop before touching the host.
            print(&[named("before", before.report)], args.json)?;
            return Err(e.context(format!("{key} was not changed")));
        }
        let change = match Change::apply(&claim, &value, &original) {
            Ok(change) => change,
            Err(e) => {
                print(&[named("before", before.report)], args.json)?;
                return Err(e.into());
            }
        };
        eprintln!("netlat: run 2 of 2, with {key} = {}", change.value());
        let set = change.value().to_owned();
        let after = trace(&run_args, &online, &mut stop, false).await;
        // A failed restore is reported after the runs are printed; the
        // journal keeps the record for the next netlat run.
        let restored = change.restore();
        match &restored {
            Ok(Restore::Restored) => eprintln!("netlat: restored {key} = {original}"),
            Ok(Restore::LeftAlone { now }) => eprintln!(
                "netlat: not restoring {key}: it is now {now}, not the {set} netlat set, so someone changed it during run 2; it was {original} before"
            ),
            Err(_) => {}
        }
        let mut after = match after {
            Ok(after) => after,
            Err(e) => {
                print(&[named("before", before.report)], args.json)?;
                restored?;
                return Err(e.context("run 2 failed"));
            }
        };
        after.report.experiment = Some(experiment(ExperimentRun::After, &set));
        if after.interrupted {
            eprintln!("netlat: interrupted during run 2; comparing what was collected");
        }
        print(
            &[
                named("before", before.report),
                named("after", after.report.clone()),
            ],
            args.json,
        )?;
        let saved = save(args, "after", &after.report);
        restored?;
        saved
    })
}

/// Writes `NAME.json` into `--output-dir`, whole or not at all.
fn save(args: &ExperimentArgs, name: &str, report: &HistogramReport) -> Result<()> {
    let Some(dir) = &args.output_dir else {
        return Ok(());
    };
    let path = dir.join(format!("{name}.json"));
    atomic_file::write(&path, render::histogram::json(report, false).as_bytes())?;
    Ok(())
}

fn named(name: &str, report: HistogramReport) -> Named {
    Named {
        name: name.to_owned(),
        report,
    }
}

/// `net.ipv4.tcp_rmem=4096 1048576 2097152` -> (key, value).
pub fn parse_assignment(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            let key = sysctl::canonical(k.trim())?;
            Ok((key, sysctl::normalize(v)))
        }
        _ => bail!(
            "invalid --sysctl '{s}': expected KEY=VALUE, e.g. net.ipv4.tcp_rmem=\"4096 1048576 2097152\""
        ),
    }
}

/// `--restore`: the journal's records whose netlat is gone, put back.
fn restore_recorded() -> Result<()> {
    let outcomes = Journal::host().recover();
    if outcomes.is_empty() {
        eprintln!(
            "netlat: nothing to restore (no records in {})",
            journal::DIR
        );
    }
    let mut failed = 0;
    for outcome in &outcomes {
        eprintln!("{outcome}");
        failed += usize::from(outcome.is_failure());
    }
    if failed > 0 {
        bail!(
            "{failed} restore record(s) in {} could not be acted on; they stay there",
            journal::DIR
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments() {
        assert_eq!(
            parse_assignment("net.ipv4.tcp_rmem=4096 1048576  2097152").unwrap(),
            (
                "net.ipv4.tcp_rmem".to_owned(),
                "4096 1048576 2097152".to_owned()
            )
        );
        for bad in ["net.core.netdev_budget", "=3", "net.core.netdev_budget="] {
            let err = parse_assignment(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid --sysctl"), "{err}");
        }
    }
}
