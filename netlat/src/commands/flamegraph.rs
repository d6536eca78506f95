//! `netlat flamegraph`: sample for a window, fold what was kept, write
//! the graphs, then report where the samples went and (with `--during`)
//! which functions the slow calls spent their time in.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{
    request::{self, BackendArg},
    stop::{self, Stop},
};
use crate::{
    flamegraph::{
        collect::{Collected, Plan, Sampling},
        culprit,
        draw::{self, Files, Graphs, Titles, Writes},
        summary,
    },
    render::flamegraph::{self as text, Asked, Written},
    system::host::HostInfo,
};

/// The highest `--frequency`: 100 us between samples on every CPU, already
/// a cost the warning about sampled calls speaks of.
const MAX_FREQUENCY: u64 = 10_000;

pub(crate) fn parse_frequency(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(hz) if (1..=MAX_FREQUENCY).contains(&hz) => Ok(hz),
        Ok(_) => Err(format!(
            "{s} Hz is out of range: 1 to {MAX_FREQUENCY} samples per second (each sample stretches the call it lands in)"
        )),
        Err(_) => Err(format!(
            "'{s}' is not a whole number of samples per second (1 to {MAX_FREQUENCY})"
        )),
    }
}

#[derive(clap::Args, Debug, Clone)]
#[command(mut_arg("backend", |a| a.help("How to time --during (as for histogram)").requires("during")))]
pub struct FlamegraphArgs {
    /// How long to sample (30, 2.5, 500ms); without it, until Ctrl-C.
    #[arg(long, value_parser = crate::model::duration::parse, allow_negative_numbers = true)]
    pub duration: Option<std::time::Duration>,
    /// Samples per second on each CPU, 1 to 10000 (each sample stretches
    /// the call it lands in).
    #[arg(long, default_value_t = 99, value_parser = parse_frequency)]
    pub frequency: u64,
    /// Keep only samples taken while this kernel function runs.
    #[arg(long, value_name = "FUNCTION", value_parser = crate::system::kallsyms::function_name)]
    pub during: Option<String>,
    /// Keep only samples from calls of --during that last longer than this (e.g. 1ms).
    #[arg(long, value_parser = crate::model::duration::parse, requires = "during", value_name = "DURATION")]
    pub slower_than: Option<std::time::Duration>,
    #[command(flatten)]
    pub how: BackendArg,
    /// Where to write the SVG.
    #[arg(long, short, default_value = "flamegraph.svg")]
    pub output: std::path::PathBuf,
    /// Also write the collapsed stacks (FlameGraph/inferno folded format).
    #[arg(long, value_name = "FILE")]
    pub folded: Option<std::path::PathBuf>,
    /// Not an argument: caught to point at --during.
    #[arg(hide = true, value_name = "FUNCTION")]
    pub stray: Vec<String>,
    /// Also write a differential flame graph of the slow calls against the
    /// fast ones (red: more of the slow calls' time).
    #[arg(long, value_name = "FILE.svg", requires = "slower_than")]
    pub diff: Option<std::path::PathBuf>,
    /// Print the ranking of functions under --during as JSON on stdout.
    #[arg(long, requires = "during")]
    pub json: bool,
}

/// Mistakes in the arguments alone, before anything is touched.
fn check_args(args: &FlamegraphArgs) -> Result<()> {
    if let Some(first) = args.stray.first() {
        bail!(
            "netlat flamegraph takes no FUNCTION argument: to keep only samples taken while {} runs, use --during {}",
            crate::render::printable(first),
            crate::render::printable(first)
        );
    }
    if let Some(folded) = &args.folded
        && same_file(&args.output, folded)
    {
        bail!(
            "--output and --folded both name {}: give the folded stacks a file of their own",
            folded.display()
        );
    }
    if let Some(diff) = &args.diff
        && (same_file(&args.output, diff)
            || args.folded.as_deref().is_some_and(|f| same_file(f, diff)))
    {
        bail!(
            "--diff names {}, already taken by --output or --folded: give the differential graph a file of its own",
            diff.display()
        );
    }
    Ok(())
}

/// The same path, or two names of one existing file.
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

