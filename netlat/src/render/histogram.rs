//! The histogram report. As text, in the layout `stap histogram-kernel.stp` users read:
//! a min/avg/max/count line, then a log2 histogram with '@' bars, then
//! percentiles and how the numbers were taken.

use std::fmt::Write as _;

use crate::{
    model::report::{Group, Grouping, HistogramReport, Summary},
    model::unit::Unit,
};

const BAR_WIDTH: usize = 50;

pub fn render(report: &HistogramReport, unit: Unit) -> String {
    let mut out = String::new();
    match &report.per_cpu {
        Some(cpus) => {
            for c in cpus {
                let _ = writeln!(out, "CPU {}:", c.cpu);
                summary(&mut out, &c.summary, unit, &report.function);
                out.push('\n');
            }
            let _ = writeln!(out, "All CPUs:");
            summary(&mut out, &report.summary, unit, &report.function);
        }
        None => summary(&mut out, &report.summary, unit, &report.function),
    }
    if let Some(by) = &report.by {
        groups(&mut out, by, unit, &report.function);
    }
    footer(&mut out, report);
    out
}

/// `--by`: a one-line-per-group table to compare bands at a glance, then
/// each group's own histogram.
fn groups(out: &mut String, by: &Grouping, unit: Unit, function: &str) {
    let u = unit.suffix();
    let _ = writeln!(out, "\nBy {} ({}):", by.key, by.source);
    if by.groups.is_empty() {
        let _ = writeln!(out, "No calls of {function} were seen in this window.");
        return;
    }
    let _ = writeln!(
        out,
        "{:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
        format!("{} band", by.key),
        "count",
        format!("avg({u})"),
        format!("p50({u})"),
        format!("p99({u})"),
        format!("max({u})")
    );
    for g in &by.groups {
        let s = &g.summary;
        let p = |f: fn(&crate::model::report::Percentiles) -> u64| {
            s.percentiles_ns
                .as_ref()
                .map_or("-".to_owned(), |p| significant(unit.of(f(p))))
        };
        let _ = writeln!(
            out,
            "{:>12} {:>10} {:>10} {:>10} {:>10} {:>10}",
            band_name(g),
            s.count,
            significant(unit.of(s.mean_ns.unwrap_or(0.0) as u64)),
            p(|p| p.p50),
            p(|p| p.p99),
            p(|p| p.max)
        );
    }
    for g in &by.groups {
        let _ = writeln!(out, "\n{} {}:", by.key, band_name(g));
        summary(out, &g.summary, unit, function);
    }
}

/// "128K+" reads as "from 128K up to the next band".
fn band_name(g: &Group) -> String {
    match g.low {
        Some(_) => format!("{}+", g.label),
        None => g.label.clone(),
    }
}

fn summary(out: &mut String, s: &Summary, unit: Unit, function: &str) {
    let u = unit.suffix();
    let (min, max) = (s.min_ns.unwrap_or(0), s.max_ns.unwrap_or(0));
    let avg = s.mean_ns.unwrap_or(0.0) as u64;
    let _ = writeln!(
        out,
        "Duration min:{}{u} avg:{}{u} max:{}{u} count:{}",
        unit.whole(min),
        unit.whole(avg),
        unit.whole(max),
        s.count
    );
    if s.count == 0 {
        let _ = writeln!(out, "No calls of {function} were seen in this window.");
        return;
    }
    let _ = writeln!(out, "Duration ({u}):");
    rows_and_percentiles(out, s, unit);
}

/// The log2 rows, then the percentiles line: what follows a summary line
/// in every report that prints a latency histogram.
pub fn rows_and_percentiles(out: &mut String, s: &Summary, unit: Unit) {
    histogram_rows(out, s, unit);
    if let Some(p) = &s.percentiles_ns {
        let values: Vec<String> = p
            .labelled()
            .iter()
            .map(|(label, ns)| format!("{label}:{}", significant(unit.of(*ns))))
            .collect();
        let _ = writeln!(out, "Percentiles ({}): {}", unit.suffix(), values.join(" "));
    }
}

/// Row `k` of the table: row 0 is [0, 1) units, row k >= 1 is [2^(k-1), 2^k).
fn row_of(value_in_units: f64) -> usize {
    if value_in_units < 1.0 {
        0
    } else {
        value_in_units.log2().floor() as usize + 1
    }
}

fn row_label(row: usize) -> u64 {
    if row == 0 { 0 } else { 1u64 << (row - 1) }
}

/// Folds the kernel's nanosecond buckets into log2 rows of `unit`. A bucket
/// goes to the row of its midpoint: exact for ns, and for us/ms a bucket that
/// straddles a row boundary (at most one per row, ~19% wide) lands whole in
/// one neighbour. `--json` keeps the exact nanosecond buckets.
fn fold_rows(s: &Summary, unit: Unit) -> Vec<u64> {
    let mut rows = vec![0u64; 66];
    for b in &s.buckets {
        let mid = b.low_ns + (b.high_ns - b.low_ns) / 2;
        let row = row_of(unit.of(mid)).min(rows.len() - 1);
        rows[row] += b.count;
    }
    rows
}

