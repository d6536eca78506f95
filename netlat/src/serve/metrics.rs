//! The /metrics page: what the kernel maps and /proc say at scrape time, in
//! the OpenMetrics text format. Nothing is accumulated in userspace: the
//! kernel's per-CPU histograms are the counters, so memory stays flat.

use std::collections::BTreeMap;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

use crate::{
    model::histogram::Histogram,
    system::procfs::{
        Root,
        netstat::{read_netstat, read_snmp},
        softnet::{self, SoftnetRow},
        sysctl,
    },
};

/// One traced function's histograms, as read from its map.
#[derive(Debug)]
pub struct FunctionLatency {
    pub function: String,
    pub backend: &'static str,
    /// (CPU, histogram): one entry with `None` unless `--per-cpu`.
    pub series: Vec<(Option<u32>, Histogram)>,
    /// The kernel's own counts of what it skipped (None if unreadable).
    pub missed: Option<crate::model::report::Missed>,
    /// `--capture`: the flight recorder's counts.
    pub recording: Option<Recording>,
}

/// A captured function's flight-recorder counts.
#[derive(Debug)]
pub struct Recording {
    pub threshold: std::time::Duration,
    /// The kernel's count of calls at or over the threshold.
    pub slow_calls: Option<u64>,
    pub captures: u64,
    /// (reason, captures skipped for it).
    pub skipped: Vec<(&'static str, u64)>,
    /// The latest capture's trigger, shown as an exemplar.
    pub exemplar: Option<crate::recorder::live::Exemplar>,
}

/// The `--doctor` counters: the kernel's own drop/prune/squeeze tallies.
#[derive(Debug, Default)]
pub struct DoctorCounters {
    pub softnet: Vec<SoftnetRow>,
    /// TcpExt counters by name.
    pub tcp_ext: BTreeMap<String, u64>,
    pub retrans_segs: Option<u64>,
}

impl DoctorCounters {
    pub fn read(root: &Root) -> DoctorCounters {
        let tcp_ext = read_netstat(root)
            .ok()
            .and_then(|c| c.group("TcpExt").cloned())
            .unwrap_or_default();
        DoctorCounters {
            softnet: softnet::try_read(root).unwrap_or_default(),
            tcp_ext,
            retrans_segs: read_snmp(root)
                .ok()
                .and_then(|c| c.get("Tcp", "RetransSegs")),
        }
    }
}

/// Everything one scrape shows.
#[derive(Debug)]
pub struct Scrape {
    pub functions: Vec<FunctionLatency>,
    /// net.ipv4.tcp_rmem as min, default, max.
    pub tcp_rmem: Option<[u64; 3]>,
    pub doctor: Option<DoctorCounters>,
    /// `--softirq`: what the NET_RX programs counted.
    pub net_rx: Option<super::net_rx_metrics::NetRxScrape>,
}

pub fn read_tcp_rmem(root: &Root) -> Option<[u64; 3]> {
    let text = sysctl::read_at(root, "net.ipv4.tcp_rmem").ok()??;
    let v: Vec<u64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    v.try_into().ok()
}

/// The two exposition formats Prometheus tools read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// What Prometheus asks for first when it scrapes.
    OpenMetrics,
    /// The classic text format (0.0.4): what promtool, curl and older
    /// scrapers get when they do not ask for OpenMetrics.
    Text,
}

impl Format {
    /// Content negotiation on the Accept header, as client_golang does.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The page in `format`.
pub fn render(scrape: Scrape, format: Format) -> String {
    let exemplars = exemplar_lines(&scrape.functions);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut page = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut page, &registry);
    match format {
        Format::OpenMetrics => add_exemplars(&page, &exemplars),
        Format::Text => openmetrics_to_text(&page),
    }
}

