//! Which functions under `--during FUNCTION` take more of the slow calls'
//! time than of the fast calls': the step "The story of one latency spike"
//! did by trial and error, computed from the folded stacks.
//!
//! Shares are inclusive: a sample counts for every distinct function on
//! its stack below FUNCTION. Functions are ranked by their term of the
//! relative entropy of the slow calls' samples against the fast calls',
//! `s * ln(s / f)` for slow share `s` and fast share `f`: large for a
//! function both common in slow calls and rare in fast ones. The plain
//! difference `s - f` would rank a caller above the culprit whenever the
//! caller also holds other slow-call samples (under `tcp_rcv_established`
//! sits tcp_collapse, but also every big ordinary receive); the ratio in
//! the logarithm keeps the most specific function on top. A caller whose
//! samples all end in one callee ties with it; ties go to the deeper
//! function, the more precise name.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Below this many slow-call samples a ranking is noise, not evidence.
pub const MIN_SAMPLES: u64 = 20;

/// With no fast-call sample to rank against, a ranking is only shares, and
/// functions under this share (percent) of the samples are left out: a
/// long tail of 0.01% functions hides the few that matter.
pub const MIN_SHARE_PCT: f64 = 1.0;

/// One function's share of the slow (or, without a threshold, all) calls'
/// samples, beside its share of the fast calls'.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub function: String,
    pub samples: u64,
    /// Percent of the slow calls' samples whose stack holds the function.
    pub pct: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_samples: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_pct: Option<f64>,
    /// What the rows are ordered by: `s * ln(s / f)` with shares as
    /// fractions (the fast share smoothed by half a sample, so a function
    /// never seen in fast calls scores finitely); without fast calls, the
    /// share.
    pub score: f64,
}

/// The relative-entropy term of `slow` of `slow_total` samples against
/// `fast` of `fast_total`.
fn score(slow: u64, slow_total: u64, fast: u64, fast_total: u64) -> f64 {
    if slow == 0 || slow_total == 0 {
        return 0.0;
    }
    let s = slow as f64 / slow_total as f64;
    let f = (fast as f64 + 0.5) / (fast_total as f64 + 1.0);
    s * (s / f).ln()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    pub samples: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_samples: Option<u64>,
    /// Whether `samples` reached [`MIN_SAMPLES`].
    pub enough_samples: bool,
    /// Best first.
    pub rows: Vec<Row>,
    /// Functions left out for a share under [`MIN_SHARE_PCT`] (only when
    /// there is no fast-call sample to compare with).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Inclusive samples per function below `anchor`, the mean depth of each
/// below it (for ties), and the total.
struct Inclusive {
    total: u64,
    samples: HashMap<String, u64>,
    depth: HashMap<String, f64>,
}

fn inclusive(folded: &BTreeMap<String, u64>, anchor: &str) -> Inclusive {
    let mut out = Inclusive {
        total: 0,
        samples: HashMap::new(),
        depth: HashMap::new(),
    };
    for (stack, &n) in folded {
        out.total += n;
        let frames: Vec<&str> = stack.split(';').collect();
        let Some(start) = frames.iter().position(|f| *f == anchor) else {
            continue;
        };
        let mut seen = HashSet::new();
        for (depth, frame) in frames[start + 1..].iter().enumerate() {
            // Recursion: a function counts once per sample. The fold's
            // labels ("[incomplete stack]") say what a stack lacks, and
            // cannot be a culprit: their frames below still count.
            if *frame == anchor || frame.starts_with('[') || !seen.insert(*frame) {
                continue;
            }
            *out.samples.entry((*frame).to_owned()).or_insert(0) += n;
            *out.depth.entry((*frame).to_owned()).or_insert(0.0) += depth as f64 * n as f64;
        }
    }
    out
}

fn pct(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * part as f64 / total as f64
    }
}

