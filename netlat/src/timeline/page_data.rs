//! What `netlat report`'s page is given: one or two runs, each as windows
//! of bucket counts, slow calls and sampled stacks, with every time an
//! offset from the run's start in nanoseconds (a JavaScript number holds
//! those exactly for 104 days; Unix-epoch nanoseconds it does not).
//!
//! The page computes everything a selection shows (histogram rows,
//! percentiles, the flame graph and the culprit ranking) from these
//! numbers, the way `histogram` and `flamegraph --slower-than` do.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageData {
    /// The page's heading.
    pub title: String,
    /// One, or two for a before/after report (then on one time-of-run
    /// scale).
    pub runs: Vec<PageRun>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageRun {
    /// The file's stem: "before", "run".
    pub name: String,
    /// What the file was: "recording", "capture" or "slow".
    pub source: &'static str,
    pub function: String,
    pub backend: String,
    pub host: String,
    pub kernel: String,
    pub cpus: usize,
    pub netlat_version: String,
    /// Wall-clock time of offset 0, ms since the Unix epoch.
    pub start_unix_ms: f64,
    /// How long the run lasted.
    pub duration_ns: u64,
    /// Width of one window.
    pub interval_ns: u64,
    /// The `--slower-than` threshold; None when the run kept no slow calls.
    pub threshold_ns: Option<u64>,
    /// The unit the run's text report would use ("ns", "us", "ms") and its
    /// size in ns: the page prints its rows in it.
    pub unit: &'static str,
    pub unit_ns: u64,
    /// The kernel's sub-buckets that hold any call of the run, ascending,
    /// as [low_ns, high_ns] (bounds inclusive); windows name them by index.
    pub buckets: Vec<[u64; 2]>,
    /// Every window of the run, oldest first.
    pub windows: Vec<PageWindow>,
    /// The calls over the threshold, in start order.
    pub slow: Vec<PageSlow>,
    /// Sampled kernel stacks, folded root first (`a;b;c`).
    pub stacks: Vec<String>,
    /// [window index, stack index, samples in slow calls, samples in fast
    /// calls]: the samples the window's calls ended with.
    pub samples: Vec<[u64; 4]>,
    /// Sampling frequency; 0 when no stacks were sampled.
    pub frequency_hz: u64,
    /// True when the windows count only the slow calls (`slow --json`
    /// input): the map then shows the calls over the threshold alone.
    pub slow_only: bool,
    /// The run's metadata for the folded section, as titled groups of
    /// (name, value) rows.
    pub meta: Vec<MetaSection>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageWindow {
    /// Start, ns after the run's start.
    pub t: u64,
    /// Calls that ended in the window.
    pub n: u64,
    pub sum: u64,
    /// Shortest and longest call (0 when the window is empty).
    pub min: u64,
    pub max: u64,
    /// [bucket index, calls]: non-empty buckets only.
    pub b: Vec<[u64; 2]>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageSlow {
    /// Start, ns after the run's start.
    pub t: u64,
    /// Duration, ns.
    pub d: u64,
    /// The window the call ended in.
    pub w: usize,
    pub cpu: u32,
    pub context: String,
    /// "comm pid/tid".
    pub task: String,
    /// "local -> remote", when the function takes a socket.
    pub socket: Option<String>,
    /// The call as `netlat slow` prints it.
    pub line: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetaSection {
    pub title: String,
    pub rows: Vec<[String; 2]>,
}
