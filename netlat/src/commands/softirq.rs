//! `netlat softirq [SECONDS]`: NET_RX seen whole. The runtime of each
//! net_rx_action call (as `histogram net_rx_action` times it), the wait
//! from the softirq's raise to its start, and what each call did: packets,
//! polls, devices, squeezed or not, ksoftirqd or not. "23 ms for 300
//! packets" is load (Linkerd's network-performance notes: spread it with
//! RSS/RPS or raise the budget); "23 ms for 3 packets" is a pathology ("The
//! story of one latency spike": tcp_collapse). A long wait with a high
//! ksoftirqd share is a starved ksoftirqd.

use std::{
    io::Write as _,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result};

use super::{
    request::{self, BackendArg},
    stop::{self, Stop},
};
use crate::{
    model::histogram::Histogram,
    model::net_rx::{Budget, CpuNetRx, DevicePackets, NetRxTally, SoftirqReport},
    model::report::SCHEMA_VERSION,
    model::unit::{Unit, UnitChoice},
    render,
    system::host::{self, HostInfo},
    tracing::backend::attach::Globals,
    tracing::collect::Collector,
    tracing::net_rx::{self, NET_RX_ACTION, NetRxSettings},
};

#[derive(clap::Args, Debug, Clone)]
#[command(mut_arg("backend", |a| a.help(
    "How to time net_rx_action (the wait and the per-call figures come from the softirq and napi_poll tracepoints on every backend)"
)))]
pub struct SoftirqArgs {
    /// How long to trace: seconds (30, 2.5) or with a unit (500ms, 2m).
    /// Without it, trace until Ctrl-C.
    #[arg(value_parser = crate::model::duration::parse, allow_negative_numbers = true)]
    pub seconds: Option<Duration>,
    #[command(flatten)]
    pub how: BackendArg,
    /// Unit of the wait and runtime rows.
    #[arg(long, value_enum, default_value_t = UnitChoice::Auto)]
    pub unit: UnitChoice,
    /// Each CPU on its own, then all CPUs together.
    #[arg(long)]
    pub per_cpu: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &SoftirqArgs) -> Result<()> {
    request::require_privileges()?;
    let online = request::online_cpus()?;
    stop::runtime()?.block_on(async {
        let mut stop = Stop::install()?;
        let report = trace(args, &online, &mut stop).await?;
        let text = if args.json {
            let mut s = serde_json::to_string_pretty(&report)?;
            s.push('\n');
            s
        } else {
            let unit = match args.unit {
                UnitChoice::Ns => Unit::Ns,
                UnitChoice::Us => Unit::Us,
                UnitChoice::Ms => Unit::Ms,
                UnitChoice::Auto => {
                    Unit::for_ns(report.all.runtime.percentiles_ns.map_or(0, |p| p.p50))
                }
            };
            render::net_rx::render(&report, unit)
        };
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write the report")
    })
}

/// Attaches the timing programs and the NET_RX programs, waits, detaches,
/// and reads both.
pub(crate) async fn trace(
    args: &SoftirqArgs,
    online: &[u32],
    stop: &mut Stop,
) -> Result<SoftirqReport> {
    let settings = NetRxSettings::for_this_host(false);
    let globals = Globals {
        net_rx: Some(settings),
        ..Globals::default()
    };
    let (mut tracer, skipped) =
        crate::tracing::session::attach_traced(NET_RX_ACTION, args.how.backend, &globals)?;
    tracer.attach_net_rx()?;
    let started = Instant::now();
    let wall = SystemTime::now();
    crate::tracing::session::announce(
        "NET_RX (net_rx_action, softirq wait, packets per call)",
        NET_RX_ACTION,
        &tracer,
        &skipped,
        args.seconds,
    );
    let deadline = args.seconds.map(|d| started + d);
    let mut progress = super::progress::Progress::start(args.seconds);
    progress.until(stop, deadline).await;
    tracer.detach_net_rx()?;
    tracer.detach()?;
    let window_ns = started.elapsed().as_nanos() as u64;
    let runtime = Collector::new().read(&tracer)?.per_cpu;
    let stats = net_rx::stats(tracer.ebpf())?;
    let devices = net_rx::devices(tracer.ebpf())?;
    let host = HostInfo::read();
    let backend = tracer.backend();
    Ok(report(Parts {
        args,
        online,
        host: &host,
        backend_name: backend.name(),
        backend_detail: backend.detail(NET_RX_ACTION),
        start: host::rfc3339(wall),
        window_ns,
        budget: Budget {
            packets: settings.budget,
            jiffies: settings.budget_jiffies,
        },
        tallies: stats.iter().map(NetRxTally::from).collect(),
        runtime,
        devices,
    }))
}

/// What a report is built from, read from the kernel.
pub(crate) struct Parts<'a> {
    pub args: &'a SoftirqArgs,
    pub online: &'a [u32],
    pub host: &'a HostInfo,
    pub backend_name: &'a str,
    pub backend_detail: String,
    pub start: String,
    pub window_ns: u64,
    pub budget: Budget,
    /// By CPU id.
    pub tallies: Vec<NetRxTally>,
    pub runtime: Vec<Histogram>,
    pub devices: Vec<(String, Vec<u64>)>,
}

pub(crate) fn report(p: Parts) -> SoftirqReport {
    let mut all = NetRxTally::default();
    for t in &p.tallies {
        all.add(t);
    }
    let runtime_all = Histogram::merged(&p.runtime);
    let per_cpu = p.args.per_cpu.then(|| {
        p.tallies
            .iter()
            .enumerate()
            .filter(|(cpu, t)| p.online.contains(&(*cpu as u32)) || t.calls > 0)
            .map(|(cpu, t)| CpuNetRx {
                cpu: cpu as u32,
                net_rx: t.report(p.runtime.get(cpu).unwrap_or(&Histogram::default())),
            })
            .collect()
    });
    let mut devices: Vec<DevicePackets> = p
        .devices
        .iter()
        .map(|(device, per_cpu)| DevicePackets {
            device: device.clone(),
            packets: per_cpu.iter().sum(),
        })
        .collect();
    devices.sort_by(|a, b| b.packets.cmp(&a.packets).then(a.device.cmp(&b.device)));
    SoftirqReport {
        schema: SCHEMA_VERSION,
        softirq: "NET_RX".to_owned(),
        function: NET_RX_ACTION.to_owned(),
        backend: p.backend_name.to_owned(),
        backend_detail: p.backend_detail,
        host: p.host.hostname.clone(),
        kernel: p.host.kernel.clone(),
        cpus: p.host.cpus,
        start: p.start,
        window_ns: p.window_ns,
        budget: p.budget,
        all: all.report(&runtime_all),
        per_cpu,
        devices,
    }
}
