//! `netlat serve`: keep the timing programs attached and let Prometheus read
//! the kernel's histograms at scrape time.
//!
//! Data path per scrape: the per-CPU STATS maps (`collect`) -> histograms ->
//! `metrics` (OpenMetrics text) -> `http`. No per-event work in userspace.

pub mod capture;
pub mod http;
pub mod le_buckets;
pub mod metrics;
pub mod net_rx_metrics;
pub mod slots;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use anyhow::{Result, bail};

use crate::model::net_rx::NetRxTally;
use crate::{
    commands::{
        request::{self, BackendArg},
        stop::{self, Stop},
    },
    model::histogram::Histogram,
    system::procfs::Root,
    tracing::backend::attach::{Globals, Tracer},
    tracing::collect::{Collector, Slot},
    tracing::net_rx::{self, NET_RX_ACTION, NetRxSettings},
};

use metrics::{DoctorCounters, FunctionLatency, Recording, Scrape};

use crate::recorder::live::{SkipReason, Status};

/// What `serve` times when no function is named: the two suspects of "The
/// story of one latency spike".
pub const DEFAULT_FUNCTIONS: [&str; 2] = ["net_rx_action", "tcp_collapse"];

struct Served {
    function: String,
    tracer: Arc<Mutex<Tracer>>,
    /// `--capture`: its threshold and recorder's counts.
    recording: Option<(std::time::Duration, Arc<Status>)>,
    /// `--softirq`: the NET_RX programs ride in this function's object.
    net_rx: bool,
}

/// The attached programs and what each scrape should include.
struct Exporter {
    served: Vec<Served>,
    per_cpu: bool,
    doctor: bool,
    online: Vec<u32>,
    root: Root,
    /// `--capture`: the capture files, for /captures.
    store: Option<Arc<crate::recorder::store::Store>>,
}

impl http::Pages for Exporter {
    fn metrics(&self, format: metrics::Format) -> String {
        metrics::render(self.scrape(), format)
    }

    fn captures(&self) -> Option<&crate::recorder::store::Store> {
        self.store.as_deref()
    }
}

impl Exporter {
    fn scrape(&self) -> Scrape {
        let functions = self
            .served
            .iter()
            .filter_map(|s| self.function(s))
            .collect();
        Scrape {
            functions,
            tcp_rmem: metrics::read_tcp_rmem(&self.root),
            doctor: self.doctor.then(|| DoctorCounters::read(&self.root)),
            net_rx: self
                .served
                .iter()
                .find(|s| s.net_rx)
                .and_then(|s| self.net_rx(s)),
        }
    }

    fn net_rx(&self, s: &Served) -> Option<net_rx_metrics::NetRxScrape> {
        let tracer = s.tracer.lock().unwrap_or_else(|p| p.into_inner());
        let read = || -> Result<net_rx_metrics::NetRxScrape> {
            let per_cpu = net_rx::stats(tracer.ebpf())?
                .iter()
                .enumerate()
                .map(|(cpu, st)| (cpu as u32, NetRxTally::from(st)))
                .filter(|(cpu, t)| self.online.contains(cpu) || t.calls > 0)
                .collect();
            Ok(net_rx_metrics::NetRxScrape {
                per_cpu,
                devices: net_rx::devices(tracer.ebpf())?,
                wait_per_cpu: self.per_cpu,
            })
        };
        read()
            .map_err(|e| eprintln!("netlat: cannot read the NET_RX counts: {e:#}"))
            .ok()
    }

    fn function(&self, s: &Served) -> Option<FunctionLatency> {
        let tracer = s.tracer.lock().unwrap_or_else(|p| p.into_inner());
        let slot = Collector::new()
            .read(&tracer)
            .map_err(|e| eprintln!("netlat: cannot read {}'s histogram: {e:#}", s.function))
            .ok()?;
        let missed = crate::tracing::missed::read(&tracer)
            .map_err(|e| eprintln!("netlat: cannot read {}'s missed counts: {e}", s.function))
            .ok();
        let recording = s.recording.as_ref().map(|(threshold, status)| Recording {
            threshold: *threshold,
            slow_calls: crate::tracing::slow_records::kernel_stats(&tracer)
                .ok()
                .map(|per_cpu| per_cpu.iter().map(|c| c.over).sum()),
            captures: status.captures.load(std::sync::atomic::Ordering::Relaxed),
            skipped: SkipReason::ALL
                .iter()
                .map(|&r| (r.label(), status.skipped(r)))
                .collect(),
            exemplar: status.exemplar(),
        });
        Some(FunctionLatency {
            function: s.function.clone(),
            backend: tracer.backend().name(),
            series: self.series(&slot),
            missed,
            recording,
        })
    }

