//! `netlat report --svg`: the heat map alone as a static SVG, for a
//! ticket or a README. Time across, log2 latency up, colour for calls (a
//! log scale, as in Brendan Gregg's latency heat maps), the slow calls as
//! dots; one panel per run, on one time-of-run scale.

use std::fmt::Write as _;

use super::page_data::{PageData, PageRun};
use crate::render::slow::{Zone, duration, wall_clock_rfc3339};

/// Columns drawn at most: windows are summed into them.
const MAX_COLUMNS: usize = 1000;
/// Slow calls drawn at most per run (the rest are counted in the title).
const MAX_DOTS: usize = 5000;
const WIDTH: f64 = 1100.0;
const LEFT: f64 = 70.0;
const PLOT_W: f64 = WIDTH - LEFT - 20.0;
const ROW_H: f64 = 12.0;

/// The log2 row of a bucket: floor(log2) of its midpoint, in ns.
fn row_of(low: u64, high: u64) -> usize {
    let mid = low / 2 + high / 2;
    if mid == 0 { 0 } else { mid.ilog2() as usize }
}

fn row_of_duration(ns: u64) -> usize {
    if ns == 0 { 0 } else { ns.ilog2() as usize }
}

/// Light yellow for one call to dark red for the most.
fn colour(count: u64, max: u64) -> String {
    let f = if max <= 1 {
        1.0
    } else {
        (count as f64).ln() / (max as f64).ln()
    };
    let g = (230.0 - 200.0 * f).round() as u8;
    let b = (150.0 - 150.0 * f).round() as u8;
    format!("rgb(255,{g},{b})")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Seconds into the run: tenths on a short run, whole seconds (as 1h 2m)
/// on a long one.
fn time_label(t_ns: u64, span_ns: u64) -> String {
    if span_ns < 20_000_000_000 {
        format!("{:.1}s", t_ns as f64 / 1e9)
    } else {
        humantime::format_duration(std::time::Duration::from_secs(t_ns / 1_000_000_000)).to_string()
    }
}

pub fn render(data: &PageData) -> String {
    let span_ns = data
        .runs
        .iter()
        .map(|r| r.duration_ns)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut panels = String::new();
    let mut y = 40.0;
    for run in &data.runs {
        y = panel(&mut panels, run, span_ns, y) + 30.0;
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" viewBox="0 0 {WIDTH} {y}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>{panels}</svg>"#,
        WIDTH / 2.0,
        escape(&data.title)
    );
    svg.push('\n');
    svg
}

/// Draws one run's panel with its top at `top`; returns its bottom.
fn panel(out: &mut String, run: &PageRun, span_ns: u64, top: f64) -> f64 {
    let rows: Vec<usize> = run.buckets.iter().map(|b| row_of(b[0], b[1])).collect();
    let dot_rows = run.slow.iter().map(|s| row_of_duration(s.d));
    let (lo, hi) = match rows.iter().copied().chain(dot_rows).fold(None, |acc, r| {
        Some(acc.map_or((r, r), |(a, b): (usize, usize)| (a.min(r), b.max(r))))
    }) {
        Some(range) => range,
        None => {
            let _ = write!(
                out,
                r#"<text x="{LEFT}" y="{}">{}: no calls were recorded</text>"#,
                top + 20.0,
                escape(&run.name)
            );
            return top + 30.0;
        }
    };
    let n_rows = hi - lo + 1;
    let plot_top = top + 20.0;
    let plot_h = n_rows as f64 * ROW_H;
    let bottom = plot_top + plot_h;
    let x_of = |t_ns: u64| LEFT + PLOT_W * (t_ns as f64 / span_ns as f64).min(1.0);
    let y_of = |row: usize| bottom - (row - lo + 1) as f64 * ROW_H;
    // Columns of whole windows (as many per column as keep them under
    // MAX_COLUMNS), each the sum of the windows starting in it.
    let per_column = run.windows.len().div_ceil(MAX_COLUMNS).max(1) as u64;
    let col_ns = run.interval_ns.max(1).saturating_mul(per_column);
    let columns = (span_ns / col_ns + 1) as usize;
    let mut cells = vec![vec![0u64; n_rows]; columns];
    for w in &run.windows {
        let c = ((w.t / col_ns) as usize).min(columns - 1);
        for &[bucket, count] in &w.b {
            if let Some(&row) = rows.get(bucket as usize) {
                cells[c][row - lo] += count;
            }
        }
    }
    let max = cells.iter().flatten().copied().max().unwrap_or(0);
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{}" font-size="12">{} — {} on {} ({}), from {}, {} windows of {}{}</text>"#,
        top + 12.0,
        escape(&run.name),
        escape(&run.function),
        escape(&run.host),
        escape(&run.kernel),
        wall_clock_rfc3339((run.start_unix_ms * 1e6) as u64, Zone::Utc),
        run.windows.len(),
        duration(run.interval_ns),
        if run.slow_only {
            ", slow calls only"
        } else {
            ""
        }
    );
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{plot_top}" width="{PLOT_W}" height="{plot_h}" fill="#f8f8f8" stroke="#999"/>"##
    );
    let cell_w = PLOT_W * col_ns as f64 / span_ns as f64;
    for (c, column) in cells.iter().enumerate() {
        for (r, &count) in column.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let x = x_of(c as u64 * col_ns);
            let _ = write!(
                out,
                r#"<rect x="{x:.2}" y="{:.2}" width="{:.2}" height="{ROW_H}" fill="{}"><title>{count} calls</title></rect>"#,
                y_of(r + lo),
                cell_w.min(LEFT + PLOT_W - x).max(0.5),
                colour(count, max)
            );
        }
    }
    for s in run.slow.iter().take(MAX_DOTS) {
        let _ = write!(
            out,
            r#"<circle cx="{:.2}" cy="{:.2}" r="2.5" fill="none" stroke="black" stroke-width="0.8"/>"#,
            x_of(s.t),
            y_of(row_of_duration(s.d)) + ROW_H / 2.0
        );
    }
    for row in lo..=hi {
        if (row - lo) % 2 == 0 || n_rows < 12 {
            let _ = write!(
                out,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 4.0,
                y_of(row) + ROW_H - 2.0,
                duration(1u64 << row)
            );
        }
    }
    for k in 0..=5u64 {
        let t = span_ns / 5 * k;
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">+{}</text>"#,
            x_of(t),
            bottom + 13.0,
            time_label(t, span_ns)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">time into the run; cells: calls per window and latency row (darker: more, log scale); circles: calls over {}</text>"#,
        LEFT + PLOT_W / 2.0,
        bottom + 27.0,
        run.threshold_ns
            .map_or("the threshold".to_owned(), duration)
    );
    bottom + 30.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::page_data::{PageSlow, PageWindow};

    fn run(windows: Vec<PageWindow>) -> PageRun {
        PageRun {
            name: "run".into(),
            source: "recording",
            function: "net_rx_action".into(),
            backend: "raw_tp".into(),
            host: "h".into(),
            kernel: "6.1".into(),
            cpus: 2,
            netlat_version: "t".into(),
            start_unix_ms: 1.7e12,
            duration_ns: 3_000_000_000,
            interval_ns: 1_000_000_000,
            threshold_ns: Some(1_000_000),
            unit: "us",
            unit_ns: 1000,
            buckets: vec![[1024, 1151], [2_097_152, 2_359_295]],
            windows,
            slow: vec![PageSlow {
                t: 2_100_000_000,
                d: 2_200_000,
                w: 2,
                cpu: 1,
                context: "softirq:NET_RX".into(),
                task: "x 1/1".into(),
                socket: None,
                line: "l".into(),
            }],
            stacks: vec![],
            samples: vec![],
            frequency_hz: 99,
            slow_only: false,
            meta: vec![],
        }
    }

    fn window(t: u64, b: Vec<[u64; 2]>) -> PageWindow {
        let n = b.iter().map(|x| x[1]).sum();
        PageWindow {
            t,
            n,
            sum: 0,
            min: 0,
            max: 0,
            b,
        }
    }

    #[test]
    fn one_cell_per_busy_window_and_row_and_a_dot_per_slow_call() {
        let data = PageData {
            title: "t <&>".into(),
            runs: vec![run(vec![
                window(0, vec![[0, 5]]),
                window(1_000_000_000, vec![]),
                window(2_000_000_000, vec![[0, 1], [1, 1]]),
            ])],
        };
        let svg = render(&data);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("calls</title>").count(), 3);
        assert!(svg.contains("<title>5 calls</title>"));
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("t &lt;&amp;&gt;"));
        // Rows from 1us (1024 ns) up to 2ms, labelled.
        assert!(
            svg.contains(">1.0us<") && svg.contains(">1.049ms<"),
            "{svg}"
        );
    }

    #[test]
    fn an_empty_run_says_so() {
        let mut r = run(vec![]);
        r.buckets.clear();
        r.slow.clear();
        let svg = render(&PageData {
            title: "t".into(),
            runs: vec![r],
        });
        assert!(svg.contains("no calls were recorded"));
    }
}