/// Ranks the functions under `anchor` by slow share minus fast share
/// (`fast` is None without `--slower-than`: then by share of all samples).
pub fn rank(
    slow: &BTreeMap<String, u64>,
    fast: Option<&BTreeMap<String, u64>>,
    anchor: &str,
) -> Ranking {
    let s = inclusive(slow, anchor);
    let fast_total = fast.map(|f| inclusive(f, anchor).total);
    // No fast-call sample at all: nothing to compare with, so shares only
    // (every score would be the same function of the share, below 0 for
    // most).
    let f = fast.map(|f| inclusive(f, anchor)).filter(|f| f.total > 0);
    let mut names: HashSet<&String> = s.samples.keys().collect();
    if let Some(f) = &f {
        names.extend(f.samples.keys());
    }
    let mut rows: Vec<(Row, f64)> = names
        .into_iter()
        .map(|name| {
            let samples = s.samples.get(name).copied().unwrap_or(0);
            let fast_samples = f
                .as_ref()
                .map(|f| f.samples.get(name).copied().unwrap_or(0));
            let depth = s.depth.get(name).copied().unwrap_or(0.0) / samples.max(1) as f64;
            let row = Row {
                function: name.clone(),
                samples,
                pct: pct(samples, s.total),
                fast_samples,
                fast_pct: f.as_ref().zip(fast_samples).map(|(f, n)| pct(n, f.total)),
                score: match (&f, fast_samples) {
                    (Some(f), Some(n)) => score(samples, s.total, n, f.total),
                    _ => pct(samples, s.total) / 100.0,
                },
            };
            (row, depth)
        })
        .collect();
    rows.sort_by(|(a, da), (b, db)| {
        b.score
            .total_cmp(&a.score)
            .then(b.samples.cmp(&a.samples))
            .then(db.total_cmp(da))
            .then_with(|| a.function.cmp(&b.function))
    });
    let mut rows: Vec<Row> = rows.into_iter().map(|(r, _)| r).collect();
    let mut omitted = 0;
    if f.is_none() {
        let before = rows.len();
        rows.retain(|r| r.pct >= MIN_SHARE_PCT);
        omitted = before - rows.len();
    }
    Ranking {
        samples: s.total,
        fast_samples: fast_total,
        enough_samples: s.total >= MIN_SAMPLES,
        rows,
        omitted,
    }
}

