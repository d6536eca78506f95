//! One capture of the flight recorder as plain data: what `serve --capture`
//! writes, `/captures/ID` serves and `netlat captures show` reads. Nothing
//! here touches the kernel or the disk.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    flamegraph::culprit::Ranking,
    model::{
        report::{Conditions, Summary},
        slow_call::SlowCall,
    },
};

/// Bumped when a field changes meaning; readers refuse newer formats.
pub const FORMAT: u32 = 1;

/// Everything one spike left behind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    /// `netlat_capture` format version ([`FORMAT`]).
    pub netlat_capture: u32,
    /// Names the capture in URLs and file names (see `store::valid_id`).
    pub id: String,
    pub function: String,
    /// The `--capture FUNCTION=THRESHOLD` threshold.
    pub threshold_ns: u64,
    /// How the function was timed ("raw_tp", "kprobe", ...).
    pub backend: String,
    pub host: String,
    pub kernel: String,
    pub netlat_version: String,
    pub trigger: Trigger,
    pub window: Window,
    /// Every slow call of the window that reached userspace, the trigger
    /// first, as `netlat slow --json` prints them.
    pub calls: Vec<SlowCall>,
    pub accounting: Accounting,
    pub stacks: Stacks,
    /// The culprit ranking of `stacks.slow` against `stacks.fast`, as
    /// `flamegraph --during --slower-than` ranks them.
    pub ranking: Ranking,
    /// Per-second histograms of the function: up to a minute before the
    /// trigger (oldest first), then the window's.
    pub histograms: Histograms,
    /// Tunables at the trigger and at the window's end, and how the
    /// kernel's drop/prune/collapse counters moved in between.
    pub conditions: Conditions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The first call at or over the threshold.
    pub call: SlowCall,
    /// Slow calls since the previous capture of this function that no
    /// capture holds (they came during its cooldown, or a capture was
    /// skipped): never silently dropped.
    pub missed_before: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Start of the trigger call, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// Calls that ended after this belong to the next capture.
    pub end_unix_ns: u64,
}

/// The kernel's count of calls over the threshold, and where each went:
/// `recorded + not_kept + after_window + lost_ring + limited + unsettled`
/// equals `kernel_over_threshold`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// Calls over the threshold the kernel counted from the moment the
    /// recorder armed until the window closed.
    pub kernel_over_threshold: u64,
    /// In `calls`.
    pub recorded: u64,
    /// Reached userspace in the window but past the per-capture cap.
    pub not_kept: u64,
    /// Ended after the window but before the count was read.
    pub after_window: u64,
    /// Found the kernel's record buffer full.
    pub lost_ring: u64,
    /// Beyond the kernel's per-CPU record rate (`--capture-rate`).
    pub limited: u64,
    /// Calls in flight while a count was read: positive, counted by the
    /// kernel but not yet in the buffer at the window's end; negative,
    /// read in the window but counted before the recorder armed. A few at
    /// most, and only while calls are slow at the very moment of a read.
    pub unsettled: i64,
}

/// Kernel stacks sampled inside the calls, folded as flamegraph's
/// `--folded` writes them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stacks {
    pub frequency_hz: u64,
    /// Samples inside calls at or over the threshold.
    pub slow: BTreeMap<String, u64>,
    /// Samples inside faster calls of the same stretch (for the ranking).
    pub fast: BTreeMap<String, u64>,
    /// Samples whose stack could not be kept or named.
    pub lost: u64,
    /// Calls the samples were held for and then kept as slow or as fast,
    /// the kernel's counts over the same stretch as the stacks (0 with a
    /// threshold of 0: every call is slow and samples are not held).
    #[serde(default)]
    pub slow_calls: u64,
    /// Entry stacks of calls (functions other than net_rx_action) the
    /// kernel could not take, over the same stretch as `accounting`.
    #[serde(default)]
    pub entry_lost: u64,
    #[serde(default)]
    pub fast_calls: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    pub before: Vec<Second>,
    pub window: Vec<Second>,
}

/// One second of the function's calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// End of the second, seconds since the Unix epoch.
    pub unix_s: f64,
    #[serde(flatten)]
    pub summary: Summary,
}

/// What `/captures` lists for each capture: enough to choose one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub id: String,
    pub function: String,
    /// The trigger's start, ns since the Unix epoch.
    pub start_unix_ns: u64,
    pub slow_calls: u64,
    pub max_duration_ns: u64,
    /// The first row of the ranking, if any.
    pub top_culprit: Option<String>,
}

impl Capture {
    pub fn listing(&self) -> Listing {
        Listing {
            id: self.id.clone(),
            function: self.function.clone(),
            start_unix_ns: self.window.start_unix_ns,
            slow_calls: self.accounting.recorded,
            max_duration_ns: self.calls.iter().map(|c| c.duration_ns).max().unwrap_or(0),
            top_culprit: self.ranking.rows.first().map(|r| r.function.clone()),
        }
    }
}
