//! `netlat experiment FUNCTION --sysctl KEY=VALUE`: the seed-003 workflow
//! in one command. Record a run with the current setting, apply the new
//! value, record a second run, put the original back (also on Ctrl-C,
//! SIGTERM or an error), and compare.

use std::path::Path;

use anyhow::{Context as _, Result, bail};

use super::{
    compare::print,
    histogram::{Stop, stop, trace},
};
use crate::{
    commands::histogram::HistogramArgs, model::compare::Named, model::report::HistogramReport,
    model::unit::UnitChoice, render, system::atomic_file, system::privileges,
    system::procfs::sysctl,
};

#[derive(clap::Args, Debug, Clone)]
pub struct ExperimentArgs {
    /// Kernel function to time, e.g. tcp_collapse.
    pub function: String,
    /// The setting to try, e.g. net.ipv4.tcp_rmem="4096 1048576 2097152".
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: String,
    /// Length of each of the two runs.
    #[arg(long, value_parser = crate::model::duration::parse, default_value = "10")]
    pub duration: std::time::Duration,
    /// How to time the function (as for histogram).
    #[arg(long, value_enum, default_value_t = crate::tracing::backend::choice::BackendChoice::Auto)]
    pub backend: crate::tracing::backend::choice::BackendChoice,
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
    privileges::check().map_err(anyhow::Error::msg)?;
    let (key, value) = parse_assignment(&args.sysctl)?;
    let original = sysctl::read(&key)
        .with_context(|| format!("unknown sysctl {key} (no {})", sysctl::path(&key)))?;
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        super::check_writable(&dir.join("before.json"))?;
    }
    let online =
        aya::util::online_cpus().map_err(|(path, e)| anyhow::anyhow!("cannot read {path}: {e}"))?;
    let run_args = HistogramArgs {
        function: args.function.clone(),
        seconds: Some(args.duration),
        backend: args.backend,
        unit: UnitChoice::Auto,
        interval: None,
        per_cpu: false,
        cpu: None,
        json: false,
        // experiment writes the files itself, so a failed write cannot cost
        // the other run or the comparison.
        output: None,
        by: args.by,
    };

    stop::runtime()?.block_on(async {
        let mut stop = Stop::install()?;
        eprintln!("netlat: run 1 of 2, with {key} = {original}");
        let before = trace(&run_args, &online, &mut stop, false).await?;
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
        let applied = Applied::apply(&key, &value, &original)?;
        eprintln!(
            "netlat: run 2 of 2, with {key} = {}",
            sysctl::read(&key).unwrap_or_default()
        );
        let after = trace(&run_args, &online, &mut stop, false).await;
        applied.restore()?;
        let after = after?;
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
        save(args, "after", &after.report)
    })
}

/// Writes `NAME.json` into `--output-dir`, whole or not at all.
fn save(args: &ExperimentArgs, name: &str, report: &HistogramReport) -> Result<()> {
    let Some(dir) = &args.output_dir else {
        return Ok(());
    };
    let path = dir.join(format!("{name}.json"));
    atomic_file::write(&path, render::json::render(report, false).as_bytes())?;
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
            Ok((k.trim().to_owned(), sysctl::normalize(v)))
        }
        _ => bail!(
            "invalid --sysctl '{s}': expected KEY=VALUE, e.g. net.ipv4.tcp_rmem=\"4096 1048576 2097152\""
        ),
    }
}

/// A sysctl set to a new value; dropping it puts the original back, so an
/// error or a panic between apply and restore cannot leave the host tuned.
struct Applied {
    key: String,
    original: String,
    restored: bool,
}

impl Applied {
    fn apply(key: &str, value: &str, original: &str) -> Result<Applied> {
        write(key, value)?;
        Ok(Applied {
            key: key.to_owned(),
            original: original.to_owned(),
            restored: false,
        })
    }

    fn restore(mut self) -> Result<()> {
        self.restored = true;
        write(&self.key, &self.original)?;
        eprintln!("netlat: restored {} = {}", self.key, self.original);
        Ok(())
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        if !self.restored {
            let _ = write(&self.key, &self.original);
        }
    }
}

fn write(key: &str, value: &str) -> Result<()> {
    let path = sysctl::path(key);
    std::fs::write(Path::new(&path), value)
        .with_context(|| format!("cannot set {key} = {value} ({path})"))
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