/// 10,000 samples of slow calls: tcp_collapse under tcp_v4_rcv, and 100
/// functions with one sample each (tests of the ranking and of its table).
#[cfg(test)]
pub(crate) fn culprit_and_a_tail() -> BTreeMap<String, u64> {
    let mut lines = vec![
        ("net_rx_action;tcp_v4_rcv;tcp_collapse".to_owned(), 9_000),
        ("net_rx_action;tcp_v4_rcv".to_owned(), 900),
    ];
    for i in 0..100 {
        lines.push((format!("net_rx_action;rare_{i:03}"), 1));
    }
    lines.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(lines: &[(&str, u64)]) -> BTreeMap<String, u64> {
        lines.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    }

    const SLOW: &[(&str, u64)] = &[
        (
            "__do_softirq;net_rx_action;process_backlog;tcp_v4_rcv;tcp_data_queue;tcp_prune_queue;tcp_collapse",
            90,
        ),
        (
            "__do_softirq;net_rx_action;process_backlog;tcp_v4_rcv;tcp_data_queue;tcp_prune_queue;tcp_collapse;kmem_cache_free",
            3,
        ),
        ("__do_softirq;net_rx_action;process_backlog;tcp_v4_rcv", 7),
    ];
    const FAST: &[(&str, u64)] = &[
        ("__do_softirq;net_rx_action;process_backlog;tcp_v4_rcv", 900),
        (
            "__do_softirq;net_rx_action;process_backlog;tcp_v4_rcv;tcp_data_queue",
            99,
        ),
        (
            "__do_softirq;net_rx_action;process_backlog;tcp_v4_rcv;tcp_data_queue;tcp_prune_queue;tcp_collapse",
            1,
        ),
    ];

    #[test]
    fn the_callee_ahead_of_callers_that_tie_with_it() {
        let r = rank(&folded(SLOW), Some(&folded(FAST)), "net_rx_action");
        assert_eq!((r.samples, r.fast_samples), (100, Some(1000)));
        assert!(r.enough_samples);
        let names: Vec<&str> = r.rows.iter().map(|r| r.function.as_str()).collect();
        // tcp_collapse and tcp_prune_queue tie at 93% vs 0.1%: the deeper
        // one first. Functions on every stack (process_backlog) score 0.
        assert_eq!(
            &names[..3],
            ["tcp_collapse", "tcp_prune_queue", "tcp_data_queue"]
        );
        let top = &r.rows[0];
        assert_eq!((top.samples, top.fast_samples), (93, Some(1)));
        assert!((top.pct - 93.0).abs() < 1e-9);
        assert!((top.fast_pct.unwrap() - 0.1).abs() < 1e-9);
        assert!(!names.contains(&"net_rx_action") && !names.contains(&"__do_softirq"));
        for row in &r.rows {
            assert!((0.0..=100.0).contains(&row.pct), "{row:?}");
            assert!((0.0..=100.0).contains(&row.fast_pct.unwrap()), "{row:?}");
        }
    }

    #[test]
    fn labels_are_not_ranked_but_the_frames_under_them_are() {
        // 5.10's unwinder stops short of net_rx_action in most softirq
        // samples: the fold puts those under a label.
        let slow = folded(&[
            (
                "net_rx_action;[incomplete stack];tcp_prune_queue;tcp_collapse",
                60,
            ),
            ("net_rx_action;tcp_v4_rcv", 2),
        ]);
        let fast = folded(&[
            ("net_rx_action;[incomplete stack];tcp_v4_rcv", 100),
            ("net_rx_action;tcp_v4_rcv", 900),
        ]);
        let r = rank(&slow, Some(&fast), "net_rx_action");
        let names: Vec<&str> = r.rows.iter().map(|r| r.function.as_str()).collect();
        assert_eq!(names, ["tcp_collapse", "tcp_prune_queue", "tcp_v4_rcv"]);
    }

    #[test]
    fn the_culprit_beats_a_caller_that_also_holds_other_slow_samples() {
        // As seen under QEMU: one 50 ms collapse among ordinary calls that
        // a slow emulator stretched past the threshold too.
        let slow = folded(&[
            (
                "net_rx_action;tcp_v4_rcv;tcp_rcv_established;tcp_data_queue;tcp_try_rmem_schedule;tcp_prune_queue;tcp_collapse",
                32,
            ),
            ("net_rx_action;tcp_v4_rcv;tcp_rcv_established;tcp_ack", 32),
            ("net_rx_action;tcp_v4_rcv", 31),
        ]);
        let fast = folded(&[
            ("net_rx_action;tcp_v4_rcv;tcp_rcv_established;tcp_ack", 900),
            (
                "net_rx_action;tcp_v4_rcv;tcp_rcv_established;tcp_data_queue",
                40,
            ),
            ("net_rx_action;tcp_v4_rcv", 1895),
        ]);
        let r = rank(&slow, Some(&fast), "net_rx_action");
        let by_difference = |row: &Row| row.pct - row.fast_pct.unwrap();
        let established = r
            .rows
            .iter()
            .find(|r| r.function == "tcp_rcv_established")
            .unwrap();
        let collapse = r
            .rows
            .iter()
            .find(|r| r.function == "tcp_collapse")
            .unwrap();
        // The difference alone would put the caller first.
        assert!(by_difference(established) > by_difference(collapse));
        assert_eq!(r.rows[0].function, "tcp_collapse", "{:#?}", r.rows);
    }

    #[test]
    fn an_exact_tie_of_unrelated_functions_is_ordered_by_name() {
        let slow = folded(&[("net_rx_action;b_func", 25), ("net_rx_action;a_func", 25)]);
        let r = rank(&slow, Some(&BTreeMap::new()), "net_rx_action");
        let names: Vec<&str> = r.rows.iter().map(|r| r.function.as_str()).collect();
        assert_eq!(names, ["a_func", "b_func"]);
        assert_eq!(r.rows[0].pct, 50.0);
        assert_eq!(r.rows[0].fast_pct, None);
    }

    #[test]
    fn no_fast_sample_gives_shares_without_the_negligible_tail() {
        // Every call was slow: nothing to rank against. 0.01% functions
        // (one sample in 10,000) once filled the table.
        let slow = culprit_and_a_tail();
        let r = rank(&slow, Some(&BTreeMap::new()), "net_rx_action");
        assert_eq!(r.fast_samples, Some(0));
        let names: Vec<&str> = r.rows.iter().map(|r| r.function.as_str()).collect();
        assert_eq!(names, ["tcp_v4_rcv", "tcp_collapse"]);
        assert_eq!(r.omitted, 100);
        assert!(r.rows.iter().all(|r| r.fast_pct.is_none() && r.score > 0.0));
    }

    #[test]
    fn a_single_slow_call_still_ranks_when_sampled_enough() {
        // One 40 ms call at 999 Hz: ~40 samples, all in one stack.
        let slow = folded(&[("net_rx_action;tcp_prune_queue;tcp_collapse", 40)]);
        let fast = folded(&[("net_rx_action;napi_poll", 10)]);
        let r = rank(&slow, Some(&fast), "net_rx_action");
        assert!(r.enough_samples);
        assert_eq!(r.rows[0].function, "tcp_collapse");
        assert_eq!(r.rows.last().unwrap().function, "napi_poll");
        assert_eq!(r.rows.last().unwrap().score, 0.0);
    }

    #[test]
    fn too_few_samples_are_not_enough_to_rank() {
        let slow = folded(&[("net_rx_action;tcp_collapse", 7)]);
        let r = rank(&slow, Some(&BTreeMap::new()), "net_rx_action");
        assert!(!r.enough_samples);
    }

    #[test]
    fn without_a_threshold_shares_are_of_all_in_call_samples() {
        let all = folded(&[
            ("net_rx_action;tcp_v4_rcv", 30),
            ("net_rx_action;tcp_v4_rcv;tcp_collapse", 10),
            ("net_rx_action", 10),
        ]);
        let r = rank(&all, None, "net_rx_action");
        assert_eq!(r.fast_samples, None);
        assert_eq!(r.rows[0].function, "tcp_v4_rcv");
        assert_eq!(r.rows[0].pct, 80.0);
        assert_eq!(r.rows[1].pct, 20.0);
        let json = serde_json::to_value(&r.rows[0]).unwrap();
        assert!(json.get("fast_pct").is_none(), "{json}");
    }

    #[test]
    fn recursion_counts_once_per_sample() {
        let slow = folded(&[("net_rx_action;f;g;f", 30)]);
        let r = rank(&slow, None, "net_rx_action");
        assert_eq!(
            r.rows.iter().find(|r| r.function == "f").unwrap().samples,
            30
        );
    }
}
