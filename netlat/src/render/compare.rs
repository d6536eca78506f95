//! The comparison as a text table: one column per run, ratios to the first.

use std::fmt::Write as _;

use crate::{
    model::compare::{Comparison, Num},
    model::unit::Unit,
    render::histogram::significant,
};

pub fn render(c: &Comparison) -> String {
    // One unit for the whole table, from the first run's median.
    let p50 = c
        .rows
        .iter()
        .find(|r| r.label == "p50")
        .and_then(|r| r.values.first().copied().flatten())
        .map_or(0, Num::as_u64);
    let unit = Unit::for_ns(p50);
    let mut table: Vec<Vec<String>> = vec![
        std::iter::once(String::new())
            .chain(c.runs.iter().cloned())
            .collect(),
    ];
    for row in &c.rows {
        let label = if row.duration {
            format!("{} ({unit})", row.label)
        } else {
            row.label.to_owned()
        };
        let first = row.values.first().copied().flatten().map(Num::as_f64);
        let cells = row.values.iter().enumerate().map(|(i, v)| match v {
            None => "-".to_owned(),
            Some(v) => {
                let shown = if row.duration {
                    unit.of(v.as_u64())
                } else {
                    v.as_f64()
                };
                let value = match (row.label, v) {
                    ("count", Num::Int(n)) => n.to_string(),
                    ("count", Num::Real(x)) => format!("{x:.0}"),
                    _ => significant(shown),
                };
                match first {
                    Some(f) if i > 0 && f > 0.0 => format!("{value} (x{:.2})", v.as_f64() / f),
                    _ => value,
                }
            }
        });
        table.push(std::iter::once(label).chain(cells).collect());
    }
    let mut out = String::new();
    for note in &c.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    if c.functions.iter().any(|f| f != &c.functions[0]) {
        let _ = writeln!(out, "Functions: {}", c.functions.join(" | "));
    }
    write_table(&mut out, &table);
    for e in &c.experiments {
        let _ = writeln!(
            out,
            "\nExperiment: {} {} -> {}",
            e.sysctl, e.before, e.during
        );
    }
    if c.sysctls_differing.is_empty() {
        let _ = writeln!(
            out,
            "\nSysctls: the recorded ones are the same in every run."
        );
    } else {
        let _ = writeln!(out, "\nSysctls that differ:");
        let rows: Vec<Vec<String>> = c
            .sysctls_differing
            .iter()
            .map(|d| {
                std::iter::once(d.sysctl.clone())
                    .chain(
                        d.values
                            .iter()
                            .map(|v| v.clone().unwrap_or_else(|| "(absent)".into())),
                    )
                    .collect()
            })
            .collect();
        write_table(&mut out, &rows);
    }
    if !c.counters.is_empty() {
        let _ = writeln!(out, "\nKernel counters, growth during each run:");
        let rows: Vec<Vec<String>> = c
            .counters
            .iter()
            .map(|k| {
                std::iter::once(k.counter.clone())
                    .chain(
                        k.values
                            .iter()
                            .map(|v| v.map_or("-".into(), |n| n.to_string())),
                    )
                    .collect()
            })
            .collect();
        write_table(&mut out, &rows);
    }
    // Names, sysctls and counters come from the files: nothing in them
    // may reach the terminal as a control sequence.
    out.lines()
        .map(|l| super::printable(l).into_owned() + "\n")
        .collect()
}

/// First column left-aligned, the others right-aligned, two spaces apart.
fn write_table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(line, "{cell:<w$}", w = widths[0]);
            } else {
                let _ = write!(line, "  {cell:>w$}", w = widths[i]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}
