//! `netlat record FUNCTION [SECONDS] -o FILE`: latency over time, kept for
//! `netlat report`. One histogram per window (1 s by default), and with
//! `--slower-than` every call over the threshold as `slow` records it and
//! the kernel stacks sampled inside those calls, each counted in the
//! window its call ended in. The file is a histogram result too, so
//! `netlat compare` reads it as one.

use std::{
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Result;

mod gather;

use gather::Gather;

use super::{
    histogram::windows::Boundaries,
    request::{self, Target},
    stop::{self, Stop, Woke},
};
use crate::{
    model::{
        recording::{FORMAT, Recording, RecordingFile},
        report::{HistogramReport, SCHEMA_VERSION, Summary},
        slow_call::Clock,
    },
    system::host::{self, HostInfo},
    tracing::{
        backend::attach::{Globals, SlowSettings},
        collect::{self, Collector},
        kernel_btf::VMLINUX,
        net_rx,
        slow_records::{self, Records},
        sock_fields::SocketArg,
    },
};

/// The narrowest window: below it a day's recording outgrows any page.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The record buffer: a storm of slow calls is read once a window.
const RING_BYTES: u32 = 16 << 20;
/// Slow calls each CPU may record per second; beyond it the kernel counts
/// them (`limited`) and the histograms still time them. A person reads a
/// few hundred points a second at most, and the file stays bounded.
const RECORDS_PER_CPU_SECOND: u32 = 1000;

#[derive(clap::Args, Debug, Clone)]
#[command(mut_arg("backend", |a| a.help("How to time the function (as for histogram)")))]
pub struct RecordArgs {
    #[command(flatten)]
    pub target: Target,
    /// How long to record: seconds (600, 2.5) or with a unit (10m, 24h).
    /// Without it, record until Ctrl-C.
    #[arg(value_parser = crate::model::duration::parse, allow_negative_numbers = true)]
    pub seconds: Option<Duration>,
    /// Keep every call at least this long (when, CPU, task, socket,
    /// duration) and sample the kernel stacks inside those calls, for the
    /// report's slow-call points and flame graphs (e.g. 2ms). Each CPU
    /// keeps up to 1000 a second; the kernel counts the rest.
    #[arg(long, value_parser = crate::model::duration::parse_threshold, value_name = "DURATION")]
    pub slower_than: Option<Duration>,
    /// Width of one window: a histogram each, the heat map's columns
    /// (at least 100ms).
    #[arg(short = 'i', long, default_value = "1s", value_parser = parse_interval, value_name = "DURATION")]
    pub interval: Duration,
    /// Stack samples per second on each CPU (with --slower-than).
    #[arg(short = 'F', long, default_value_t = 99, value_parser = super::flamegraph::parse_frequency)]
    pub frequency: u64,
    /// The recording to write (JSON, replaced whole at the end of the run).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = crate::model::duration::parse(s)?;
    if d < MIN_INTERVAL {
        return Err(format!(
            "--interval {s}: at least 100ms (a window is a column of the report's heat map)"
        ));
    }
    Ok(d)
}

pub fn run(args: &RecordArgs) -> Result<()> {
    request::require_privileges()?;
    let online = request::online_cpus()?;
    super::check_writable(&args.output)?;
    stop::runtime()?.block_on(async {
        let mut stop = Stop::install()?;
        record(args, &online, &mut stop).await
    })
}

fn globals(args: &RecordArgs) -> Globals {
    let Some(threshold) = args.slower_than else {
        return Globals::default();
    };
    let function = &args.target.function;
    let threshold_ns = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX);
    let sock = match SocketArg::find(function, std::path::Path::new(VMLINUX)) {
        SocketArg::Socket(o) => o,
        _ => netlat_common::SockOffsets::NONE,
    };
    Globals {
        sample_filter: netlat_common::sample_filter::DURING,
        slower_than_ns: threshold_ns,
        sampling: true,
        slow: Some(SlowSettings {
            threshold_ns,
            stacks: false,
            sock,
            ring_bytes: RING_BYTES,
            records_per_second: RECORDS_PER_CPU_SECOND,
        }),
        // Each net_rx_action record says what its call did: load or pathology.
        net_rx: (function == net_rx::NET_RX_ACTION)
            .then(|| net_rx::NetRxSettings::for_this_host(true)),
        ..Globals::default()
    }
}

