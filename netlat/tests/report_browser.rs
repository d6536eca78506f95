//! `netlat report`'s page in a real headless Chromium: it opens without a
//! console error, its heat map holds exactly the fixture's counts, a drag
//! over the map selects the windows under the dragged pixels and prints
//! their histogram exactly as `rows_and_percentiles` does, the flame graph
//! and culprit ranking of the range are the ones `flamegraph --slower-than`
//! would give, and two runs are compared as `netlat compare` prints them.
//!
//! Each fixture is a recording file made by netlat's own fixture code;
//! the page is what the `netlat report` binary writes from it.

mod common;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use common::browser::Browser;
use netlat::{
    flamegraph::culprit,
    model::{histogram::Histogram, report::Summary, unit::Unit},
    render,
    timeline::{
        build, fixture, input,
        page_data::{PageData, PageRun},
    },
};
use netlat_common::buckets;
use netlat_testkit::scratch::Scratch;
use serde_json::Value;

// ---- Fixtures: recordings written by netlat's own fixture code
// (`netlat::timeline::fixture`), made into pages by the `netlat report`
// binary; what the checks expect comes from the same files, read and
// built by the library.

const SECOND: u64 = 1_000_000_000;

struct Fixture {
    dir: Scratch,
    files: Vec<PathBuf>,
    data: PageData,
}

fn fixture_of(files: &[(String, String)]) -> Fixture {
    let dir = Scratch::new("report-fixture");
    let files: Vec<PathBuf> = files
        .iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    let loaded: Vec<_> = files
        .iter()
        .map(|f| input::load(f).expect("a fixture reads back"))
        .collect();
    Fixture {
        data: build::page_data(&loaded),
        files,
        dir,
    }
}

fn recording(name: &str) -> Fixture {
    fixture_of(&[(format!("{name}.nlat"), fixture::named(name).1)])
}

fn fixture_empty() -> Fixture {
    recording("empty")
}

fn fixture_one_window() -> Fixture {
    recording("one-window")
}

fn fixture_day() -> Fixture {
    recording("day")
}

fn fixture_two_runs() -> Fixture {
    fixture_of(&[
        ("before.nlat".into(), fixture::named("before").1),
        ("after.nlat".into(), fixture::named("after").1),
    ])
}

/// `netlat slow --json` output of the one-window run's slow calls.
fn fixture_slow_json() -> Fixture {
    let (recording, _) = fixture::named("one-window");
    let lines: String = recording
        .slow_calls
        .iter()
        .map(|c| render::slow::json_line(c, render::slow::Zone::Utc))
        .collect();
    fixture_of(&[("slow.ndjson".into(), lines)])
}

// ---- What the page should show, computed with netlat's own Rust.

fn heat_row(low: u64, high: u64) -> u64 {
    let mid = low + (high - low) / 2;
    if mid == 0 {
        0
    } else {
        63 - u64::from(mid.leading_zeros())
    }
}

/// [window, row, calls] of every non-empty cell, window by window.
fn expected_cells(run: &PageRun) -> Vec<[u64; 3]> {
    let mut out = Vec::new();
    for (i, w) in run.windows.iter().enumerate() {
        let mut rows = BTreeMap::new();
        for [k, c] in &w.b {
            let [lo, hi] = run.buckets[*k as usize];
            *rows.entry(heat_row(lo, hi)).or_insert(0) += c;
        }
        out.extend(rows.into_iter().map(|(r, c)| [i as u64, r, c]));
    }
    out
}

/// The windows' calls merged as netlat merges histograms.
fn merged(run: &PageRun, first: usize, last: usize) -> Histogram {
    let windows: Vec<Histogram> = run.windows[first..=last]
        .iter()
        .map(|w| {
            let mut h = Histogram {
                count: w.n,
                sum_ns: w.sum,
                min_ns: w.min,
                max_ns: w.max,
                ..Histogram::default()
            };
            for [k, c] in &w.b {
                h.buckets[buckets::index(run.buckets[*k as usize][0])] += c;
            }
            h
        })
        .collect();
    Histogram::merged(&windows)
}

fn histogram_text(run: &PageRun, first: usize, last: usize) -> String {
    let mut out = String::new();
    let unit: Unit = run.unit.parse().unwrap();
    render::histogram::rows_and_percentiles(
        &mut out,
        &Summary::from(&merged(run, first, last)),
        unit,
    );
    out
}

