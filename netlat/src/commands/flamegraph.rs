//! `netlat flamegraph`: attach the sampler (and the timing programs for
//! `--during`), wait, then fold and draw what was kept.

use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use aya::Ebpf;
use netlat_common::sample_filter;

use super::{
    request::{self, BackendArg},
    stop::{self, Stop},
};
use crate::{
    flamegraph::{culprit, fold, sampler, summary, svg},
    model::histogram::Histogram,
    render::flamegraph::{self as text, Asked, Written},
    system::atomic_file,
    system::host::HostInfo,
    system::kallsyms::Symbols,
    tracing::backend::attach::{self, Globals, Tracer},
    tracing::collect::Collector,
    tracing::session,
};

/// The object the sampler lives in: alone, or beside the timing programs.
enum Probes {
    Plain(Ebpf),
    During(Tracer),
}

impl Probes {
    fn attach_sampler(&mut self, hz: u64, cpus: &[u32]) -> Result<()> {
        match self {
            Probes::Plain(e) => session::attach_sampler(e, hz, cpus),
            Probes::During(t) => t.attach_sampler(hz, cpus),
        }
    }

    fn detach_sampler(&mut self) -> Result<()> {
        match self {
            Probes::Plain(e) => session::detach_sampler(e),
            Probes::During(t) => t.detach_sampler(),
        }
    }

    /// The object, for reading the sampler's maps.
    fn ebpf(&self) -> &Ebpf {
        match self {
            Probes::Plain(e) => e,
            Probes::During(t) => t.ebpf(),
        }
    }
}

/// The highest `--frequency`: 100 us between samples on every CPU, already
/// a cost the warning about sampled calls speaks of.
const MAX_FREQUENCY: u64 = 10_000;

fn parse_frequency(s: &str) -> Result<u64, String> {
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
    stop::runtime()?.block_on(async {
        let mut stop = Stop::install()?;
        let mut probes = attach_probes(args)?;
        probes.attach_sampler(args.frequency, &cpus)?;
        // Read while netlat's programs are loaded, so their JIT-ed frames
        // have names (kallsyms drops them at unload).
        let symbols =
            Symbols::read().context("cannot read /proc/kallsyms to name the stack frames")?;
        let started = Instant::now();
        let timed_with = match &probes {
            Probes::During(t) => args.during.as_deref().map(|f| t.backend().detail(f)),
            Probes::Plain(_) => None,
        };
        eprintln!("{}", text::announce(&asked, timed_with.as_deref()));
        super::progress::Progress::start(args.duration)
            .until(&mut stop, args.duration.map(|d| started + d))
            .await;
        let window = started.elapsed();

        // Detach everything before reading: the maps are then final.
        probes.detach_sampler()?;
        let (calls, softirq) = match &mut probes {
            Probes::During(t) => {
                t.detach()?;
                let softirq = t.backend().times_softirq();
                (
                    Some(Histogram::merged(&Collector::new().read(t)?.per_cpu)),
                    softirq,
                )
            }
            Probes::Plain(_) => (None, false),
        };
        let samples = sampler::read(probes.ebpf())?;
        let tally = &samples.tally;

        let anchor = args
            .during
            .as_deref()
            .map(|function| fold::Anchor { function, softirq });
        let folded = fold::fold(&samples.kept, &symbols, anchor);
        let fast = fold::fold(&samples.fast, &symbols, anchor);
        let host = HostInfo::read();
        let title = text::title(&asked);
        let subtitle = text::subtitle(&asked, window, &host.hostname, &host.kernel, tally.kept);
        if folded.stacks.is_empty() {
            bail!(text::nothing_kept(&asked, window, tally, calls.as_ref()));
        }
        let image = svg::render(&folded.stacks, &title, &subtitle)
            .context("cannot render the flame graph")?;
        // Every file is attempted and what was measured is printed even
        // if a write fails (a full disk), then the first failure is the error.
        let svg_written = atomic_file::write(&args.output, &image);
        let folded_written = args
            .folded
            .as_ref()
            .map(|path| atomic_file::write(path, fold::to_text(&folded.stacks).as_bytes()));
        let diff_written = match &args.diff {
            Some(path) => {
                let title = text::diff_title(&title);
                let image = svg::render_diff(&fast.stacks, &folded.stacks, &title, &subtitle)
                    .context("cannot render the differential flame graph")?;
                Some(atomic_file::write(path, &image))
            }
            None => None,
        };
        let written = Written {
            svg: svg_written.is_ok(),
            folded: folded_written.as_ref().is_some_and(Result::is_ok),
        };
        eprintln!(
            "{}",
            text::report(&asked, tally, &folded, calls.as_ref(), &written)
        );
        svg_written?;
        folded_written.transpose()?;
        diff_written.transpose()?;
        if let (Some(function), Some(h)) = (&args.during, &calls) {
            let ranking = culprit::rank(
                &folded.stacks,
                args.slower_than.map(|_| &fast.stacks),
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
                let doc = summary::Summary::new(
                    function,
                    args.slower_than,
                    &samples,
                    slow_calls,
                    ranking,
                );
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
        }
        Ok(())
    })
}

fn attach_probes(args: &FlamegraphArgs) -> Result<Probes> {
    let Some(function) = &args.during else {
        let globals = Globals {
            sampling: true,
            ..Globals::default()
        };
        return Ok(Probes::Plain(attach::load_object(&globals, None)?));
    };
    let globals = Globals {
        sample_filter: sample_filter::DURING,
        slower_than_ns: args.slower_than.map_or(0, |d| d.as_nanos() as u64),
        sampling: true,
        ..Globals::default()
    };
    let (tracer, _skipped) =
        crate::tracing::session::attach_traced(function, args.how.backend, &globals)?;
    Ok(Probes::During(tracer))
}
