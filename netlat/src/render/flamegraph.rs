//! `netlat flamegraph`'s text: the graph's title and subtitle, the lines
//! on stderr (what is sampled, what was written and kept, why nothing
//! was), and the culprit table on stdout. Pure, so tests compare whole
//! lines.

use std::{path::Path, time::Duration};

use crate::{
    flamegraph::{
        culprit::{MIN_SAMPLES, MIN_SHARE_PCT, Ranking},
        fold::{self, Folded},
        sampler::Tally,
        summary::Summary,
    },
    model::histogram::Histogram,
};

/// What `netlat flamegraph` was asked for, as its lines speak of it.
pub struct Asked<'a> {
    /// `--during`.
    pub function: Option<&'a str>,
    /// `--slower-than`.
    pub slower_than: Option<Duration>,
    /// `--frequency`.
    pub hz: u64,
    /// `--duration`; None until Ctrl-C.
    pub duration: Option<Duration>,
    /// `--output`.
    pub output: &'a Path,
    /// `--folded`.
    pub folded: Option<&'a Path>,
}

/// Which of the files were written.
pub struct Written {
    pub svg: bool,
    pub folded: bool,
}

pub fn title(asked: &Asked) -> String {
    match (asked.function, asked.slower_than) {
        (Some(f), Some(t)) => format!(
            "Kernel stacks in {f} calls slower than {}",
            humantime::format_duration(t)
        ),
        (Some(f), None) => format!("Kernel stacks during {f}"),
        _ => "Kernel stacks, all CPUs".to_owned(),
    }
}

/// `--diff`'s title, from the main graph's.
pub fn diff_title(title: &str) -> String {
    format!("{title}, against the faster calls")
}

pub fn subtitle(
    asked: &Asked,
    window: Duration,
    hostname: &str,
    kernel: &str,
    kept: u64,
) -> String {
    format!(
        "{:.1} s at {} Hz on {hostname} (Linux {kernel}), {kept} samples",
        window.as_secs_f64(),
        asked.hz,
    )
}

/// The first line: what is sampled (`timed_with`: the backend's detail
/// for `--during`), how often, for how long.
pub fn announce(asked: &Asked, timed_with: Option<&str>) -> String {
    let what = match (timed_with, asked.function) {
        (Some(how), Some(f)) => format!("kernel stacks during {f} (timed with {how})"),
        _ => "kernel stacks on all CPUs".to_owned(),
    };
    let how_long = match asked.duration {
        Some(d) => format!("for {}", humantime::format_duration(d)),
        None => "until Ctrl-C".to_owned(),
    };
    format!("netlat: sampling {what} at {} Hz {how_long}", asked.hz)
}

/// The error when no sample was kept: where they all went instead.
pub fn nothing_kept(
    asked: &Asked,
    window: Duration,
    tally: &Tally,
    calls: Option<&Histogram>,
) -> String {
    let ran = match (calls, asked.function) {
        (Some(h), Some(f)) => format!(
            "{f} ran {} times, {:.2} ms in all; ",
            h.count,
            h.sum_ns as f64 / 1e6
        ),
        _ => String::new(),
    };
    let fast = match asked.slower_than {
        Some(limit) => format!(
            "{} in calls faster than {}, ",
            tally.fast,
            humantime::format_duration(limit)
        ),
        None => String::new(),
    };
    format!(
        "no samples were kept in {:.1} s ({ran}{fast}{} samples outside it, {} without a kernel stack): nothing to draw; sample longer or at a higher --frequency",
        window.as_secs_f64(),
        tally.outside,
        tally.lost_stack
    )
}

/// The line after the window: which files were written, where the
/// samples went, and `--during`'s calls.
pub fn report(
    asked: &Asked,
    t: &Tally,
    folded: &Folded,
    calls: Option<&Histogram>,
    written: &Written,
) -> String {
    let mut dropped = Vec::new();
    if let Some(f) = asked.function {
        dropped.push(format!("{} outside {f}", t.outside));
    }
    if let Some(limit) = asked.slower_than {
        dropped.push(format!(
            "{} in calls faster than {} (ranked against, not drawn)",
            t.fast,
            humantime::format_duration(limit)
        ));
    }
    let lost = t.lost_stack + t.lost_pending + t.lost_count;
    let mut line = if written.svg {
        format!(
            "netlat: wrote {}: {} samples kept",
            asked.output.display(),
            t.kept
        )
    } else {
        format!(
            "netlat: could not write {}: {} samples kept",
            asked.output.display(),
            t.kept
        )
    };
    if !dropped.is_empty() {
        line.push_str(&format!(", dropped {}", dropped.join(", ")));
    }
    if lost > 0 {
        line.push_str(&format!(
            ", lost {lost} (no kernel stack or stack map full {}, pending per call {}, count map {})",
            t.lost_stack, t.lost_pending, t.lost_count
        ));
    }
    let labelled: Vec<String> = [
        (folded.own_probes, fold::OWN_PROBES),
        (folded.softirq_outside, fold::SOFTIRQ_OUTSIDE),
        (folded.incomplete, fold::INCOMPLETE),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, label)| format!("{n} under {label}"))
    .collect();
    if !labelled.is_empty() {
        line.push_str(&format!(" ({})", labelled.join(", ")));
    }
    if let (Some(h), Some(f)) = (calls, asked.function) {
        line.push_str(&format!(
            "; {f}: {} calls, max {} us",
            h.count,
            h.max_ns / 1000
        ));
    }
    match asked.folded {
        Some(path) if written.folded => {
            line.push_str(&format!("; folded stacks in {}", path.display()));
        }
        Some(path) => line.push_str(&format!("; could not write {}", path.display())),
        None => {}
    }
    line
}