async fn record(args: &RecordArgs, online: &[u32], stop: &mut Stop) -> Result<()> {
    let function = &args.target.function;
    let globals = globals(args);
    let (mut tracer, skipped) =
        crate::tracing::session::attach_traced(function, args.target.backend(), &globals)?;
    let mut records = match globals.slow {
        Some(_) => {
            tracer.attach_context_programs()?;
            if globals.net_rx.is_some() {
                tracer.attach_net_rx()?;
            }
            let records = Records::open(&mut tracer, false)?;
            tracer.attach_sampler(args.frequency, online)?;
            Some(records)
        }
        None => None,
    };
    let conditions = crate::system::conditions::start();
    let clock = Clock::now();
    let started = Instant::now();
    let start_wall = SystemTime::now();
    let mut window_start_ns = Clock::monotonic_ns();
    crate::tracing::session::announce(
        &format!("{function} over time"),
        function,
        &tracer,
        &skipped,
        args.seconds,
    );
    let mut gather = Gather::new(clock, records.is_some());
    let mut collector = Collector::new();
    let mut boundaries = Boundaries::new(started, args.interval);
    let deadline = args.seconds.map(|d| started + d);
    let mut progress = super::progress::Progress::start(args.seconds);
    loop {
        let wake = [Some(boundaries.next()), deadline]
            .into_iter()
            .flatten()
            .min();
        if let Woke::Signal = progress.until(stop, wake).await {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        boundaries.advance(Instant::now());
        let boundary_ns = Clock::monotonic_ns();
        let slot = collector.rotate(&mut tracer)?;
        gather.window(window_start_ns, &slot.per_cpu);
        window_start_ns = boundary_ns;
        if let Some(records) = &mut records {
            gather.samples(&tracer)?;
            gather.calls(records)?;
        }
    }
    let missed = crate::tracing::missed::read(&tracer)
        .map_err(|e| eprintln!("netlat: cannot read the kernel's missed counts: {e}"))
        .ok();
    tracer.detach()?;
    let end_ns = Clock::monotonic_ns();
    let last = collector.read(&tracer)?;
    gather.window(window_start_ns, &last.per_cpu);
    let mut accounting = Default::default();
    if let Some(records) = &mut records {
        gather.samples(&tracer)?;
        gather.calls(records)?;
        let mut over = netlat_common::SlowStats::default();
        for s in slow_records::kernel_stats(&tracer)? {
            over.add(&s);
        }
        accounting = gather.accounting(&tracer, &over)?;
    }
    let unfinished = collect::unfinished_calls(&tracer)?;
    let (windows, slow_calls, stacks, samples) = gather.finish(&tracer, function)?;
    let recording = Recording {
        format: FORMAT,
        netlat_version: crate::VERSION.to_owned(),
        start_unix_ns: windows.first().map_or(0, |w| w.start_unix_ns),
        end_unix_ns: clock.unix_ns(end_ns),
        interval_ns: u64::try_from(args.interval.as_nanos()).unwrap_or(u64::MAX),
        threshold_ns: args
            .slower_than
            .map(|t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)),
        frequency_hz: if records.is_some() { args.frequency } else { 0 },
        windows,
        slow_calls,
        stacks,
        samples,
        accounting,
    };
    let total = recording.total();
    let host = HostInfo::read();
    let backend = tracer.backend();
    let result = HistogramReport {
        schema: SCHEMA_VERSION,
        function: function.clone(),
        backend: backend.name().to_owned(),
        backend_detail: backend.detail(function),
        host: host.hostname.clone(),
        kernel: host.kernel.clone(),
        cpus: host.cpus,
        start: host::rfc3339(start_wall),
        window_ns: started.elapsed().as_nanos() as u64,
        cpu: None,
        summary: Summary::from(&total),
        unfinished_calls: Some(unfinished),
        per_cpu: None,
        conditions: Some(conditions.finish()),
        by: None,
        windows: None,
        missed,
        experiment: None,
    };
    let file = RecordingFile {
        result: &result,
        recording: &recording,
    };
    let bytes = serde_json::to_vec(&file)?;
    crate::system::atomic_file::write(&args.output, &bytes)?;
    eprintln!(
        "netlat: recorded {} calls of {function} in {} windows of {}, {} slow calls, {} stack samples: {}",
        total.count,
        recording.windows.len(),
        humantime::format_duration(args.interval),
        recording.slow_calls.len(),
        recording
            .samples
            .iter()
            .map(|s| s.slow + s.fast)
            .sum::<u64>(),
        args.output.display()
    );
    Ok(())
}
