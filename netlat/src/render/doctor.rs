//! `netlat doctor`'s report: as text for people (one headline per check,
//! the numbers behind it, then what to try) and as JSON for machines (the
//! same facts). Pure, so tests compare whole outputs.

use std::fmt::Write as _;

use crate::doctor::checks::{Check, Report, Value, Verdict};

fn label(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "[ok]",
        Verdict::Warn => "[WARN]",
        Verdict::Problem => "[PROBLEM]",
        Verdict::Unavailable => "[n/a]",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The headline: what was measured and how it went.
pub fn heading(report: &Report) -> String {
    let mut parts = Vec::new();
    for (v, one, many) in [
        (Verdict::Problem, "problem", "problems"),
        (Verdict::Warn, "warning", "warnings"),
        (Verdict::Unavailable, "unavailable", "unavailable"),
    ] {
        let n = report.count(v);
        if n > 0 {
            parts.push(plural(n, one, many));
        }
    }
    format!(
        "netlat doctor: {} over {:.1} s: {}",
        plural(report.checks.len(), "check", "checks"),
        report.window_secs,
        if parts.is_empty() {
            "all ok".to_owned()
        } else {
            parts.join(", ")
        }
    )
}

/// One line per check, as `--watch` prints it every interval.
pub fn summary_line(check: &Check) -> String {
    format!(
        "{:<10}{}: {}",
        label(check.verdict),
        check.title,
        check.summary
    )
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Rate { delta, per_sec } => format!("{delta:>10}  {per_sec:.1}/s"),
        Value::Count { value } => format!("{value:>10}"),
        Value::Setting { value: Some(s) } => format!("{s:>10}"),
        Value::Setting { value: None } => "(not on this kernel)".into(),
        Value::Percent { value } => format!("{value:>9.1}%"),
        Value::Wait {
            p99_ns,
            max_ns,
            count,
            total_ns,
        } => format!(
            "{:>10}  p99, max {} over {count} raises, {} in all",
            super::slow::duration(*p99_ns),
            super::slow::duration(*max_ns),
            super::slow::duration(*total_ns)
        ),
        Value::Absent { why } => format!("(absent: {why})"),
    }
}

pub fn render(report: &Report) -> String {
    let mut out = heading(report);
    out.push('\n');
    // One column of values for the whole report reads like a table.
    let width = report
        .checks
        .iter()
        .flat_map(|c| &c.evidence)
        .map(|e| e.name.chars().count())
        .max()
        .unwrap_or(0);
    for check in &report.checks {
        out.push('\n');
        out.push_str(&summary_line(check));
        out.push('\n');
        for e in &check.evidence {
            // A String never fails to take a write.
            let _ = writeln!(out, "    {:<width$}  {}", e.name, value_text(&e.value));
        }
        for s in &check.suggestions {
            let _ = writeln!(out, "    -> {s}");
        }
    }
    out
}

/// `--watch`: one interval's headline lines under a time stamp.
pub fn render_watch(report: &Report, stamp: &str) -> String {
    let mut out = format!("--- {stamp} ({:.1} s)\n", report.window_secs);
    for check in &report.checks {
        out.push_str(&summary_line(check));
        out.push('\n');
    }
    out
}

/// Pretty JSON for one report.
pub fn json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// One line per report (JSON Lines), for `--watch`.
pub fn json_line(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string(report)
}