fn culprit_text(run: &PageRun, first: usize, last: usize) -> String {
    let (mut slow, mut fast) = (BTreeMap::new(), BTreeMap::new());
    for [w, stack, s, f] in &run.samples {
        if (*w as usize) < first || *w as usize > last {
            continue;
        }
        let name = &run.stacks[*stack as usize];
        for (map, n) in [(&mut slow, *s), (&mut fast, *f)] {
            if n > 0 {
                *map.entry(name.clone()).or_insert(0) += n;
            }
        }
    }
    let ranking = culprit::rank(&slow, Some(&fast), &run.function);
    let calls = run
        .slow
        .iter()
        .filter(|s| (first..=last).contains(&s.w))
        .count() as u64;
    let all: u64 = run.windows[first..=last].iter().map(|w| w.n).sum();
    let threshold =
        humantime::format_duration(Duration::from_nanos(run.threshold_ns.unwrap())).to_string();
    render::flamegraph::culprit_table(
        &ranking,
        &render::flamegraph::Calls {
            function: &run.function,
            threshold: Some(&threshold),
            calls,
            fast_calls: all - calls,
            hz: run.frequency_hz,
        },
    )
}

// ---- Driving the page.

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts")
}

struct Opened {
    browser: Browser,
    _dir: Scratch,
    load_ms: f64,
}

fn open(name: &str, fixture: &Fixture) -> Opened {
    let dir = Scratch::new("report-page");
    let path = dir.join(&format!("{name}.html"));
    let mut args: Vec<&str> = vec!["report"];
    args.extend(fixture.files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["-o", path.to_str().unwrap()]);
    let out = common::run(&args);
    assert!(out.success, "{name}: netlat report failed: {}", out.stderr);
    let _ = &fixture.dir;
    let mut browser = Browser::launch();
    let started = Instant::now();
    browser.open(
        &format!("file://{}", path.display()),
        Duration::from_secs(60),
    );
    let load_ms = browser
        .evaluate("window.netlatReport.loadMs")
        .as_f64()
        .unwrap();
    eprintln!(
        "{name}: the page says it painted after {load_ms:.0} ms ({} ms until the test saw it)",
        started.elapsed().as_millis()
    );
    assert_eq!(
        browser.take_errors(),
        Vec::<String>::new(),
        "{name}: console errors"
    );
    Opened {
        browser,
        _dir: dir,
        load_ms,
    }
}

fn text(b: &mut Browser, id: &str) -> String {
    b.evaluate(&format!("document.getElementById({id:?}).textContent"))
        .as_str()
        .unwrap_or_else(|| panic!("no #{id}"))
        .to_owned()
}

fn cells(b: &mut Browser, run: usize) -> Vec<[u64; 3]> {
    let v = b.evaluate(&format!("window.netlatReport.cells({run})"));
    serde_json::from_value(v).expect("cells are [window, row, count]")
}

fn windows_of(v: &Value) -> Option<(usize, usize)> {
    let w = v.as_array()?;
    Some((w[0].as_u64()? as usize, w[1].as_u64()? as usize))
}

/// Drags over the fractions `from`..`to` of run `run`'s plot; returns the
/// windows each run should then select: those whose time overlaps the
/// pixel columns under the drag.
fn drag(
    b: &mut Browser,
    data: &PageData,
    run: usize,
    from: f64,
    to: f64,
) -> Vec<Option<(usize, usize)>> {
    let g = b.evaluate(&format!("window.netlatReport.geometry({run})"));
    let f = |k: &str| g[k].as_f64().unwrap();
    let (left, top, width, height, scale) =
        (f("left"), f("top"), f("width"), f("height"), f("scale_ns"));
    let x0 = (left + width * from).round();
    let x1 = (left + width * to).round();
    let y = (top + height / 2.0).round();
    b.drag(x0, y, x1, y + 3.0);
    let column = |x: f64| (x - left).floor().clamp(0.0, width - 1.0);
    let (c0, c1) = (column(x0), column(x1));
    let (start, end) = (
        (c0 * scale / width).floor(),
        ((c1 + 1.0) * scale / width).floor(),
    );
    let sel = b.evaluate("window.netlatReport.selection()");
    assert_eq!(sel["selected"], Value::Bool(true), "{sel}");
    assert_eq!(sel["start_ns"].as_f64().unwrap(), start, "{sel}");
    assert_eq!(sel["end_ns"].as_f64().unwrap(), end, "{sel}");
    data.runs
        .iter()
        .map(|r| {
            let under: Vec<usize> = r
                .windows
                .iter()
                .enumerate()
                .filter(|(_, w)| ((w.t + r.interval_ns) as f64) > start && (w.t as f64) < end)
                .map(|(i, _)| i)
                .collect();
            Some((*under.first()?, *under.last()?))
        })
        .collect()
}