/// prometheus-client writes OpenMetrics only. The classic format differs,
/// for what netlat emits, in three ways: a counter family is named with its
/// `_total` suffix, and there are no `# UNIT` or `# EOF` lines. Help texts
/// here contain no characters the two formats escape differently.
pub fn openmetrics_to_text(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    let mut help: Option<&str> = None;
    for line in page.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            // Held until TYPE says whether the name needs `_total`.
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let suffix = if kind == "counter" { "_total" } else { "" };
            if let Some(h) = help.take() {
                let text = h["# HELP ".len()..].split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name}{suffix} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let build = ConstGauge::new(1i64);
        let version = [("version", env!("CARGO_PKG_VERSION"))];
        build.encode(
            encoder
                .encode_descriptor(
                    "netlat_build_info",
                    "netlat's version.",
                    None,
                    MetricType::Gauge,
                )?
                .encode_family(&version.as_slice())?,
        )?;

        let mut info = encoder.encode_descriptor(
            "netlat_function_info",
            "A traced kernel function and the backend timing it.",
            None,
            MetricType::Gauge,
        )?;
        for f in &self.functions {
            let labels = [("function", f.function.as_str()), ("backend", f.backend)];
            ConstGauge::new(1i64).encode(info.encode_family(&labels.as_slice())?)?;
        }

        let mut latency = encoder.encode_descriptor(
            "netlat_function_latency_seconds",
            "Duration of kernel function calls, from the kernel's per-CPU log2 histograms.",
            None,
            MetricType::Histogram,
        )?;
        for f in &self.functions {
            for (cpu, h) in &f.series {
                let buckets = super::le_buckets::buckets(h);
                // The bucket total, not h.count: a CPU may be mid-update
                // while read, and _count must equal the +Inf bucket.
                let count = buckets.iter().map(|b| b.1).sum();
                let cpu = cpu.map(|c| c.to_string());
                let mut labels = vec![("function", f.function.as_str())];
                if let Some(cpu) = &cpu {
                    labels.push(("cpu", cpu.as_str()));
                }
                latency
                    .encode_family(&labels.as_slice())?
                    .encode_histogram::<NoLabelSet>(h.sum_ns as f64 / 1e9, count, &buckets, None)?;
            }
        }

        encode_lost(&self.functions, &mut encoder)?;
        encode_recording(&self.functions, &mut encoder)?;

        if let Some(rmem) = self.tcp_rmem {
            let mut gauge = encoder.encode_descriptor(
                "netlat_sysctl_tcp_rmem_bytes",
                "net.ipv4.tcp_rmem: the receive buffer autotuning range (the knob Cloudflare lowered in The story of one latency spike).",
                None,
                MetricType::Gauge,
            )?;
            for (field, value) in ["min", "default", "max"].into_iter().zip(rmem) {
                let labels = [("field", field)];
                ConstGauge::new(value as i64).encode(gauge.encode_family(&labels.as_slice())?)?;
            }
        }

        if let Some(d) = &self.doctor {
            encode_doctor(d, &mut encoder)?;
        }
        if let Some(n) = &self.net_rx {
            super::net_rx_metrics::encode(n, &mut encoder)?;
        }
        Ok(())
    }
}

/// Calls each function's numbers leave out, as counters beside its
/// histogram: netlat's own (exits without a seen entry, entries dropped) and
/// the kernel's (program runs skipped, kprobe hits missed). A count this
/// kernel does not keep is left out, not shown as 0.
fn encode_lost(
    functions: &[FunctionLatency],
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    type Pick = fn(&FunctionLatency) -> Option<u64>;
    let families: [(&str, &str, Pick); 4] = [
        (
            "netlat_function_unmatched_exits",
            "Exits seen without their entry (calls in flight at attach, or entries the kernel skipped): not timed.",
            |f| Some(f.series.iter().map(|(_, h)| h.unmatched_exits).sum()),
        ),
        (
            "netlat_function_dropped_entries",
            "Entries not timed because netlat's nesting stack or thread table was full.",
            |f| Some(f.series.iter().map(|(_, h)| h.dropped_entries).sum()),
        ),
        (
            "netlat_function_missed_program_runs",
            "Runs of netlat's entry and exit programs the kernel skipped (bpf_prog_info recursion_misses).",
            |f| f.missed.and_then(|m| m.program_runs.count()),
        ),
        (
            "netlat_function_kprobe_missed",
            "kprobe/kretprobe hits the kernel missed (the perf link's missed count, Linux 6.7+): calls whose exit was never seen.",
            |f| f.missed.and_then(|m| m.kprobe_hits).and_then(|c| c.count()),
        ),
    ];
    for (name, help, pick) in families {
        let values: Vec<(&str, u64)> = functions
            .iter()
            .filter_map(|f| pick(f).map(|v| (f.function.as_str(), v)))
            .collect();
        if values.is_empty() {
            continue;
        }
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (function, v) in values {
            let labels = [("function", function)];
            ConstCounter::new(v).encode(family.encode_family(&labels.as_slice())?)?;
        }
    }
    Ok(())
}