/// Each sample stretches the call it lands in by at least the sampler's
/// own run time: a threshold within ~10x of it mostly keeps calls the
/// sampler slowed down.
pub fn cost_warning(slower_than: Option<Duration>, cost_ns: Option<f64>) -> Option<String> {
    let (limit, cost) = (slower_than?, cost_ns?);
    ((limit.as_nanos() as f64) < 10.0 * cost).then(|| {
        format!(
            "netlat: warning: each sample costs {:.1} us here (the sampler's own run time), so calls just over --slower-than {} may be slow only because samples landed in them; use a threshold of at least {:.0} us",
            cost / 1e3,
            humantime::format_duration(limit),
            (10.0 * cost / 1e3).ceil()
        )
    })
}

/// `--json`: the ranking and its accounting on one line.
pub fn json(summary: &Summary) -> Result<String, serde_json::Error> {
    serde_json::to_string(summary)
}

/// What the culprit table's heading says about the calls.
pub struct Calls<'a> {
    pub function: &'a str,
    /// `--slower-than`, as the user wrote it, e.g. "5ms".
    pub threshold: Option<&'a str>,
    /// Slow calls (with a threshold) or all calls.
    pub calls: u64,
    pub fast_calls: u64,
    /// `--frequency`, for the advice when samples are too few.
    pub hz: u64,
}

/// Rows shown in the culprit table.
pub const TEXT_ROWS: usize = 15;

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The culprit ranking as a table, or why there is none.
pub fn culprit_table(r: &Ranking, c: &Calls) -> String {
    let plural =
        |n: u64, what: &str| format!("{} {what}{}", thousands(n), if n == 1 { "" } else { "s" });
    if !r.enough_samples {
        let which = match c.threshold {
            Some(t) => format!("the {} slower than {t}", plural(c.calls, "call")),
            None => format!("{}'s {}", c.function, plural(c.calls, "call")),
        };
        return format!(
            "Only {} landed in {which}: too few to rank ({MIN_SAMPLES} needed). Sample at a higher --frequency (now {} Hz) or for longer.\n",
            plural(r.samples, "sample"),
            c.hz
        );
    }
    let width = r
        .rows
        .iter()
        .take(TEXT_ROWS)
        .map(|row| row.function.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = match (c.threshold, r.fast_samples) {
        (Some(t), Some(fast)) if fast > 0 => format!(
            "Where the slow calls (> {t}, {}, {}) spent their time, against the fast calls ({}, {}):\n  {:<width$}  {:>7}  {:>7}\n",
            plural(c.calls, "call"),
            plural(r.samples, "sample"),
            plural(c.fast_calls, "call"),
            plural(fast, "sample"),
            "function",
            "slow",
            "fast",
        ),
        (Some(t), _) => format!(
            "Where the slow calls (> {t}, {}, {}) spent their time; no sample landed in the fast calls ({}), so these are shares, not a comparison:\n  {:<width$}  {:>7}\n",
            plural(c.calls, "call"),
            plural(r.samples, "sample"),
            plural(c.fast_calls, "call"),
            "function",
            "share",
        ),
        _ => format!(
            "Where {} spent its time ({}, {}):\n  {:<width$}  {:>7}\n",
            c.function,
            plural(c.calls, "call"),
            plural(r.samples, "sample"),
            "function",
            "share",
        ),
    };
    for row in r.rows.iter().take(TEXT_ROWS) {
        out.push_str(&format!("  {:<width$}  {:>6.1}%", row.function, row.pct));
        if let Some(fast) = row.fast_pct {
            out.push_str(&format!("  {fast:>6.1}%"));
        }
        out.push('\n');
    }
    if r.rows.len() > TEXT_ROWS {
        out.push_str(&format!(
            "  ... {} more (--json lists them all)\n",
            r.rows.len() - TEXT_ROWS
        ));
    }
    if r.omitted > 0 {
        out.push_str(&format!(
            "  ({} under {MIN_SHARE_PCT}% of the samples left out)\n",
            plural(r.omitted as u64, "function")
        ));
    }
    out
}

#[cfg(test)]
#[path = "flamegraph_tests.rs"]
mod tests;
