//! `netlat histogram FUNCTION [SECONDS]`: attach, wait, collect, render.

use std::{
    io::Write as _,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

pub(crate) mod windows;

use windows::{Boundaries, WholeRun, Window};

use super::{
    request::{self, Target, TraceRequest},
    stop::{self, Stop, Woke},
};
use crate::{
    model::histogram::Histogram,
    model::report::{CpuSummary, Grouping, HistogramReport, SCHEMA_VERSION, Summary},
    model::unit::Unit,
    render,
    system::host::{self, HostInfo},
    tracing::backend::attach,
    tracing::collect::{self, Collector, Slot},
    tracing::group_by::KeySource,
    tracing::session,
};

#[derive(clap::Args, Debug, Clone)]
pub struct HistogramArgs {
    #[command(flatten)]
    pub target: Target,
    /// How long to trace: seconds (30, 2.5) or with a unit (500ms, 2m).
    /// Without it, trace until Ctrl-C.
    #[arg(value_parser = crate::model::duration::parse, allow_negative_numbers = true)]
    pub seconds: Option<Duration>,
    /// Unit of the histogram rows.
    #[arg(long, value_enum, default_value_t = crate::model::unit::UnitChoice::Auto)]
    pub unit: crate::model::unit::UnitChoice,
    /// Print (and reset) a histogram every interval, with a timestamp.
    /// With --output, the file still holds the whole run: the windows'
    /// sum, each window, and the kernel counters over the same span.
    #[arg(long, value_parser = crate::model::duration::parse_interval, value_name = "SECONDS")]
    pub interval: Option<Duration>,
    /// One histogram per CPU, then all CPUs together.
    #[arg(long)]
    pub per_cpu: bool,
    /// Only calls that ended on this CPU.
    #[arg(long, value_name = "N", conflicts_with = "per_cpu")]
    pub cpu: Option<u32>,
    /// Print the result as JSON (one document per interval with --interval).
    #[arg(long)]
    pub json: bool,
    /// Also write the final result, with the sysctls and kernel counters
    /// around the run, as JSON to FILE (for `netlat compare`). With
    /// --interval it is the whole run (the windows' sum) and lists each
    /// window under `windows`.
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// One histogram per group of calls: `rcvbuf` groups socket functions
    /// (tcp_collapse) by the socket's receive buffer, in power-of-two bands.
    #[arg(long, value_enum, value_name = "KEY", conflicts_with_all = ["cpu", "per_cpu"])]
    pub by: Option<crate::tracing::group_by::GroupBy>,
}

impl HistogramArgs {
    fn request(&self) -> TraceRequest {
        TraceRequest {
            by: self.by,
            unit: self.unit,
            interval: self.interval,
            per_cpu: self.per_cpu,
            cpu: self.cpu,
            json: self.json,
            output: self.output.clone(),
            ..TraceRequest::plain(&self.target.function, self.target.backend(), self.seconds)
        }
    }
}

pub fn run(args: &HistogramArgs) -> Result<()> {
    request::require_privileges()?;
    let online = request::online_cpus()?;
    let args = &args.request();
    if let Some(cpu) = args.cpu
        && !online.contains(&cpu)
    {
        bail!(
            "--cpu {cpu}: no such online CPU (online: {})",
            cpu_list(&online)
        );
    }
    if let Some(path) = &args.output {
        super::check_writable(path)?;
    }
    stop::runtime()?.block_on(async {
        let mut stop = Stop::install()?;
        trace(args, &online, &mut stop, true).await.map(drop)
    })
}

/// How a traced run ended.
pub(crate) struct Traced {
    pub report: HistogramReport,
    /// SIGINT or SIGTERM came before the window's end.
    pub interrupted: bool,
}

/// Attaches, waits out the window (printing each `--interval`), detaches,
/// and returns the final report; prints it too when `print`.
pub(crate) async fn trace(
    args: &TraceRequest,
    online: &[u32],
    stop: &mut Stop,
    print: bool,
) -> Result<Traced> {
    let key = args
        .by
        .map(|by| KeySource::find(by, &args.function))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let globals = attach::Globals {
        rcvbuf_offset: key.as_ref().map(|k| k.offset),
        ..attach::Globals::default()
    };
    let (mut tracer, skipped) = session::attach_traced(&args.function, args.backend, &globals)?;
    let conditions = crate::system::conditions::start();
    let mut window = Window::start();
    let started = window.instant;
    session::announce(
        &args.function,
        &args.function,
        &tracer,
        &skipped,
        args.seconds,
    );

    let run = Run {
        args,
        host: HostInfo::read(),
        online,
        key,
    };
    let mut collector = Collector::new();
    // `--interval` with `--output`: the file holds the whole run, so every
    // window is kept and added up.
    let mut whole = (args.interval.is_some() && args.output.is_some()).then(|| WholeRun {
        start: Window {
            instant: started,
            wall: window.wall,
            ended: None,
        },
        slot: Slot::default(),
        windows: Vec::new(),
    });
    let deadline = args.seconds.map(|d| started + d);
    let mut progress = super::progress::Progress::start(args.seconds);
    let mut interrupted = false;
    // Windows end on absolute deadlines, start + k * interval: reading and
    // printing a window takes a few ms, and "now + interval" after that
    // work stretched every window by it (10 ms windows lasted 17 ms).
    let mut boundaries = args.interval.map(|i| Boundaries::new(started, i));
    loop {
        let tick = boundaries.as_ref().map(Boundaries::next);
        let wake = [tick, deadline].into_iter().flatten().min();
        let ended = match progress.until(stop, wake).await {
            Woke::Signal => {
                interrupted = true;
                true
            }
            Woke::Time => deadline.is_some_and(|d| Instant::now() >= d),
        };
        if ended {
            break;
        }
        // The epoch flips at the top of rotate: calls from here on are the
        // next window's, whatever the read of this one costs.
        let next = Window::start();
        window.ended = Some(next.instant);
        if let Some(b) = &mut boundaries {
            b.advance(next.instant);
        }
        let snapshot = Snapshot {
            slot: collector.rotate(&mut tracer)?,
            unfinished_calls: None,
            conditions: None,
            missed: None,
        };
        let printed = emit(&run, &tracer, &window, &snapshot)?;
        if let Some(whole) = &mut whole {
            whole.add(&snapshot.slot, &printed);
        }
        window = next;
    }
    // The kernel's missed counts live on the links: read them just before
    // they go.
    let missed = crate::tracing::missed::read(&tracer)
        .map_err(|e| eprintln!("netlat: cannot read the kernel's missed counts: {e}"))
        .ok();
    // Detach before the last read: nothing writes the maps any more, so the
    // snapshot is consistent (buckets sum to count on every CPU).
    window.ended = Some(Instant::now());
    tracer.detach()?;
    let snapshot = Snapshot {
        slot: collector.read(&tracer)?,
        unfinished_calls: Some(collect::unfinished_calls(&tracer)?),
        conditions: Some(conditions.finish()),
        missed,
    };
    let mut report = if print {
        emit(&run, &tracer, &window, &snapshot)?
    } else {
        build_report(&run, &tracer, &window, &snapshot)
    };
    if let Some(mut whole) = whole {
        whole.add(&snapshot.slot, &report);
        let snapshot = Snapshot {
            slot: whole.slot,
            ..snapshot
        };
        report = build_report(&run, &tracer, &whole.start, &snapshot);
        report.windows = Some(whole.windows);
    }
    if let Some(path) = &args.output {
        crate::system::atomic_file::write(
            path,
            render::histogram::json(&report, false).as_bytes(),
        )?;
    }
    Ok(Traced {
        report,
        interrupted,
    })
}

/// What one window's read of the maps gave.
struct Snapshot {
    slot: Slot,
    /// Only known for the final window, after detaching.
    unfinished_calls: Option<u64>,
    /// Only for the final window: the whole run's conditions.
    conditions: Option<crate::model::report::Conditions>,
    /// Only for the final window: what the kernel skipped over the run.
    missed: Option<crate::model::report::Missed>,
}

/// The histogram the report is about: one CPU's with --cpu, else all CPUs'.
fn reported(args: &TraceRequest, per_cpu: &[Histogram]) -> Histogram {
    match args.cpu {
        Some(cpu) => per_cpu.get(cpu as usize).cloned().unwrap_or_default(),
        None => Histogram::merged(per_cpu),
    }
}

/// What stays the same for every window of a run.
struct Run<'a> {
    args: &'a TraceRequest,
    host: HostInfo,
    online: &'a [u32],
    /// `--by`: where the entry program reads the key.
    key: Option<KeySource>,
}