    fn series(&self, slot: &Slot) -> Vec<(Option<u32>, Histogram)> {
        if !self.per_cpu {
            return vec![(None, Histogram::merged(&slot.per_cpu))];
        }
        slot.cpus(&self.online)
            .map(|(cpu, h)| (Some(cpu), h.clone()))
            .collect()
    }
}

#[derive(clap::Args, Debug, Clone)]
#[command(mut_arg("backend", |a| a.help("How to time the functions (as for histogram)")))]
pub struct ServeArgs {
    /// Kernel functions to time [default: net_rx_action tcp_collapse; any
    /// that cannot be traced here is skipped with its reason].
    #[arg(value_parser = crate::system::kallsyms::function_name)]
    pub functions: Vec<String>,
    /// Address to serve /metrics on. Other hosts can reach it only if you
    /// say so, e.g. --listen 0.0.0.0:9435.
    /// Port 0 picks a free port (printed at start); HOST may be a name
    /// such as localhost.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9435", value_parser = parse_listen)]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub how: BackendArg,
    /// Also export the kernel counters doctor reads (softnet drops and
    /// time_squeeze per CPU, prunes, collapses, backlog drops, listen
    /// overflows, retransmits).
    #[arg(long)]
    pub doctor: bool,
    /// One histogram per CPU (label cpu) instead of one per function.
    #[arg(long)]
    pub per_cpu: bool,
    /// Also export NET_RX seen whole: the softirq's wait histogram
    /// (netlat_softirq_wait_seconds) and per-CPU counters of its calls,
    /// ksoftirqd calls, squeezed calls and packets by device. Serves
    /// net_rx_action too.
    #[arg(long)]
    pub softirq: bool,
    #[command(flatten)]
    pub capture: capture::CaptureArgs,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    request::require_privileges()?;
    if args.capture.enabled() {
        args.capture.check()?;
    }
    warn_if_exposed(args.listen);
    let online = request::online_cpus()?;
    stop::runtime()?.block_on(async {
        let mut stop = Stop::install()?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| {
                let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                    " (is another netlat serve running? use --listen)"
                } else {
                    ""
                };
                anyhow::anyhow!(
                    "cannot listen on {}: {}{hint}",
                    args.listen,
                    crate::oneline::io_text(&e)
                )
            })?;
        // The address actually bound: with port 0 the kernel picked one.
        let bound = listener.local_addr().unwrap_or(args.listen);
        // Before attaching: a directory that cannot hold captures is the
        // user's to fix, and nothing should be traced meanwhile.
        let store = args
            .capture
            .enabled()
            .then(|| capture::open_store(&args.capture))
            .transpose()?;
        let mut served = attach_all(args)?;
        let recorders = start_recorders(args, &mut served, &online, store.clone())?;
        let names: Vec<String> = served
            .iter()
            .map(|s| {
                let backend = s.tracer.lock().unwrap_or_else(|p| p.into_inner()).backend();
                match &s.recording {
                    Some((t, _)) => format!(
                        "{} ({backend}, capturing calls >= {})",
                        s.function,
                        crate::render::slow::duration(t.as_nanos() as u64)
                    ),
                    None => format!("{} ({backend})", s.function),
                }
            })
            .collect();
        eprintln!(
            "netlat: serving {} on http://{bound}/metrics",
            names.join(", "),
        );
        if args.capture.enabled() {
            eprintln!(
                "netlat: captures go to {} (at most {} files, {} MiB)",
                args.capture.capture_dir.display(),
                args.capture.capture_max,
                args.capture.capture_max_bytes >> 20
            );
        }
        let exporter = Arc::new(Exporter {
            served,
            per_cpu: args.per_cpu,
            doctor: args.doctor,
            online,
            root: Root::host(),
            store,
        });
        let server = tokio::spawn(http::serve(listener, exporter.clone()));
        stop.until(None).await;
        server.abort();
        for r in &recorders {
            r.abort();
        }
        for s in &exporter.served {
            let mut tracer = s.tracer.lock().unwrap_or_else(|p| p.into_inner());
            if s.recording.is_some() {
                tracer.detach_sampler()?;
            }
            if s.net_rx {
                tracer.detach_net_rx()?;
            }
            tracer.detach()?;
        }
        eprintln!("netlat: detached; exiting");
        Ok(())
    })
}