pub fn run(args: &FlamegraphArgs) -> Result<()> {
    check_args(args)?;
    request::require_privileges()?;
    // Fail on an unwritable path now, not after the whole window.
    super::check_writable(&args.output)?;
    for path in args.folded.iter().chain(&args.diff) {
        super::check_writable(path)?;
    }
    let cpus = request::online_cpus()?;
    let asked = Asked {
        function: args.during.as_deref(),
        slower_than: args.slower_than,
        hz: args.frequency,
        duration: args.duration,
        output: &args.output,
        folded: args.folded.as_deref(),
    };
    let (collected, window) = stop::runtime()?.block_on(collect(args, &asked, &cpus))?;
    let graphs = draw::fold(&collected, asked.function);
    let tally = &collected.samples.tally;
    if graphs.kept.stacks.is_empty() {
        bail!(text::nothing_kept(
            &asked,
            window,
            tally,
            collected.calls.as_ref()
        ));
    }
    let host = HostInfo::read();
    let title = text::title(&asked);
    let subtitle = text::subtitle(&asked, window, &host.hostname, &host.kernel, tally.kept);
    let files = Files {
        svg: &args.output,
        folded: args.folded.as_deref(),
        diff: args.diff.as_deref(),
    };
    let titles = Titles {
        title: &title,
        diff_title: &text::diff_title(&title),
        subtitle: &subtitle,
    };
    let writes = draw::write(&graphs, &files, &titles)?;
    report(args, &asked, &collected, &graphs, writes)
}

/// Samples until `--duration` ends or a signal comes; returns what the
/// maps held and how long the window was.
async fn collect(
    args: &FlamegraphArgs,
    asked: &Asked<'_>,
    cpus: &[u32],
) -> Result<(Collected, Duration)> {
    let mut stop = Stop::install()?;
    let plan = Plan {
        during: args.during.as_deref(),
        slower_than: args.slower_than,
        backend: args.how.backend,
        hz: args.frequency,
    };
    let sampling = Sampling::attach(&plan, cpus)?;
    let started = Instant::now();
    let timed_with = args.during.as_deref().and_then(|f| sampling.timed_with(f));
    eprintln!("{}", text::announce(asked, timed_with.as_deref()));
    super::progress::Progress::start(args.duration)
        .until(&mut stop, args.duration.map(|d| started + d))
        .await;
    let window = started.elapsed();
    Ok((sampling.finish()?, window))
}

/// The report line, then the first failed write as the error, then (with
/// `--during`) the ranking, as a table or JSON.
fn report(
    args: &FlamegraphArgs,
    asked: &Asked,
    collected: &Collected,
    graphs: &Graphs,
    writes: Writes,
) -> Result<()> {
    let Collected { samples, calls, .. } = collected;
    let tally = &samples.tally;
    let written = Written {
        svg: writes.svg_written(),
        folded: writes.folded_written(),
    };
    eprintln!(
        "{}",
        text::report(asked, tally, &graphs.kept, calls.as_ref(), &written)
    );
    writes.first_failure()?;
    let (Some(function), Some(h)) = (&args.during, calls) else {
        return Ok(());
    };
    let ranking = culprit::rank(
        &graphs.kept.stacks,
        args.slower_than.map(|_| &graphs.fast.stacks),
        function,
    );
    let threshold = args
        .slower_than
        .map(|t| humantime::format_duration(t).to_string());
    let slow_calls = if args.slower_than.is_some() {
        tally.slow_calls
    } else {
        h.count
    };
    if let Some(warning) = text::cost_warning(args.slower_than, samples.cost_ns()) {
        eprintln!("{warning}");
    }
    if args.json {
        let doc = summary::Summary::new(function, args.slower_than, samples, slow_calls, ranking);
        println!("{}", text::json(&doc)?);
    } else {
        print!(
            "{}",
            text::culprit_table(
                &ranking,
                &text::Calls {
                    function,
                    threshold: threshold.as_deref(),
                    calls: slow_calls,
                    fast_calls: tally.fast_calls,
                    hz: args.frequency,
                }
            )
        );
    }
    Ok(())
}