/// The flight recorder's counters, for captured functions only.
fn encode_recording(
    functions: &[FunctionLatency],
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let recording: Vec<(&str, &Recording)> = functions
        .iter()
        .filter_map(|f| Some((f.function.as_str(), f.recording.as_ref()?)))
        .collect();
    if recording.is_empty() {
        return Ok(());
    }
    let mut slow = encoder.encode_descriptor(
        "netlat_slow_calls",
        "Calls at or over the --capture threshold, the kernel's own count.",
        None,
        MetricType::Counter,
    )?;
    for (function, r) in &recording {
        if let Some(n) = r.slow_calls {
            let labels = [("function", *function)];
            ConstCounter::new(n).encode(slow.encode_family(&labels.as_slice())?)?;
        }
    }
    let mut threshold = encoder.encode_descriptor(
        "netlat_capture_threshold_seconds",
        "The --capture threshold of each captured function.",
        None,
        MetricType::Gauge,
    )?;
    for (function, r) in &recording {
        let labels = [("function", *function)];
        ConstGauge::new(r.threshold.as_secs_f64())
            .encode(threshold.encode_family(&labels.as_slice())?)?;
    }
    let mut captures = encoder.encode_descriptor(
        "netlat_captures",
        "Flight-recorder captures written (see /captures).",
        None,
        MetricType::Counter,
    )?;
    for (function, r) in &recording {
        let labels = [("function", *function)];
        ConstCounter::new(r.captures).encode(captures.encode_family(&labels.as_slice())?)?;
    }
    let mut skipped = encoder.encode_descriptor(
        "netlat_captures_skipped",
        "Captures not taken: in a cooldown, no room on disk, or over the node-wide storm limit.",
        None,
        MetricType::Counter,
    )?;
    for (function, r) in &recording {
        for (reason, n) in &r.skipped {
            let labels = [("function", *function), ("reason", *reason)];
            ConstCounter::new(*n).encode(skipped.encode_family(&labels.as_slice())?)?;
        }
    }
    Ok(())
}

/// An exemplar to write: the series' labels as the page spells them
/// (without `le`), the bucket bound, and the text after the count.
struct ExemplarLine {
    labels: String,
    bound: f64,
    text: String,
}

fn exemplar_lines(functions: &[FunctionLatency]) -> Vec<ExemplarLine> {
    functions
        .iter()
        .filter_map(|f| {
            let e = f.recording.as_ref()?.exemplar.as_ref()?;
            let per_cpu = f.series.iter().any(|(cpu, _)| cpu.is_some());
            let mut labels = format!("function=\"{}\"", f.function);
            if per_cpu {
                labels.push_str(&format!(",cpu=\"{}\"", e.cpu));
            }
            let bound = super::le_buckets::bound_of(e.duration_ns);
            Some(ExemplarLine {
                labels,
                bound,
                text: format!(
                    " # {{capture_id=\"{}\"}} {} {:.3}",
                    e.capture_id,
                    e.duration_ns as f64 / 1e9,
                    e.unix_s
                ),
            })
        })
        .collect()
}

