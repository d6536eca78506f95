//! `netlat doctor`: the checklist from fixture trees (no root, no kernel),
//! and for real in network namespaces the tests create and delete.

mod common;

use std::{
    fs::File,
    io::{BufRead as _, BufReader},
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use common::{BIN, skip};
use netlat::{
    doctor::{Report, Value, Verdict, evaluate, sample},
    render::doctor as text,
    system::procfs::Root,
};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Compares with a stored rendering; `UPDATE_SNAPSHOTS=1` rewrites it.
fn assert_snapshot(name: &str, actual: &str) {
    let path = fixture(&format!("doctor/{name}"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1)", path.display()));
    assert!(
        expected == actual,
        "{name} differs from the snapshot (UPDATE_SNAPSHOTS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

fn busy_report() -> Report {
    let before = sample::take(&Root::under(&fixture("doctor/busy/before")));
    let after = sample::take(&Root::under(&fixture("doctor/busy/after")));
    evaluate(&before, &after, Duration::from_secs(5))
}

fn rate(report: &Report, check: &str, name: &str) -> Option<u64> {
    report
        .check(check)?
        .evidence
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| match e.value {
            Value::Rate { delta, .. } => Some(delta),
            Value::Count { value } => Some(value),
            _ => None,
        })
}

fn verdict(report: &Report, check: &str) -> Verdict {
    report
        .check(check)
        .unwrap_or_else(|| panic!("no check {check}"))
        .verdict
}

#[test]
fn busy_host_fixture_flags_every_check() {
    let r = busy_report();
    let ids: Vec<&str> = r.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "softnet",
            "listen_queues",
            "receive_buffers",
            "retransmits",
            "irq_spread",
            "connections",
            "interfaces"
        ]
    );
    // softnet: 50 drops on CPU0, 100 squeezes in 5 s.
    assert_eq!(verdict(&r, "softnet"), Verdict::Problem);
    assert_eq!(rate(&r, "softnet", "dropped"), Some(50));
    assert_eq!(rate(&r, "softnet", "CPU0 time_squeeze"), Some(100));
    let softnet = r.check("softnet").unwrap();
    assert!(
        softnet
            .suggestions
            .iter()
            .any(|s| s.contains("net.core.netdev_max_backlog=2048 (now 1000)")),
        "{:?}",
        softnet.suggestions
    );
    assert!(
        softnet
            .suggestions
            .iter()
            .any(|s| s.contains("net.core.netdev_budget=600 (now 300)"))
    );
    assert_eq!(verdict(&r, "listen_queues"), Verdict::Problem);
    assert_eq!(rate(&r, "listen_queues", "ListenOverflows"), Some(12));
    // Prunes and collapses but nothing thrown away: a warning, pointing at
    // the histogram of tcp_collapse.
    assert_eq!(verdict(&r, "receive_buffers"), Verdict::Warn);
    assert_eq!(rate(&r, "receive_buffers", "TCPRcvCollapsed"), Some(4800));
    assert!(
        r.check("receive_buffers")
            .unwrap()
            .suggestions
            .iter()
            .any(|s| s.contains("netlat histogram tcp_collapse"))
    );
    // 200 of 10000 segments retransmitted: 2%.
    assert_eq!(verdict(&r, "retransmits"), Verdict::Problem);
    // Every ens5 queue interrupt landed on CPU0.
    assert_eq!(verdict(&r, "irq_spread"), Verdict::Warn);
    assert_eq!(rate(&r, "irq_spread", "ens5 on CPU0"), Some(44000));
    assert_eq!(rate(&r, "irq_spread", "ens5 IRQs"), Some(5));
    // 1200 TIME_WAIT on :4140 plus listen drops: connections are not pooled.
    assert_eq!(verdict(&r, "connections"), Verdict::Problem);
    assert_eq!(
        rate(&r, "connections", "TIME_WAIT on local port 4140"),
        Some(1200)
    );
    // rx_missed_errors grew: the ring overflowed.
    assert_eq!(verdict(&r, "interfaces"), Verdict::Problem);
    assert_eq!(rate(&r, "interfaces", "ens5 rx_missed_errors"), Some(7));
    assert!(
        r.check("interfaces")
            .unwrap()
            .suggestions
            .iter()
            .any(|s| s.contains("ethtool -G ens5 rx"))
    );
    // A sysctl this "kernel" lacks is shown as such, not an error.
    let syn_backlog = r
        .check("listen_queues")
        .unwrap()
        .evidence
        .iter()
        .find(|e| e.name == "net.ipv4.tcp_max_syn_backlog")
        .unwrap();
    assert_eq!(syn_backlog.value, Value::Setting { value: None });
}

#[test]
fn busy_host_text_snapshot() {
    assert_snapshot("busy.txt", &text::render(&busy_report()));
}

#[test]
fn watch_lines_snapshot() {
    assert_snapshot(
        "busy-watch.txt",
        &text::render_watch(&busy_report(), "2026-01-01T00:00:05Z"),
    );
}

#[test]
fn json_carries_the_same_facts() {
    let r = busy_report();
    let encoded = text::json(&r).unwrap();
    let back: Report = serde_json::from_str(&encoded).unwrap();
    assert_eq!(back, r);
    let v: serde_json::Value = serde_json::from_str(&encoded).unwrap();
    assert_eq!(v["checks"][0]["id"], "softnet");
    assert_eq!(v["checks"][0]["verdict"], "problem");
    let dropped = &v["checks"][0]["evidence"][1];
    assert_eq!(dropped["name"], "dropped");
    assert_eq!(dropped["kind"], "rate");
    assert_eq!(dropped["delta"], 50);
    assert_eq!(dropped["per_sec"], 10.0);
    // One line per report for --watch.
    assert_eq!(text::json_line(&r).unwrap().lines().count(), 1);
}

#[test]
fn nothing_readable_degrades_every_check_not_the_report() {
    let nowhere = Root::under(Path::new("/nonexistent/netlat"));
    let before = sample::take(&nowhere);
    let r = evaluate(&before, &sample::take(&nowhere), Duration::from_secs(5));
    assert_eq!(r.checks.len(), 7);
    for c in &r.checks {
        assert_eq!(c.verdict, Verdict::Unavailable, "{c:?}");
        assert!(
            c.summary
                .starts_with("unavailable: cannot read /nonexistent/netlat/"),
            "{}",
            c.summary
        );
    }
    assert_snapshot("unavailable.txt", &text::render(&r));
}

#[test]
fn one_missing_directory_degrades_only_its_checks() {
    let after = Root {
        proc_net: "/nonexistent/net".into(),
        ..Root::under(&fixture("doctor/busy/after"))
    };
    let before = Root {
        proc_net: "/nonexistent/net".into(),
        ..Root::under(&fixture("doctor/busy/before"))
    };
    let r = evaluate(
        &sample::take(&before),
        &sample::take(&after),
        Duration::from_secs(5),
    );
    for id in [
        "softnet",
        "listen_queues",
        "receive_buffers",
        "retransmits",
        "connections",
    ] {
        assert_eq!(verdict(&r, id), Verdict::Unavailable, "{id}");
    }
    assert_eq!(verdict(&r, "irq_spread"), Verdict::Warn);
    assert_eq!(verdict(&r, "interfaces"), Verdict::Problem);
}

#[test]
fn live_report_on_this_kernel() {
    let r = netlat::doctor::measure(&Root::host(), Duration::from_millis(300));
    assert_eq!(r.checks.len(), 7);
    // These files exist on every kernel netlat supports, root or not.
    for id in [
        "softnet",
        "listen_queues",
        "receive_buffers",
        "retransmits",
        "connections",
    ] {
        let c = r.check(id).unwrap();
        assert_ne!(c.verdict, Verdict::Unavailable, "{c:?}");
    }
    let out = text::render(&r);
    assert!(out.starts_with("netlat doctor: 7 checks over 0."), "{out}");
}

#[test]
fn binary_json_and_watch() {
    let out = common::run(&["doctor", "--window", "0.3", "--json"]);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        out.stderr, "netlat: doctor sampling /proc and /sys: two readings 300ms apart...\n",
        "doctor says it is sampling"
    );
    let r: Report = serde_json::from_str(&out.stdout).expect("one JSON report");
    assert_eq!(r.checks.len(), 7);
    assert!(r.at.is_some());

    let out = common::run(&["doctor", "--window", "1", "--watch", "1"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("--watch"), "{}", out.stderr);

    // --watch keeps going: read three intervals, then stop it.
    let mut child = Command::new(BIN)
        .args(["doctor", "--watch", "0.2", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn netlat doctor --watch");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        let line = lines.next().expect("a line per interval").unwrap();
        let r: Report = serde_json::from_str(&line).expect("JSON line");
        assert!(r.window_secs > 0.15 && r.window_secs < 2.0, "{r:?}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A background job of a non-interactive shell starts with SIGINT ignored
/// (POSIX job control is off in scripts): `--watch` must still stop on
/// `kill -INT`, as every tracing command does.
#[test]
fn watch_in_a_script_background_job_stops_on_sigint() {
    let script = format!(
        r#"trap '' INT  # as a script's background job inherits it
"{BIN}" doctor --watch 0.2 --json > /dev/null 2>&1 &
pid=$!
sleep 0.7
kill -INT $pid
for i in $(seq 50); do
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
if kill -0 $pid 2>/dev/null; then
    echo "still running 5 s after SIGINT"
    kill -KILL $pid
fi
wait $pid
echo "exit $?""#
    );
    let t = Instant::now();
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{} after {:?}", stdout.trim(), t.elapsed());
    assert_eq!(stdout.trim(), "exit 0", "{stdout}");
}

/// A network namespace for one test, deleted when dropped (also when the
/// test panics), with its interfaces going with it.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("netlat-doctor-{}-{tag}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Runs `f` on a thread that entered this namespace: its sockets and
    /// `/proc/thread-self/net` are the namespace's.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn have_iproute2() -> bool {
    ["ip", "ss"].iter().all(|t| {
        Command::new(t)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// TIME_WAIT sockets the test made on `port`, as `ss` counts them.
fn ss_time_wait(ns: &Netns, port: u16) -> u64 {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "ss",
            "-Htan",
            "state",
            "time-wait",
        ])
        .arg(format!("( sport = :{port} )"))
        .output()
        .expect("run ss");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64
}

// Test hosts inside this test's own namespaces only (RFC 2544's
// benchmarking range): nothing here can route anywhere else.
const SERVER: &str = "198.18.231.1";
const CLIENT: &str = "198.18.231.2";
const PORT: u16 = 4140;
const CONNECTIONS: u64 = 1200;

#[test]
fn time_wait_per_port_matches_ss_between_two_namespaces() {
    common::skip_unless_root!("needs root to create network namespaces");
    if !have_iproute2() {
        return skip("needs ip and ss (apt-get install iproute2)");
    }
    let server = Netns::new("srv");
    let client = Netns::new("cli");
    ip(&[
        "link",
        "add",
        "nl-doc-s",
        "netns",
        &server.name,
        "type",
        "veth",
        "peer",
        "name",
        "nl-doc-c",
        "netns",
        &client.name,
    ]);
    server.ip(&["addr", "add", &format!("{SERVER}/30"), "dev", "nl-doc-s"]);
    server.ip(&["link", "set", "nl-doc-s", "up"]);
    client.ip(&["addr", "add", &format!("{CLIENT}/30"), "dev", "nl-doc-c"]);
    client.ip(&["link", "set", "nl-doc-c", "up"]);

    let before = server.run(|| sample::take(&Root::this_thread()));
    let started = Instant::now();
    let listener = server.run(|| TcpListener::bind((SERVER, PORT)).expect("bind in the namespace"));
    // The server closes first (write, then drop), so the TIME_WAIT sockets
    // are its own, on its port: the notes' `ss -tan 'sport = :4140'`.
    let acceptor = thread::spawn(move || {
        for _ in 0..CONNECTIONS {
            let (mut conn, _) = listener.accept().expect("accept");
            std::io::Write::write_all(&mut conn, b"bye").expect("write");
        }
    });
    client.run(|| {
        let to: SocketAddr = format!("{SERVER}:{PORT}").parse().unwrap();
        for _ in 0..CONNECTIONS {
            let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
            let mut buf = Vec::new();
            // Until the server's FIN, then close: no TIME_WAIT on this side.
            std::io::Read::read_to_end(&mut c, &mut buf).expect("read");
        }
    });
    acceptor.join().expect("acceptor");

    // The last FIN/ACK exchanges settle within milliseconds.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut by_ss = ss_time_wait(&server, PORT);
    while by_ss < CONNECTIONS && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        by_ss = ss_time_wait(&server, PORT);
    }
    let after = server.run(|| sample::take(&Root::this_thread()));
    let r = evaluate(&before, &after, started.elapsed());
    let ours = rate(
        &r,
        "connections",
        &format!("TIME_WAIT on local port {PORT}"),
    );
    assert_eq!(ours, Some(by_ss), "{:#?}", r.check("connections"));
    assert_eq!(by_ss, CONNECTIONS);
    let churn = r.check("connections").unwrap();
    assert_eq!(churn.verdict, Verdict::Warn, "{churn:#?}");
    assert!(churn.summary.contains("on local port 4140"), "{churn:#?}");
    assert_eq!(rate(&r, "connections", "PassiveOpens"), Some(CONNECTIONS));

    // The binary sees the same, with the namespace's own /sys (ip netns
    // exec mounts it): the veth is an interface without interrupts.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &server.name,
            BIN,
            "doctor",
            "--window",
            "0.2",
            "--json",
        ])
        .output()
        .expect("run netlat in the namespace");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Report = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(
        rate(
            &r,
            "connections",
            &format!("TIME_WAIT on local port {PORT}")
        ),
        Some(CONNECTIONS)
    );
    let irq = r.check("irq_spread").unwrap();
    assert_eq!(irq.verdict, Verdict::Ok, "{irq:#?}");
    assert!(irq.summary.contains("virtual interfaces only"), "{irq:#?}");
    let ifaces = r.check("interfaces").unwrap();
    assert_eq!(ifaces.verdict, Verdict::Ok, "{ifaces:#?}");
}

#[test]
fn tcp_collapse_generator_is_flagged_as_receive_buffer_pressure() {
    common::skip_unless_root!("needs root to create a network namespace");
    if !have_iproute2() {
        return skip("needs ip (apt-get install iproute2)");
    }
    let ns = Netns::new("collapse");
    // Counters are per namespace: only the generator moves them here.
    let r = ns.run(|| {
        let root = Root::this_thread();
        let mut last = None;
        // Timing-sensitive (platform notes): one more try before judging.
        for _ in 0..2 {
            let before = sample::take(&root);
            let started = Instant::now();
            netlat_testkit::collapse::run_for(Duration::from_secs(4));
            let r = evaluate(&before, &sample::take(&root), started.elapsed());
            if r.check("receive_buffers").unwrap().verdict != Verdict::Ok {
                return r;
            }
            last = Some(r);
        }
        last.unwrap()
    });
    let check = r.check("receive_buffers").unwrap();
    println!("{}", text::summary_line(check));
    let prunes = rate(&r, "receive_buffers", "PruneCalled").unwrap();
    let collapsed = rate(&r, "receive_buffers", "TCPRcvCollapsed").unwrap();
    assert!(prunes > 0 || collapsed > 0, "{check:#?}");
    assert!(
        matches!(check.verdict, Verdict::Warn | Verdict::Problem),
        "{check:#?}"
    );
    assert!(
        check.summary.contains("prunes") && check.summary.contains("/s"),
        "{check:#?}"
    );
    assert!(
        check
            .suggestions
            .iter()
            .any(|s| s.contains("netlat histogram tcp_collapse")),
        "{check:#?}"
    );
    let out = text::render(&r);
    assert!(
        out.contains("Receive-buffer pressure: receive queues over budget"),
        "{out}"
    );
}

/// This host has no kprobes and refuses fentry: netlat knows it cannot time
/// tcp_collapse here, so doctor must not send the user to a command that
/// fails.
#[test]
fn knows_when_tcp_collapse_cannot_be_timed_here() {
    common::skip_unless_root!("needs root to try loading an fentry program");
    let why = netlat::tracing::backend::attach::function_probes_refused("tcp_collapse");
    println!("tcp_collapse: {why:?}");
    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    if kprobes {
        assert_eq!(why, None, "kprobes are there: they can time it");
        return;
    }
    let histogram = common::run(&["histogram", "tcp_collapse", "0.1"]);
    match why {
        // fentry loads: the command may work.
        None => println!("fentry loads here: {}", histogram.stderr),
        Some(why) => {
            assert!(why.contains("kprobes are not available"), "{why}");
            assert!(
                !histogram.success,
                "netlat said it cannot, but it did: {}",
                histogram.stdout
            );
        }
    }
}
