//! A run's result as plain data: what the renderers print and `--json`
//! writes. Serializable both ways so recorded runs can be read back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    model::histogram::{Histogram, PERCENTILES},
    model::size_band,
    model::softnet::SoftnetRow,
};

/// Bumped whenever a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramReport {
    pub schema: u32,
    pub function: String,
    /// Short backend name: kprobe, fentry, tp_btf, raw_tp or tracepoint.
    pub backend: String,
    /// What the backend attached to, for people.
    pub backend_detail: String,
    pub host: String,
    pub kernel: String,
    pub cpus: usize,
    /// RFC 3339 UTC time the window started (probes attached or last interval).
    pub start: String,
    pub window_ns: u64,
    /// Set when the user restricted the report to one CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(flatten)]
    pub summary: Summary,
    /// Entries with no exit seen when the probes came off: calls still in
    /// progress, or exits the kernel never reported (missed kretprobes).
    /// Only in the final report of a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfinished_calls: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_cpu: Option<Vec<CpuSummary>>,
    /// The settings and kernel counters around the run (final report only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
    /// `--by`: the same calls again, one histogram per group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Grouping>,
    /// `--interval` runs written with `--output`: each window as it was
    /// printed. The report itself then covers the whole run (its counts are
    /// the windows' sum), like its conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<WindowSummary>>,
    /// What the kernel itself counted as skipped while netlat was attached
    /// (final report only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<Missed>,
    /// Set by `netlat experiment`: the sysctl it changed, recorded whether
    /// or not it is among the ones every report carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<Experiment>,
}

/// One `--interval` window of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// RFC 3339 UTC time the window started.
    pub start: String,
    pub window_ns: u64,
    #[serde(flatten)]
    pub summary: Summary,
}

/// Work the kernel skipped, by its own counters: each is a call netlat
/// could not time, or timed from only one end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed {
    /// Runs of netlat's entry and exit programs the kernel did not make
    /// (`recursion_misses`: the program was already running on that CPU).
    pub program_runs: KernelCount,
    /// kprobe backend only: probe hits the kprobe machinery dropped (the
    /// perf link's `missed`, Linux 6.7+), mostly kretprobes that found no
    /// free return instance, so that call's exit was never seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kprobe_hits: Option<KernelCount>,
}

/// A kernel counter, or the kernel's silence about it: JSON holds the
/// number, or the string "not reported by this kernel" (never a made-up 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KernelCount {
    Counted(u64),
    NotReported(NotReported),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotReported {
    #[serde(rename = "not reported by this kernel")]
    ByThisKernel,
}

impl KernelCount {
    pub fn from_option(n: Option<u64>) -> KernelCount {
        n.map_or(
            KernelCount::NotReported(NotReported::ByThisKernel),
            KernelCount::Counted,
        )
    }

    pub fn count(self) -> Option<u64> {
        match self {
            KernelCount::Counted(n) => Some(n),
            KernelCount::NotReported(_) => None,
        }
    }
}

impl std::fmt::Display for KernelCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelCount::Counted(n) => write!(f, "{n}"),
            KernelCount::NotReported(_) => f.write_str("not reported by this kernel"),
        }
    }
}

/// The one setting an experiment changed between its two runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experiment {
    pub sysctl: String,
    /// The value during the "before" run (the host's own).
    pub before: String,
    /// The value during the "after" run, as the kernel read it back.
    pub during: String,
    /// Which of the two runs this report is.
    pub run: ExperimentRun,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExperimentRun {
    Before,
    After,
}

impl Experiment {
    /// The value in force during this report's run.
    pub fn in_force(&self) -> &str {
        match self.run {
            ExperimentRun::Before => &self.before,
            ExperimentRun::After => &self.during,
        }
    }
}

/// The run's calls split by a key read at each call's entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grouping {
    /// `rcvbuf`.
    pub key: String,
    /// Where the key was read on this kernel.
    pub source: String,
    /// Non-empty groups, smallest key first; their counts sum to the run's.
    pub groups: Vec<Group>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The band's bounds in bytes, inclusive; absent for calls whose key
    /// could not be read (or was not positive).
    pub low: Option<u64>,
    pub high: Option<u64>,
    /// "128K" for the band [128K, 256K).
    pub label: String,
    #[serde(flatten)]
    pub summary: Summary,
}

