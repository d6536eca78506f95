//! `netlat report` as a user runs it, without root: recordings made by
//! the code (`netlat::timeline::fixture`), a capture and `slow --json`
//! output in; a page and an SVG out; every bad input one line, with no
//! page left behind, half-written or otherwise. The page in a real
//! browser is `report_browser.rs`.

mod common;

use common::run;
use netlat::timeline::fixture;
use netlat_testkit::scratch::Scratch;

fn assert_one_line_error(out: &common::Output, expected: &str) {
    println!("exit {:?}: {}", out.code, out.stderr.trim_end());
    assert!(!out.success, "must fail: {}", out.stdout);
    assert_eq!(out.stderr.lines().count(), 1, "one line:\n{}", out.stderr);
    assert!(out.stderr.starts_with("Error: "), "{}", out.stderr);
    assert!(out.stderr.contains(expected), "expected '{expected}'");
    assert!(!out.stderr.contains("panicked"));
}

fn write(scratch: &Scratch, name: &str, text: &str) -> String {
    let path = scratch.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_recording_becomes_a_page_and_a_heat_map() {
    let scratch = Scratch::new("report-one");
    let (recording, text) = fixture::named("before");
    let rec = write(&scratch, "run.nlat", &text);
    let (html, svg) = (scratch.join("run.html"), scratch.join("heat.svg"));
    let out = run(&[
        "report",
        &rec,
        "-o",
        html.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(out.success, "{}", out.stderr);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"netlat-data\""));
    assert!(page.contains("net_rx_action latency over time: run"));
    // Self-contained: nothing fetched from anywhere.
    for remote in ["src=\"http", "href=\"http", "src=\"//", "@import"] {
        assert!(!page.contains(remote), "{remote}");
    }
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    // The slow calls are the dots.
    assert_eq!(svg.matches("<circle").count(), recording.slow_calls.len());
}

#[test]
fn compare_reads_a_recording_as_a_result() {
    let scratch = Scratch::new("report-compare");
    let (before, text_a) = fixture::named("before");
    let (after, text_b) = fixture::named("after");
    let a = write(&scratch, "before.nlat", &text_a);
    let b = write(&scratch, "after.nlat", &text_b);
    let out = run(&["compare", &a, &b]);
    assert!(out.success, "{}", out.stderr);
    let (ra, rb) = (fixture::result_of(&before), fixture::result_of(&after));
    let count_row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("count"))
        .expect("a count row");
    assert!(
        count_row.contains(&ra.summary.count.to_string())
            && count_row.contains(&rb.summary.count.to_string()),
        "{count_row}"
    );
}

#[test]
fn two_runs_a_capture_and_slow_json_are_read() {
    let scratch = Scratch::new("report-kinds");
    let a = write(&scratch, "before.nlat", &fixture::named("before").1);
    let b = write(&scratch, "after.nlat", &fixture::named("after").1);
    let html = scratch.join("ab.html");
    let out = run(&["report", &a, &b, "-o", html.to_str().unwrap()]);
    assert!(out.success, "{}", out.stderr);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("before vs after"));

    let capture = common::capture::capture(fixture::START_UNIX_NS, &[3, 8, 12]);
    let cap = write(
        &scratch,
        "capture.json",
        &serde_json::to_string(&capture).unwrap(),
    );
    let (recording, _) = fixture::named("one-window");
    let ndjson: String = recording
        .slow_calls
        .iter()
        .map(|c| netlat::render::slow::json_line(c, netlat::render::slow::Zone::Utc))
        .collect();
    let slow = write(&scratch, "slow.ndjson", &ndjson);
    for (input, source) in [(&cap, "\"capture\""), (&slow, "\"slow\"")] {
        let html = scratch.join("k.html");
        let out = run(&["report", input, "-o", html.to_str().unwrap()]);
        assert!(out.success, "{input}: {}", out.stderr);
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.contains(&format!("\"source\":{source}")), "{input}");
    }
}

#[test]
fn bad_input_is_one_line_and_leaves_no_page() {
    let scratch = Scratch::new("report-bad");
    let good = fixture::named("before").1;
    let truncated = write(&scratch, "cut.nlat", &good[..good.len() / 2]);
    let foreign = write(&scratch, "foreign.json", r#"{"hello": 1}"#);
    let newer = write(
        &scratch,
        "newer.nlat",
        &good.replacen("\"format\":1", "\"format\":2", 1),
    );
    let plain = {
        let v: serde_json::Value = serde_json::from_str(&good).unwrap();
        let mut v = v.as_object().unwrap().clone();
        v.remove("recording");
        write(&scratch, "result.json", &serde_json::to_string(&v).unwrap())
    };
    let page = scratch.join("page.html");
    std::fs::write(&page, "the page of an earlier run").unwrap();
    let page_arg = page.to_str().unwrap();
    let cases = [
        (&truncated, "is truncated or not JSON"),
        (
            &foreign,
            "is not a netlat recording, capture or slow --json output",
        ),
        (
            &newer,
            "is a recording of format 2; this netlat reads format 1",
        ),
        (&plain, "a histogram result without its run over time"),
    ];
    for (input, expected) in cases {
        let out = run(&["report", input, "-o", page_arg]);
        assert_one_line_error(&out, expected);
        assert_eq!(
            std::fs::read_to_string(&page).unwrap(),
            "the page of an earlier run",
            "a failed report leaves the old page as it was"
        );
    }
    let out = run(&["report", "/dev/zero", "-o", page_arg]);
    assert_one_line_error(&out, "cannot read /dev/zero: not a regular file");
    let good_path = write(&scratch, "good.nlat", &good);
    let out = run(&["report", &good_path, "-o", "/nonexistent-dir/page.html"]);
    assert_one_line_error(&out, "/nonexistent-dir");
    let out = run(&["report", &good_path]);
    assert_one_line_error(&out, "-o PAGE.html, --svg HEAT.svg");
    let leftovers: Vec<_> = std::fs::read_dir(scratch.join(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp") || n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