/// Attaches each function; one that cannot be traced here is skipped with
/// its reason, but at least one must work.
fn attach_all(args: &ServeArgs) -> Result<Vec<Served>> {
    let mut functions: Vec<String> = if args.functions.is_empty() && !args.capture.enabled() {
        DEFAULT_FUNCTIONS.iter().map(|f| f.to_string()).collect()
    } else {
        args.functions.clone()
    };
    // A captured function is served too, and --softirq's.
    functions.extend(args.capture.capture.iter().map(|(f, _)| f.clone()));
    if args.softirq {
        functions.push(NET_RX_ACTION.to_owned());
    }
    // A function named twice is served once (two series with the same
    // labels would make the page invalid).
    let mut seen = std::collections::HashSet::new();
    functions.retain(|f| seen.insert(f.clone()));
    let mut served = Vec::new();
    let mut reasons = Vec::new();
    for function in functions {
        let threshold = args.capture.threshold(&function);
        let mut globals = match threshold {
            Some(t) => capture::globals(&function, t, &args.capture),
            None => Globals::default(),
        };
        let with_net_rx = args.softirq && function == NET_RX_ACTION;
        if with_net_rx {
            // A captured net_rx_action's records carry their calls' packets.
            globals.net_rx = Some(NetRxSettings::for_this_host(threshold.is_some()));
        }
        let attached =
            crate::tracing::session::attach_traced(&function, args.how.backend, &globals).and_then(
                |(mut t, s)| {
                    if with_net_rx {
                        t.attach_net_rx()?;
                    }
                    Ok((t, s))
                },
            );
        match attached {
            Ok((tracer, _)) => served.push(Served {
                function,
                tracer: Arc::new(Mutex::new(tracer)),
                recording: None,
                net_rx: with_net_rx,
            }),
            Err(e) => {
                let what = if threshold.is_some() {
                    "serving or capturing"
                } else {
                    "serving"
                };
                eprintln!("netlat: not {what} {function}: {e:#}");
                reasons.push(format!("{function}: {e:#}"));
            }
        }
    }
    if served.is_empty() {
        bail!("nothing to serve: {}", reasons.join("; "));
    }
    Ok(served)
}

/// Starts a recorder beside each `--capture` function; a recorder that
/// fails later ends alone, with its reason, and the exporter carries on.
fn start_recorders(
    args: &ServeArgs,
    served: &mut [Served],
    online: &[u32],
    store: Option<Arc<crate::recorder::store::Store>>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let Some(keep) = store else {
        return Ok(Vec::new());
    };
    let shared = capture::shared(&args.capture, keep);
    let mut tasks = Vec::new();
    for s in served.iter_mut() {
        let Some(threshold) = args.capture.threshold(&s.function) else {
            continue;
        };
        let (recorder, status) =
            capture::recorder(&s.function, threshold, &s.tracer, online, &shared)?;
        s.recording = Some((threshold, status));
        let function = s.function.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = recorder.run().await {
                eprintln!("netlat: the recorder of {function} stopped: {e:#}");
            }
        }));
    }
    Ok(tasks)
}

fn warn_if_exposed(listen: SocketAddr) {
    if !listen.ip().is_loopback() {
        eprintln!(
            "netlat: listening on {listen}, reachable from other hosts: the metrics name kernel functions and counters"
        );
    }
}

/// `--listen`: an address (127.0.0.1:9435, [::1]:9435) or HOST:PORT with a
/// name (localhost:9435), which is resolved, IPv4 first.
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let bad = || format!("expected HOST:PORT, e.g. 127.0.0.1:9435 or localhost:9435, not '{s}'");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    if host == "localhost" {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("cannot resolve {host}: {}", crate::oneline::io_text(&e)))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{host} has no address"))
}

#[cfg(test)]
mod tests {
    use super::parse_listen;

    #[test]
    fn listen_takes_addresses_and_localhost() {
        assert_eq!(
            parse_listen("localhost:9435").unwrap().to_string(),
            "127.0.0.1:9435"
        );
        assert_eq!(parse_listen("[::1]:0").unwrap().to_string(), "[::1]:0");
        assert_eq!(
            parse_listen("0.0.0.0:9435").unwrap().to_string(),
            "0.0.0.0:9435"
        );
        for bad in ["9435", "localhost", ":9435", "localhost:99999"] {
            let err = parse_listen(bad).unwrap_err();
            assert!(err.starts_with("expected HOST:PORT"), "{bad}: {err}");
        }
    }
}