impl Grouping {
    /// `per_group[g]` holds group g's calls (see `netlat_common::rcvbuf_group`);
    /// `key` names it (`rcvbuf`), `source` says where it was read.
    pub fn new(key: &str, source: String, per_group: &[Histogram]) -> Grouping {
        let groups = per_group
            .iter()
            .enumerate()
            .filter(|(_, h)| h.count > 0)
            .map(|(g, h)| {
                let band = size_band::band(g as u32);
                Group {
                    low: band.map(|b| b.0),
                    high: band.map(|b| b.1),
                    label: band
                        .map_or_else(|| "unknown".to_owned(), |b| size_band::size_label(b.0)),
                    summary: Summary::from(h),
                }
            })
            .collect();
        Grouping {
            key: key.to_owned(),
            source,
            groups,
        }
    }
}

/// What explains a run's numbers: the tunables in force and how the kernel's
/// own drop/prune/squeeze counters moved while netlat watched.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    /// sysctl name -> value as `sysctl -n` prints it; null if absent here.
    pub sysctls_start: BTreeMap<String, Option<String>>,
    pub sysctls_end: BTreeMap<String, Option<String>>,
    /// Growth of TcpExt counters (/proc/net/netstat) over the run.
    pub netstat_delta: BTreeMap<String, u64>,
    /// Growth of /proc/net/softnet_stat per CPU over the run.
    pub softnet_delta: Vec<SoftnetRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuSummary {
    pub cpu: u32,
    #[serde(flatten)]
    pub summary: Summary,
}

/// Statistics of one histogram; min/max/mean are absent when count is 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub sum_ns: u64,
    pub min_ns: Option<u64>,
    pub max_ns: Option<u64>,
    pub mean_ns: Option<f64>,
    pub percentiles_ns: Option<Percentiles>,
    /// Calls already in flight when the probes attached, or whose entry the
    /// kernel skipped: seen returning, never timed.
    pub unmatched_exits: u64,
    /// Entries not timed because the nesting stack or the thread map was full.
    pub dropped_entries: u64,
    /// fentry/fexit calls not timed because the kernel ran only their exit
    /// program, or only their entry program, while others were in flight
    /// (`netlat_common::Stats::mismatched_exits`). Absent from older files.
    #[serde(default)]
    pub mismatched_exits: u64,
    /// Non-empty buckets, nanoseconds, bounds inclusive; they sum to `count`.
    pub buckets: Vec<BucketCount>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    pub max: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCount {
    pub low_ns: u64,
    pub high_ns: u64,
    pub count: u64,
}

impl From<&Histogram> for Summary {
    fn from(h: &Histogram) -> Self {
        let q = |i: usize| h.quantile_ns(PERCENTILES[i].1);
        let percentiles_ns = (h.count > 0).then(|| Percentiles {
            p50: q(0).unwrap_or_default(),
            p90: q(1).unwrap_or_default(),
            p99: q(2).unwrap_or_default(),
            p99_9: q(3).unwrap_or_default(),
            max: h.max_ns,
        });
        Summary {
            count: h.count,
            sum_ns: h.sum_ns,
            min_ns: (h.count > 0).then_some(h.min_ns),
            max_ns: (h.count > 0).then_some(h.max_ns),
            mean_ns: h.mean_ns(),
            percentiles_ns,
            unmatched_exits: h.unmatched_exits,
            dropped_entries: h.dropped_entries,
            mismatched_exits: h.mismatched_exits,
            buckets: h
                .nonempty_buckets()
                .map(|b| BucketCount {
                    low_ns: b.low_ns,
                    high_ns: b.high_ns,
                    count: b.count,
                })
                .collect(),
        }
    }
}

impl Percentiles {
    /// (label, value) in print order.
    pub fn labelled(&self) -> [(&'static str, u64); 5] {
        [
            (PERCENTILES[0].0, self.p50),
            (PERCENTILES[1].0, self.p90),
            (PERCENTILES[2].0, self.p99),
            (PERCENTILES[3].0, self.p99_9),
            ("max", self.max),
        ]
    }
}