fn emit(
    run: &Run,
    tracer: &attach::Tracer,
    window: &Window,
    snapshot: &Snapshot,
) -> Result<HistogramReport> {
    let args = run.args;
    let report = build_report(run, tracer, window, snapshot);
    let text = if args.json {
        render::histogram::json(&report, args.interval.is_some())
    } else {
        let unit = Unit::choose(args.unit, &reported(args, &snapshot.slot.per_cpu));
        let mut text = render::histogram::render(&report, unit);
        if args.interval.is_some() {
            text.push('\n');
        }
        text
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the report")?;
    Ok(report)
}

fn build_report(
    run: &Run,
    tracer: &attach::Tracer,
    window: &Window,
    snapshot: &Snapshot,
) -> HistogramReport {
    let (args, host, online) = (run.args, &run.host, run.online);
    let per_cpu = &snapshot.slot.per_cpu;
    let backend = tracer.backend();
    let summary = Summary::from(&reported(args, per_cpu));
    let cpus = args.per_cpu.then(|| {
        snapshot
            .slot
            .cpus(online)
            .map(|(cpu, h)| CpuSummary {
                cpu,
                summary: Summary::from(h),
            })
            .collect()
    });
    HistogramReport {
        schema: SCHEMA_VERSION,
        function: args.function.clone(),
        backend: backend.name().to_owned(),
        backend_detail: backend.detail(&args.function),
        host: host.hostname.clone(),
        kernel: host.kernel.clone(),
        cpus: host.cpus,
        start: host::rfc3339(window.wall),
        window_ns: window.elapsed().as_nanos() as u64,
        cpu: args.cpu,
        summary,
        unfinished_calls: snapshot.unfinished_calls,
        missed: snapshot.missed,
        windows: None,
        conditions: snapshot.conditions.clone(),
        per_cpu: cpus,
        by: run
            .key
            .as_ref()
            .map(|k| Grouping::new(k.by.name(), k.describe(), &snapshot.slot.per_group)),
        experiment: None,
    }
}

fn cpu_list(cpus: &[u32]) -> String {
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