fn flame_frames(b: &mut Browser, id: &str) -> Vec<String> {
    let v = b.evaluate(&format!(
        "[...document.querySelectorAll('#{id} g')].map(g => g.dataset.frame)"
    ));
    serde_json::from_value(v).unwrap()
}

/// The map's cells, then a drag's histogram, slow calls, flame graph and
/// culprits, then clearing: the checks every non-empty fixture gets.
fn check_run_page(name: &str, fixture: &Fixture, from: f64, to: f64) -> Opened {
    let data = &fixture.data;
    let mut page = open(name, fixture);
    let b = &mut page.browser;
    let run = &data.runs[0];
    assert!(
        cells(b, 0) == expected_cells(run),
        "{name}: the heat map's cells differ from the fixture's"
    );
    let whole = histogram_text(run, 0, run.windows.len() - 1);
    assert_eq!(text(b, "histogram-0"), whole, "{name}: whole run");

    let expected = drag(b, data, 0, from, to);
    let sel = b.evaluate("window.netlatReport.selection()");
    let (first, last) = expected[0].expect("the drag covers windows");
    assert_eq!(
        windows_of(&sel["windows"]),
        Some((first, last)),
        "{name}: {sel}"
    );
    assert_eq!(
        text(b, "histogram-0"),
        histogram_text(run, first, last),
        "{name}: windows {first}..={last}"
    );
    let frames = flame_frames(b, "flamegraph");
    for frame in ["net_rx_action", "tcp_collapse"] {
        assert!(
            frames.iter().any(|f| f == frame),
            "{name}: no {frame} in the flame graph: {frames:?}"
        );
    }
    assert_eq!(
        text(b, "culprits"),
        culprit_text(run, first, last),
        "{name}: culprits"
    );
    let culprits = text(b, "culprits");
    let top = culprits.lines().nth(2).unwrap_or_default();
    assert!(
        top.trim_start().starts_with("tcp_collapse"),
        "{name}: {culprits}"
    );
    let slow_rows = b.evaluate("document.querySelectorAll('#slow-table tbody tr').length");
    let in_range = run
        .slow
        .iter()
        .filter(|s| (first..=last).contains(&s.w))
        .count();
    assert_eq!(
        slow_rows.as_u64(),
        Some(in_range.min(500) as u64),
        "{name}: slow calls listed"
    );
    b.screenshot(&artifacts().join(format!("report-{name}.png")));

    b.key("Escape", 27);
    let sel = b.evaluate("window.netlatReport.selection()");
    assert_eq!(
        sel["selected"],
        Value::Bool(false),
        "{name}: Escape clears: {sel}"
    );
    assert_eq!(
        windows_of(&sel["windows"]),
        Some((0, run.windows.len() - 1))
    );
    assert_eq!(text(b, "histogram-0"), whole, "{name}: after Escape");
    // And the button does the same.
    drag(b, data, 0, from, to);
    b.evaluate("document.getElementById('clear-selection').click()");
    assert_eq!(
        text(b, "histogram-0"),
        whole,
        "{name}: after clear-selection"
    );
    check_hover(b, run);
    let meta = text(b, "meta");
    assert!(
        meta.contains("net.core.netdev_budget") && meta.contains("testhost"),
        "{meta}"
    );
    assert_eq!(
        b.take_errors(),
        Vec::<String>::new(),
        "{name}: console errors"
    );
    page
}

/// Hovering the longest slow call's point shows its line; hovering a cell
/// shows its time, latency range and count.
fn check_hover(b: &mut Browser, run: &PageRun) {
    let g = b.evaluate("window.netlatReport.geometry(0)");
    let f = |k: &str| g[k].as_f64().unwrap();
    let longest = run.slow.iter().max_by_key(|s| s.d).expect("a slow call");
    let x = f("left") + longest.t as f64 / f("scale_ns") * f("width");
    // The points' scale: row r spans [r, r + 1) of log2(ns), top row first.
    let y =
        (f("top") + (f("row_max") + 1.0 - (longest.d as f64).log2()) * f("cell_h")).max(f("top"));
    b.mouse_move(x, y);
    assert_eq!(
        text(b, "tooltip"),
        longest.line,
        "hovering the slow call at ({x}, {y})"
    );
    // The bottom row of the first window's column: the fastest calls.
    let cells = expected_cells(run);
    let [w, row, count] = cells[0];
    let x = f("left") + (w * run.interval_ns) as f64 / f("scale_ns") * f("width") + 0.5;
    let y = f("top") + (f("row_max") - row as f64 + 0.5) * f("cell_h");
    b.mouse_move(x, y);
    let tip = text(b, "tooltip");
    assert!(tip.contains("into the run"), "{tip}");
    if run.windows.len() <= 1_000 {
        let calls = if count == 1 { "call" } else { "calls" };
        assert!(
            tip.ends_with(&format!(": {count} {calls}")),
            "window {w} row {row}: {tip}"
        );
    }
    b.mouse_move(0.0, 0.0);
}