/// prometheus-client 0.25 cannot make an exemplar outside its own metric
/// types, so the latest capture's trigger is written onto its bucket's
/// line of the OpenMetrics page: `... # {capture_id="ID"} VALUE TIMESTAMP`,
/// which links a Grafana point to `/captures/ID`.
fn add_exemplars(page: &str, wanted: &[ExemplarLine]) -> String {
    if wanted.is_empty() {
        return page.to_owned();
    }
    // prometheus-client writes `le` first: `..._bucket{le="X",function="F"} N`.
    const BUCKET: &str = "netlat_function_latency_seconds_bucket{le=\"";
    let mut out = String::with_capacity(page.len() + 256);
    for line in page.lines() {
        out.push_str(line);
        if let Some(rest) = line.strip_prefix(BUCKET)
            && let Some((le, rest)) = rest.split_once("\",")
            && let Some((labels, _)) = rest.split_once('}')
        {
            let bound = if le == "+Inf" {
                Some(f64::INFINITY)
            } else {
                le.parse().ok()
            };
            if let Some(e) = wanted
                .iter()
                .find(|e| e.labels == labels && Some(e.bound) == bound)
            {
                out.push_str(&e.text);
            }
        }
        out.push('\n');
    }
    out
}

/// (metric name without _total, TcpExt counter, help).
const TCP_EXT: [(&str, &str, &str); 4] = [
    (
        "netlat_tcp_prune_called",
        "PruneCalled",
        "Receive queue prunes (each may call tcp_collapse): TcpExt PruneCalled.",
    ),
    (
        "netlat_tcp_rcv_collapsed",
        "TCPRcvCollapsed",
        "Packets merged by tcp_collapse: TcpExt TCPRcvCollapsed.",
    ),
    (
        "netlat_tcp_backlog_drop",
        "TCPBacklogDrop",
        "Packets dropped because the socket backlog was full: TcpExt TCPBacklogDrop.",
    ),
    (
        "netlat_tcp_listen_overflows",
        "ListenOverflows",
        "Connections dropped because an accept queue was full: TcpExt ListenOverflows.",
    ),
];