pub(crate) fn histogram_rows(out: &mut String, s: &Summary, unit: Unit) {
    let rows = fold_rows(s, unit);
    let first = rows.iter().position(|&c| c > 0).unwrap_or(0);
    let last = rows.iter().rposition(|&c| c > 0).unwrap_or(0);
    // Like stap: every row between the extremes, plus one empty row after.
    let shown = first..=(last + 1).min(rows.len() - 1);
    let peak = rows.iter().copied().max().unwrap_or(1).max(1);
    let label_width = row_label(*shown.end()).to_string().len().max(5);
    let count_width = peak.to_string().len();
    let _ = writeln!(
        out,
        "{:>label_width$} |{} count",
        "value",
        "-".repeat(BAR_WIDTH)
    );
    for row in shown {
        let count = rows[row];
        // Round up so a non-empty row never looks empty.
        let bar = (count as u128 * BAR_WIDTH as u128).div_ceil(peak as u128) as usize;
        let _ = writeln!(
            out,
            "{:>label_width$} |{:<BAR_WIDTH$} {:>count_width$}",
            row_label(row),
            "@".repeat(bar),
            count
        );
    }
}

fn footer(out: &mut String, r: &HistogramReport) {
    let cpu = r.cpu.map(|c| format!(", CPU {c} only")).unwrap_or_default();
    let _ = writeln!(
        out,
        "Backend: {}; window {:.2} s from {}{cpu}",
        r.backend_detail,
        r.window_ns as f64 / 1e9,
        r.start
    );
    let s = &r.summary;
    if s.unmatched_exits > 0 || s.dropped_entries > 0 {
        let _ = writeln!(
            out,
            "Not timed: {} exits without a seen entry (calls in flight at attach, or entries the kernel skipped), {} entries dropped (nesting or thread table full)",
            s.unmatched_exits, s.dropped_entries
        );
    }
    if s.mismatched_exits > 0 {
        let _ = writeln!(
            out,
            "Not timed: {} nested calls the kernel saw only half of (its per-program recursion guard skipped their entry or exit); paired by call, not by position, so no other call was mis-timed",
            s.mismatched_exits
        );
    }
    if let Some(c) = &r.conditions {
        conditions(out, c);
    }
    if let Some(n) = r.unfinished_calls.filter(|&n| n > 0) {
        let _ = writeln!(
            out,
            "Unfinished: {n} calls had no exit when the probes came off (still running, or exits the kernel did not report, e.g. missed kretprobes)"
        );
    }
    if let Some(m) = &r.missed {
        missed(out, m);
    }
}

/// Always printed in a final report, zeros included: a count the kernel
/// does not keep says so rather than reading as 0.
fn missed(out: &mut String, m: &crate::model::report::Missed) {
    let mut line = format!(
        "Missed by the kernel: program runs skipped (recursion_misses) {}",
        m.program_runs
    );
    if let Some(hits) = m.kprobe_hits {
        let _ = write!(
            line,
            "; kprobe hits missed (kretprobes without a free instance: exits never seen) {hits}"
        );
    }
    let _ = writeln!(out, "{line}");
}

fn conditions(out: &mut String, c: &crate::model::report::Conditions) {
    let sysctls: Vec<String> = c
        .sysctls_start
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("(absent)")))
        .collect();
    let _ = writeln!(out, "Sysctls: {}", sysctls.join("; "));
    let changed: Vec<&String> = c
        .sysctls_start
        .iter()
        .filter(|(k, v)| c.sysctls_end.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    if !changed.is_empty() {
        let names: Vec<&str> = changed.iter().map(|k| k.as_str()).collect();
        let _ = writeln!(out, "Changed during the run: {}", names.join(", "));
    }
    let mut counters: Vec<String> = c
        .netstat_delta
        .iter()
        .map(|(k, v)| format!("{k} +{v}"))
        .collect();
    let sum = |f: fn(&crate::model::softnet::SoftnetRow) -> u64| -> u64 {
        c.softnet_delta.iter().map(f).sum()
    };
    counters.push(format!(
        "softnet processed +{} dropped +{} time_squeeze +{}",
        sum(|r| r.processed),
        sum(|r| r.dropped),
        sum(|r| r.time_squeeze)
    ));
    let _ = writeln!(out, "Kernel counters over the run: {}", counters.join(", "));
}

/// Three significant digits, without a trailing ".00" on large values.
pub fn significant(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// `--json`: pretty for a single result; one compact line per report for
/// `--interval`, so the stream can be read as JSON lines.
pub fn json(report: &HistogramReport, compact: bool) -> String {
    let text = if compact {
        serde_json::to_string(report)
    } else {
        serde_json::to_string_pretty(report)
    };
    // Serializing plain numbers and strings cannot fail.
    text.expect("report serializes") + "\n"
}

#[cfg(test)]
#[path = "histogram_tests.rs"]
mod tests;