#[test]
fn an_empty_run_says_so() {
    let mut page = open("empty", &fixture_empty());
    let b = &mut page.browser;
    let body = b
        .evaluate("document.body.innerText")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        body.contains("This run has no windows: nothing was recorded."),
        "{body}"
    );
    assert_eq!(
        b.evaluate("document.getElementById('heatmap-0')"),
        Value::Null
    );
    assert!(cells(b, 0).is_empty());
    b.screenshot(&artifacts().join("report-empty.png"));
    // `slow --json` input: the map is of the slow calls alone, and says so.
    let mut page = open("slow-only", &fixture_slow_json());
    let body = page
        .browser
        .evaluate("document.body.innerText")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(body.contains("the map counts those calls alone"), "{body}");
    // A run with windows but no call says that instead.
    let quiet = recording("quiet");
    let mut page = open("no-calls", &quiet);
    let body = page
        .browser
        .evaluate("document.body.innerText")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        body.contains("No calls of net_rx_action were seen during this run"),
        "{body}"
    );
}

#[test]
fn one_window() {
    check_run_page("one-window", &fixture_one_window(), 0.0, 0.9);
}

#[test]
fn a_day_of_one_second_windows() {
    let day = fixture_day();
    // The spikes sit at 44-46% of the day.
    let page = check_run_page("day", &day, 0.43, 0.47);
    println!(
        "86,400 windows: the page painted after {:.0} ms",
        page.load_ms
    );
    assert!(
        page.load_ms < 20_000.0,
        "{} ms to paint 86,400 windows",
        page.load_ms
    );
}

