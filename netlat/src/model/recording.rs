//! A recording as plain data: what `netlat record` writes and `netlat
//! report` reads. The file is a histogram result (schema 1, the whole run:
//! `netlat compare` reads it as any other) with one more member,
//! `recording`, holding the run over time: a histogram per window, every
//! call over the threshold, and the stacks sampled inside the calls, each
//! sample counted in the window its call ended in.
//!
//! ```text
//! { "schema": 1, "function": "net_rx_action", ..., "buckets": [...],
//!   "recording": { "format": 1, "interval_ns": 1000000000,
//!                  "windows": [{"start_unix_ns": .., "count": .., "buckets": [[i, n], ..]}, ..],
//!                  "slow_calls": [<netlat slow --json objects>],
//!                  "stacks": ["net_rx_action;napi_poll;..."],
//!                  "samples": [{"window": 3, "stack": 0, "slow": 12, "fast": 0}], .. } }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::{
    histogram::Histogram,
    report::{Conditions, HistogramReport, Missed},
    slow_call::SlowCall,
};

/// Bumped when a field of `recording` changes meaning; readers refuse
/// other formats with a line that says which they read.
pub const FORMAT: u32 = 1;

/// The file as written: the whole run's result with the run over time.
#[derive(Serialize)]
pub struct RecordingFile<'a> {
    #[serde(flatten)]
    pub result: &'a HistogramReport,
    pub recording: &'a Recording,
}

/// What `report` reads of a recording file: the run's identity and the
/// `recording` member (the whole-run histogram is the windows' sum).
#[derive(Debug, Deserialize)]
pub struct RecordingDocument {
    pub schema: u32,
    pub function: String,
    pub backend: String,
    pub host: String,
    pub kernel: String,
    pub cpus: usize,
    #[serde(default)]
    pub conditions: Option<Conditions>,
    #[serde(default)]
    pub missed: Option<Missed>,
    pub recording: Recording,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// [`FORMAT`].
    pub format: u32,
    pub netlat_version: String,
    /// Probes attached, and the last window's end, ns since the Unix epoch.
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    /// Width of a window (`--interval`); the last one may be shorter.
    pub interval_ns: u64,
    /// `--slower-than`: calls at least this long are in `slow_calls` and
    /// have their stacks sampled. None: neither was kept.
    pub threshold_ns: Option<u64>,
    /// Stack sampling frequency; 0 without a threshold.
    pub frequency_hz: u64,
    pub windows: Vec<RecWindow>,
    /// In start order, as `netlat slow --json` prints them.
    pub slow_calls: Vec<SlowCall>,
    /// Folded sampled stacks ("root;...;leaf"), named once; `samples`
    /// refers to them by index.
    pub stacks: Vec<String>,
    pub samples: Vec<WindowSamples>,
    pub accounting: Accounting,
}

/// The calls that ended in one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecWindow {
    pub start_unix_ns: u64,
    pub count: u64,
    pub sum_ns: u64,
    /// 0 when the window had no call.
    pub min_ns: u64,
    pub max_ns: u64,
    /// [kernel bucket index (`netlat_common::buckets`), calls], non-empty
    /// buckets only.
    pub buckets: Vec<[u64; 2]>,
}

/// Samples of one stack taken inside calls that ended in one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSamples {
    pub window: usize,
    pub stack: usize,
    /// Inside calls at or over the threshold.
    pub slow: u64,
    /// Inside faster calls (the culprit ranking's baseline).
    pub fast: u64,
}

/// The kernel's counts of slow calls and samples, and where the ones not
/// in the file went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// Calls at or over the threshold, by the kernel's count.
    pub over_threshold: u64,
    /// In `slow_calls`.
    pub recorded: u64,
    /// Found the record buffer full.
    pub lost_ring: u64,
    /// Beyond a CPU's record budget for the second (a storm of slow
    /// calls): counted by the kernel, timed in the histograms, not kept.
    #[serde(default)]
    pub limited: u64,
    /// Reached netlat after the file's cap on slow calls was full.
    #[serde(default)]
    pub not_kept: u64,
    /// Samples whose stack could not be kept (a full stack or count map).
    pub samples_lost: u64,
    /// Samples held for calls still running at the end: neither slow nor
    /// fast.
    pub samples_undecided: u64,
}

impl RecWindow {
    pub fn from_histogram(start_unix_ns: u64, h: &Histogram) -> RecWindow {
        RecWindow {
            start_unix_ns,
            count: h.count,
            sum_ns: h.sum_ns,
            min_ns: h.min_ns,
            max_ns: h.max_ns,
            buckets: h
                .buckets
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| [i as u64, c])
                .collect(),
        }
    }

    /// The window as a histogram (bucket indexes past the layout dropped:
    /// a file of another build cannot make it panic).
    pub fn histogram(&self) -> Histogram {
        let mut h = Histogram {
            count: self.count,
            sum_ns: self.sum_ns,
            min_ns: self.min_ns,
            max_ns: self.max_ns,
            ..Histogram::default()
        };
        for &[i, c] in &self.buckets {
            if let Some(slot) = h.buckets.get_mut(i as usize) {
                *slot += c;
            }
        }
        h
    }
}

impl Recording {
    /// The whole run: every window merged.
    pub fn total(&self) -> Histogram {
        let parts: Vec<Histogram> = self.windows.iter().map(RecWindow::histogram).collect();
        Histogram::merged(&parts)
    }

    /// The window a call that ended at `end_unix_ns` belongs to: the last
    /// that started at or before it (the first for a call that ended
    /// before any window started).
    pub fn window_of(&self, end_unix_ns: u64) -> usize {
        self.windows
            .partition_point(|w| w.start_unix_ns <= end_unix_ns)
            .saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_round_trip_through_histograms_and_add_up() {
        let a = Histogram::from_values(&[100, 2_000, 2_100]);
        let b = Histogram::from_values(&[5_000_000]);
        let rec = Recording {
            format: FORMAT,
            netlat_version: "test".into(),
            start_unix_ns: 1_000,
            end_unix_ns: 3_000,
            interval_ns: 1_000,
            threshold_ns: Some(1_000_000),
            frequency_hz: 99,
            windows: vec![
                RecWindow::from_histogram(1_000, &a),
                RecWindow::from_histogram(2_000, &b),
            ],
            slow_calls: vec![],
            stacks: vec![],
            samples: vec![],
            accounting: Accounting::default(),
        };
        assert_eq!(rec.windows[0].histogram(), a);
        let total = rec.total();
        assert_eq!(total.count, 4);
        assert_eq!(total.min_ns, 100);
        assert_eq!(total.max_ns, 5_000_000);
        assert_eq!(total.bucket_total(), 4);
        assert_eq!(rec.window_of(999), 0);
        assert_eq!(rec.window_of(1_999), 0);
        assert_eq!(rec.window_of(2_000), 1);
        assert_eq!(rec.window_of(9_000), 1);
    }

    #[test]
    fn a_foreign_bucket_index_is_dropped_not_a_panic() {
        let w = RecWindow {
            start_unix_ns: 0,
            count: 1,
            sum_ns: 5,
            min_ns: 5,
            max_ns: 5,
            buckets: vec![[u64::MAX, 1], [5, 1]],
        };
        assert_eq!(w.histogram().bucket_total(), 1);
    }
}
