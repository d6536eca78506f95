//! `netlat captures` against capture files written into a temporary
//! directory, and against a tiny HTTP server standing in for serve. No
//! root, no kernel.

mod common;

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::TcpListener,
    path::PathBuf,
};

use common::{
    capture::{T0, capture},
    run,
};
use netlat::recorder::document::{Capture, Listing};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("netlat-captures-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn put(&self, c: &Capture) {
        let path = self.0.join(format!("{}.json", c.id));
        std::fs::write(path, serde_json::to_vec(c).unwrap()).unwrap();
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn one_error_line(out: &common::Output) -> &str {
    assert!(!out.success, "{}", out.stdout);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out.stderr.trim_end()
}

#[test]
fn lists_newest_first_and_shows_one() {
    let dir = Dir::new("list");
    let old = capture(T0, &[6, 9]);
    let new = capture(T0 + 3_600_000_000_000, &[12]);
    dir.put(&old);
    dir.put(&new);
    std::fs::write(dir.0.join("README"), "not a capture").unwrap();

    let out = run(&["captures", "--from", dir.arg(), "--utc"]);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "2026-12-03 04:12:00.123456 net_rx_action slow=1 max=12.000ms culprit=tcp_collapse id={}\n\
             2026-12-03 03:12:00.123456 net_rx_action slow=2 max=9.000ms culprit=tcp_collapse id={}\n",
            new.id, old.id
        )
    );

    let out = run(&["captures", "show", &old.id, "--from", dir.arg(), "--utc"]);
    assert!(out.success, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[1].starts_with("Trigger: net_rx_action >= 5.000ms: the first call started 2026-12-03 03:12:00.123456 and lasted 6.000ms; no slow call missed"), "{}", out.stdout);
    assert_eq!(
        lines[4],
        "2026-12-03 03:12:00.173456    9.000ms cpu=0 ctx=softirq:NET_RX pid=42 tid=42 comm=iperf3"
    );
    assert!(
        lines[5].starts_with("Accounting: the kernel counted 2 calls"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Where the slow calls (> 5ms, 2 calls, 33 samples) spent their time"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("  tcp_collapse "), "{}", out.stdout);
}

#[test]
fn json_round_trips_and_svg_is_svg() {
    let dir = Dir::new("json");
    let c = capture(T0, &[7]);
    dir.put(&c);
    let out = run(&["captures", "show", &c.id, "--from", dir.arg(), "--json"]);
    assert!(out.success, "{}", out.stderr);
    let back: Capture = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(back, c);

    let svg = dir.0.join("out/graph.svg");
    std::fs::create_dir_all(svg.parent().unwrap()).unwrap();
    let out = run(&[
        "captures",
        "show",
        &c.id,
        "--from",
        dir.arg(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(out.success, "{}", out.stderr);
    let text = std::fs::read_to_string(&svg).unwrap();
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&text, options).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(text.contains("net_rx_action calls slower than 5ms"));
}

#[test]
fn bad_ids_and_directories_are_one_line() {
    let dir = Dir::new("bad");
    dir.put(&capture(T0, &[7]));
    for id in ["../etc/passwd", ".hidden", "a/b"] {
        let out = run(&["captures", "show", id, "--from", dir.arg()]);
        assert!(one_error_line(&out).contains("is not a capture id"), "{id}");
    }
    let out = run(&[
        "captures",
        "show",
        "19700101T000000.000000Z-none",
        "--from",
        dir.arg(),
    ]);
    assert!(one_error_line(&out).contains("no capture 19700101T000000.000000Z-none in"));
    let missing = dir.0.join("missing");
    let out = run(&["captures", "--from", missing.to_str().unwrap()]);
    assert!(one_error_line(&out).contains("does not exist"));
    let file = dir.0.join(format!("{}.json", capture(T0, &[7]).id));
    let out = run(&["captures", "--from", file.to_str().unwrap()]);
    assert!(one_error_line(&out).contains("is not a directory"));
    let out = run(&["captures", "--from", "https://127.0.0.1:9435"]);
    assert!(one_error_line(&out).contains("plain HTTP"));
    // An empty store lists nothing and says so.
    let empty = Dir::new("empty");
    let out = run(&["captures", "--from", empty.arg()]);
    assert!(out.success && out.stdout.is_empty(), "{}", out.stderr);
    assert!(out.stderr.contains("no captures in"), "{}", out.stderr);
}

/// Answers each connection once: /captures with `listing`, /captures/ID
/// with `doc`, anything else 404 as serve words it.
fn fake_serve(listing: Vec<Listing>, doc: Capture, connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
            }
            let path = request.split(' ').nth(1).unwrap_or("").to_owned();
            let (status, body) = if path == "/captures" {
                ("200 OK", serde_json::to_vec(&listing).unwrap())
            } else if path == format!("/captures/{}", doc.id) {
                ("200 OK", serde_json::to_vec(&doc).unwrap())
            } else {
                (
                    "404 Not Found",
                    b"no capture with that id: see /captures\n".to_vec(),
                )
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    url
}

#[test]
fn reads_from_a_running_serve() {
    let c = capture(T0, &[6, 9]);
    let url = fake_serve(vec![c.listing()], c.clone(), 3);
    let out = run(&["captures", "--from", &url, "--utc"]);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "2026-12-03 03:12:00.123456 net_rx_action slow=2 max=9.000ms culprit=tcp_collapse id={}\n",
            c.id
        )
    );
    let out = run(&["captures", "show", &c.id, "--from", &url, "--json"]);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(serde_json::from_str::<Capture>(&out.stdout).unwrap(), c);
    let out = run(&[
        "captures",
        "show",
        "19700101T000000.000000Z-x",
        "--from",
        &url,
    ]);
    assert_eq!(
        one_error_line(&out),
        format!(
            "Error: HTTP 404: no capture 19700101T000000.000000Z-x at {url} (netlat captures --from {url} lists them)"
        )
    );
}