fn encode_doctor(
    d: &DoctorCounters,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    type Field = fn(&SoftnetRow) -> u64;
    let softnet: [(&str, &str, Field); 3] = [
        (
            "netlat_softnet_processed",
            "Packets processed by NET_RX, per CPU (/proc/net/softnet_stat).",
            |r| r.processed,
        ),
        (
            "netlat_softnet_dropped",
            "Packets dropped because the input backlog was full (net.core.netdev_max_backlog), per CPU.",
            |r| r.dropped,
        ),
        (
            "netlat_softnet_time_squeeze",
            "NET_RX runs that ended with work left (net.core.netdev_budget / netdev_budget_usecs), per CPU.",
            |r| r.time_squeeze,
        ),
    ];
    for (name, help, field) in softnet {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for row in &d.softnet {
            let cpu = row.cpu.to_string();
            let labels = [("cpu", cpu.as_str())];
            ConstCounter::new(field(row)).encode(family.encode_family(&labels.as_slice())?)?;
        }
    }
    for (name, counter, help) in TCP_EXT {
        if let Some(&v) = d.tcp_ext.get(counter) {
            ConstCounter::new(v).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)?;
        }
    }
    if let Some(v) = d.retrans_segs {
        ConstCounter::new(v).encode(encoder.encode_descriptor(
            "netlat_tcp_retransmitted_segments",
            "TCP segments retransmitted: Tcp RetransSegs (/proc/net/snmp).",
            None,
            MetricType::Counter,
        )?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape() -> Scrape {
        Scrape {
            functions: vec![FunctionLatency {
                function: "net_rx_action".into(),
                backend: "raw_tp",
                series: vec![(None, Histogram::from_counts(&[(5000, 3), (70_000, 1)]))],
                missed: Some(crate::model::report::Missed {
                    program_runs: crate::model::report::KernelCount::Counted(5),
                    kprobe_hits: Some(crate::model::report::KernelCount::from_option(None)),
                }),
                recording: None,
            }],
            tcp_rmem: Some([4096, 131072, 6291456]),
            doctor: Some(DoctorCounters {
                softnet: vec![SoftnetRow {
                    cpu: 0,
                    processed: 10,
                    dropped: 1,
                    time_squeeze: 2,
                }],
                tcp_ext: [("PruneCalled".to_owned(), 7)].into(),
                retrans_segs: Some(3),
            }),
            net_rx: None,
        }
    }

    fn recording_scrape() -> Scrape {
        let mut s = scrape();
        s.functions[0].recording = Some(Recording {
            threshold: std::time::Duration::from_micros(50),
            slow_calls: Some(1),
            captures: 1,
            skipped: vec![("cooldown", 2), ("disk", 0), ("storm", 0)],
            exemplar: Some(crate::recorder::live::Exemplar {
                capture_id: "20261203T031200.123456Z-net_rx_action".into(),
                duration_ns: 70_000,
                unix_s: 1_764_731_520.123,
                cpu: 0,
            }),
        });
        s
    }

    #[test]
    fn recorder_counters_and_the_capture_exemplar_on_its_bucket() {
        let page = render(recording_scrape(), Format::OpenMetrics);
        for line in [
            "netlat_slow_calls_total{function=\"net_rx_action\"} 1",
            "netlat_captures_total{function=\"net_rx_action\"} 1",
            "netlat_captures_skipped_total{function=\"net_rx_action\",reason=\"cooldown\"} 2",
            "netlat_capture_threshold_seconds{function=\"net_rx_action\"} 0.00005",
            // 70 us lies under 2^17 ns = 131.072 us.
            "netlat_function_latency_seconds_bucket{le=\"0.000131072\",function=\"net_rx_action\"} 4 # {capture_id=\"20261203T031200.123456Z-net_rx_action\"} 0.00007 1764731520.123",
        ] {
            assert!(
                page.lines().any(|l| l == line),
                "missing {line:?} in\n{page}"
            );
        }
        assert_eq!(page.matches("capture_id").count(), 1, "{page}");
        let text = render(recording_scrape(), Format::Text);
        assert!(!text.contains("capture_id"), "{text}");
        assert!(text.contains("netlat_captures_total{function=\"net_rx_action\"} 1"));
    }

    #[test]
    fn openmetrics_page() {
        let page = render(scrape(), Format::OpenMetrics);
        assert!(page.ends_with("# EOF\n"), "{page}");
        for line in [
            "# TYPE netlat_function_latency_seconds histogram",
            "netlat_function_latency_seconds_count{function=\"net_rx_action\"} 4",
            "netlat_function_latency_seconds_bucket{le=\"0.000008192\",function=\"net_rx_action\"} 3",
            "netlat_function_latency_seconds_bucket{le=\"+Inf\",function=\"net_rx_action\"} 4",
            "netlat_function_info{function=\"net_rx_action\",backend=\"raw_tp\"} 1",
            "netlat_sysctl_tcp_rmem_bytes{field=\"max\"} 6291456",
            "# TYPE netlat_tcp_prune_called counter",
            "netlat_tcp_prune_called_total 7",
            "netlat_softnet_dropped_total{cpu=\"0\"} 1",
            "netlat_tcp_retransmitted_segments_total 3",
            "netlat_function_unmatched_exits_total{function=\"net_rx_action\"} 0",
            "netlat_function_dropped_entries_total{function=\"net_rx_action\"} 0",
            "netlat_function_missed_program_runs_total{function=\"net_rx_action\"} 5",
        ] {
            assert!(
                page.lines().any(|l| l == line),
                "missing {line:?} in\n{page}"
            );
        }
        // Counters the kernel does not have are left out, not zero.
        assert!(!page.contains("netlat_tcp_backlog_drop"), "{page}");
        assert!(!page.contains("netlat_function_kprobe_missed"), "{page}");
    }

    #[test]
    fn classic_text_names_counter_families_with_total() {
        let page = render(scrape(), Format::Text);
        assert!(!page.contains("# EOF"), "{page}");
        assert!(
            page.contains("# HELP netlat_tcp_prune_called_total Receive queue prunes"),
            "{page}"
        );
        assert!(
            page.contains(
                "# TYPE netlat_tcp_prune_called_total counter\nnetlat_tcp_prune_called_total 7\n"
            ),
            "{page}"
        );
        assert!(
            page.contains("# TYPE netlat_function_latency_seconds histogram\n"),
            "{page}"
        );
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(Some("*/*")), Format::Text);
        assert_eq!(Format::from_accept(None), Format::Text);
    }
}