/// The table `netlat compare` would print for the two runs' selections.
fn compare_text(data: &PageData, ranges: &[Option<(usize, usize)>]) -> Vec<Vec<String>> {
    use netlat::model::{compare, report::HistogramReport};
    let runs: Vec<compare::Named> = data
        .runs
        .iter()
        .zip(ranges)
        .map(|(r, range)| {
            let (h, windows) = match range {
                Some((a, b)) => (merged(r, *a, *b), (b - a + 1) as u64),
                None => (Histogram::default(), 0),
            };
            let report = HistogramReport {
                schema: netlat::model::report::SCHEMA_VERSION,
                function: r.function.clone(),
                backend: r.backend.clone(),
                backend_detail: String::new(),
                host: r.host.clone(),
                kernel: r.kernel.clone(),
                cpus: r.cpus,
                start: String::new(),
                window_ns: windows * r.interval_ns,
                cpu: None,
                summary: Summary::from(&h),
                unfinished_calls: None,
                per_cpu: None,
                conditions: None,
                by: None,
                windows: None,
                missed: None,
                experiment: None,
            };
            compare::Named {
                name: r.name.clone(),
                report,
            }
        })
        .collect();
    let text = render::compare::render(&compare::compare(&runs));
    // The table is the first block; its columns are two spaces apart.
    text.lines()
        .take_while(|l| !l.is_empty())
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[test]
fn two_runs_on_one_time_scale() {
    let fixture = fixture_two_runs();
    let data = &fixture.data;
    let mut page = open("two-runs", &fixture);
    let b = &mut page.browser;
    for (i, run) in data.runs.iter().enumerate() {
        assert!(
            cells(b, i) == expected_cells(run),
            "run {i}: the heat map's cells differ"
        );
    }
    // The longer run sets the scale: both maps are as wide.
    let g0 = b.evaluate("window.netlatReport.geometry(0)");
    let g1 = b.evaluate("window.netlatReport.geometry(1)");
    assert_eq!(g0["scale_ns"], g1["scale_ns"]);
    assert_eq!(g0["scale_ns"].as_f64(), Some(600.0 * SECOND as f64));
    // Dragging on the second map selects the same time in both.
    let expected = drag(b, data, 1, 0.38, 0.55);
    let sel = b.evaluate("window.netlatReport.selection()");
    for (i, run) in data.runs.iter().enumerate() {
        let got = windows_of(&sel["runs"][i]);
        assert_eq!(got, expected[i], "run {i}: {sel}");
        let (first, last) = got.unwrap();
        assert_eq!(
            text(b, &format!("histogram-{i}")),
            histogram_text(run, first, last),
            "run {i}"
        );
    }
    let table: Vec<Vec<String>> = serde_json::from_value(b.evaluate(
        "[...document.querySelectorAll('#compare tr')].map(tr => [...tr.children].map(c => c.textContent).filter(t => t !== ''))",
    ))
    .unwrap();
    assert_eq!(table, compare_text(data, &expected));
    assert!(
        table.iter().any(|row| row.iter().any(|c| c.contains("(x"))),
        "{table:?}"
    );
    let (first, last) = expected[0].unwrap();
    assert_eq!(
        text(b, "culprits"),
        culprit_text(&data.runs[0], first, last)
    );
    b.screenshot(&artifacts().join("report-two-runs.png"));
    assert_eq!(b.take_errors(), Vec::<String>::new());
}

/// Stack -> samples, as `culprit::rank` takes them.
type Folded = BTreeMap<String, u64>;

/// The page's ports of `significant` and of the culprit table, fed cases
/// the fixtures do not reach: exact rounding ties (Rust rounds them to
/// even, JavaScript's toFixed up), no fast-call sample, no threshold, too
/// few samples.
#[test]
fn the_ported_formatting_and_ranking_match_the_rust() {
    let mut page = open("one-window-ports", &fixture_one_window());
    let b = &mut page.browser;
    let values = [
        0.125, 0.5, 1.005, 2.5, 9.995, 12.25, 12.35, 99.95, 100.5, 101.5, 1800000.0, 0.0,
    ];
    let got: Vec<String> =
        serde_json::from_value(b.evaluate(&format!("{values:?}.map(v => significant(v))")))
            .unwrap();
    let want: Vec<String> = values
        .iter()
        .map(|&v| render::histogram::significant(v))
        .collect();
    assert_eq!(got, want);

    let mut tail = vec![
        ("net_rx_action;tcp_v4_rcv;tcp_collapse".to_owned(), 9_000u64),
        ("net_rx_action;tcp_v4_rcv".to_owned(), 900),
    ];
    for i in 0..100 {
        tail.push((format!("net_rx_action;rare_{i:03}"), 1));
    }
    let tail: BTreeMap<String, u64> = tail.into_iter().collect();
    let few: BTreeMap<String, u64> = [("net_rx_action;tcp_collapse".to_owned(), 7)].into();
    let mixed: BTreeMap<String, u64> = [
        ("net_rx_action;tcp_v4_rcv".to_owned(), 30),
        ("net_rx_action;tcp_v4_rcv;tcp_collapse".to_owned(), 10),
        ("net_rx_action".to_owned(), 10),
        ("net_rx_action;f;g;f".to_owned(), 49),
    ]
    .into();
    let empty = BTreeMap::new();
    let cases: [(&Folded, Option<&Folded>, Option<&str>); 4] = [
        (&tail, Some(&empty), Some("1ms")),
        (&few, Some(&empty), Some("1ms")),
        (&mixed, None, None),
        (&mixed, Some(&tail), Some("5ms")),
    ];
    for (slow, fast, threshold) in cases {
        let want = render::flamegraph::culprit_table(
            &culprit::rank(slow, fast, "net_rx_action"),
            &render::flamegraph::Calls {
                function: "net_rx_action",
                threshold,
                calls: 1234,
                fast_calls: 92_410,
                hz: 999,
            },
        );
        let js_map = |m: &BTreeMap<String, u64>| {
            serde_json::to_string(&m.iter().collect::<Vec<_>>()).unwrap()
        };
        let got = b.evaluate(&format!(
            "culpritTable(rank(new Map({}), {}, 'net_rx_action'), {{function: 'net_rx_action', threshold: {}, calls: 1234, fastCalls: 92410, hz: 999}})",
            js_map(slow),
            fast.map_or("null".to_owned(), |f| format!("new Map({})", js_map(f))),
            threshold.map_or("null".to_owned(), |t| format!("{t:?}")),
        ));
        assert_eq!(got.as_str(), Some(want.as_str()), "threshold {threshold:?}");
    }
    assert_eq!(b.take_errors(), Vec::<String>::new());
}
