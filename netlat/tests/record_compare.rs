//! Recorded runs (`histogram --output`) on the real host: the sysctls beside
//! the numbers are what `sysctl` prints, the kernel counters moved with the
//! traffic, and `netlat compare` reads the files back.

mod common;

use std::{process::Command, time::Duration};

use common::{Netlat, run, skip};
use netlat_testkit::{loopback, scratch::Scratch};
use serde_json::Value;

#[test]
fn recorded_run_carries_sysctls_and_counter_deltas() {
    common::skip_unless_root!("needs root to load eBPF programs");
    let scratch = Scratch::new("record");
    let path = scratch.join("run.json");
    let netlat = Netlat::start(&[
        "histogram",
        "net_rx_action",
        "--output",
        path.to_str().unwrap(),
    ]);
    loopback::run_for(Duration::from_secs(2));
    let out = netlat.interrupt();
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains("Sysctls: "),
        "text output shows the sysctls: {}",
        out.stdout
    );
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("result file")).expect("JSON");
    let c = &r["conditions"];
    for (key, value) in c["sysctls_start"].as_object().expect("sysctls") {
        let Ok(printed) = Command::new("sysctl").args(["-n", key]).output() else {
            return skip("sysctl (procps) is not installed");
        };
        let printed = String::from_utf8_lossy(&printed.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match value.as_str() {
            Some(v) => assert_eq!(v, printed, "{key}"),
            None => assert!(
                printed.is_empty(),
                "{key} recorded absent but sysctl prints {printed}"
            ),
        }
    }
    assert_eq!(
        c["sysctls_start"]["net.ipv4.tcp_rmem"],
        c["sysctls_end"]["net.ipv4.tcp_rmem"]
    );
    for counter in [
        "PruneCalled",
        "TCPRcvCollapsed",
        "TCPBacklogDrop",
        "ListenOverflows",
    ] {
        assert!(c["netstat_delta"][counter].is_u64(), "{counter} recorded");
    }
    // Loopback ping-pong delivers about one packet per net_rx_action call.
    let count = r["count"].as_u64().unwrap();
    let processed: u64 = c["softnet_delta"]
        .as_array()
        .expect("softnet rows")
        .iter()
        .map(|row| row["processed"].as_u64().unwrap())
        .sum();
    println!("net_rx_action calls {count}, softnet processed {processed}");
    assert!(count > 1000);
    assert!(
        processed >= count / 2 && processed <= count * 4,
        "calls {count} vs processed {processed}"
    );

    // Two runs compare; different functions are refused unless forced.
    let second = scratch.join("second.json");
    std::fs::copy(&path, &second).expect("copy");
    let out = run(&["compare", path.to_str().unwrap(), second.to_str().unwrap()]);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("(x1.00)"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Sysctls: the recorded ones are the same in every run.")
    );
    let mut other: Value = r.clone();
    other["function"] = "tcp_collapse".into();
    std::fs::write(&second, other.to_string()).expect("write");
    let out = run(&["compare", path.to_str().unwrap(), second.to_str().unwrap()]);
    assert!(!out.success);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("use --force"), "{}", out.stderr);
    let out = run(&[
        "compare",
        "--force",
        "--json",
        path.to_str().unwrap(),
        second.to_str().unwrap(),
    ]);
    assert!(out.success, "{}", out.stderr);
    let json: Value = serde_json::from_str(&out.stdout).expect("comparison JSON");
    assert_eq!(json["functions"][1], "tcp_collapse");
}

#[test]
fn output_path_is_checked_before_tracing() {
    common::skip_unless_root!("needs root");
    let out = run(&[
        "histogram",
        "net_rx_action",
        "1",
        "--output",
        "/nonexistent/dir/run.json",
    ]);
    assert!(!out.success);
    assert_eq!(
        out.stderr.trim_end(),
        "Error: cannot write /nonexistent/dir/run.json: No such file or directory"
    );
}

/// `experiment` on a harmless sysctl: both runs recorded, the original value
/// back afterwards, also when SIGTERM arrives during the second run.
#[test]
fn experiment_restores_the_sysctl_even_when_interrupted() {
    use std::io::{BufRead as _, BufReader, Read as _};
    common::skip_unless_root!("needs root to load eBPF programs and set sysctls");
    const KEY: &str = "/proc/sys/net/core/netdev_budget";
    let read = || {
        std::fs::read_to_string(KEY)
            .expect("netdev_budget")
            .trim()
            .to_owned()
    };
    let original = read();
    let changed = if original == "600" { "601" } else { "600" };
    let scratch = Scratch::new("record");
    let dir = scratch.join("experiment");

    let out = run(&[
        "experiment",
        "net_rx_action",
        "--sysctl",
        &format!("net.core.netdev_budget={changed}"),
        "--duration",
        "0.5",
        "--output-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(read(), original, "restored after a normal run");
    assert!(
        out.stdout
            .contains(&format!("net.core.netdev_budget  {original}  {changed}")),
        "{}",
        out.stdout
    );
    for name in ["before.json", "after.json"] {
        let r: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(name)).expect(name))
            .expect("JSON");
        let expected: &str = if name == "before.json" {
            &original
        } else {
            changed
        };
        assert_eq!(
            r["conditions"]["sysctls_start"]["net.core.netdev_budget"], expected,
            "{name}"
        );
    }

    let mut child = Command::new(common::BIN)
        .args([
            "experiment",
            "net_rx_action",
            "--sysctl",
            &format!("net.core.netdev_budget={changed}"),
            "--duration",
            "3",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    // Wait until the second run is attached.
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).expect("stderr") > 0,
            "netlat ended early: {seen}"
        );
        seen.push_str(&line);
        if line.starts_with("netlat: tracing") && seen.contains("run 2 of 2") {
            break;
        }
    }
    assert_eq!(read(), changed, "the new value is in force during run 2");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).expect("stderr");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .expect("stdout");
    println!("{seen}{rest}{stdout}");
    assert!(status.success(), "SIGTERM is a normal end: {rest}");
    assert_eq!(read(), original, "restored after SIGTERM");
    assert!(
        rest.contains(&format!("restored net.core.netdev_budget = {original}")),
        "{rest}"
    );
    assert!(
        stdout.contains("before") && stdout.contains("after"),
        "{stdout}"
    );
}

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/compare/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs that differ in more than the tuning say so; the same file twice
/// too. No root: recorded files only.
#[test]
fn compare_says_when_runs_are_not_comparable() {
    let (all, cpu1) = (fixture("all-cpus.json"), fixture("cpu1.json"));
    let out = run(&["compare", &all, &cpu1]);
    println!("{}", out.stdout);
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(
            "Note: different CPU selections (all-cpus: all 2 CPUs; cpu1: CPU 1 only): count and calls/s cover different CPUs\n"
        ),
        "{}",
        out.stdout
    );
    let out = run(&["compare", "--json", &all, &cpu1]);
    let json: Value = serde_json::from_str(&out.stdout).expect("comparison JSON");
    assert!(
        json["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("different CPU selections"),
        "{json}"
    );
    let out = run(&["compare", &all, &all]);
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "Note: all-cpus and all-cpus are the same run (identical contents: one file given twice, or a copy)"
        ),
        "{}",
        out.stdout
    );
}

/// A device or a FIFO is refused at once, in one line (a FIFO with no
/// writer used to hang compare); strings from a file never reach the
/// terminal as control sequences or bidi controls.
#[test]
fn compare_refuses_devices_and_fifos_and_escapes_control_characters() {
    let out = run(&["compare", "/dev/zero", &fixture("all-cpus.json")]);
    assert!(!out.success);
    assert_eq!(
        out.stderr.trim_end(),
        "Error: /dev/zero is not a regular file: give a result file (netlat compare does not read pipes or devices)"
    );
    let scratch = Scratch::new("compare-fifo");
    let fifo = scratch.join("run.json");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = Command::new(common::BIN)
        .args(["compare", fifo.to_str().unwrap(), &fixture("all-cpus.json")])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("compare hangs on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a regular file"),
        "{out:?}"
    );
    let bidi = scratch.join("bidi.json");
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("all-cpus.json")).unwrap()).unwrap();
    v["host"] = "h\u{202e}tsoh-rehto\u{2066}".into();
    std::fs::write(&bidi, v.to_string()).unwrap();
    let out = run(&["compare", &fixture("all-cpus.json"), bidi.to_str().unwrap()]);
    assert!(out.success, "{}", out.stderr);
    assert!(
        !out.stdout.contains('\u{202e}') && !out.stdout.contains('\u{2066}'),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("h\\u{202e}tsoh-rehto\\u{2066}"),
        "{}",
        out.stdout
    );
    let evil = fixture("control-chars.json");
    let out = run(&["compare", &fixture("all-cpus.json"), &evil]);
    assert!(!out.success);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("control-chars times net_rx_action\\u{1b}[2J: use --force"),
        "{}",
        out.stderr
    );
    let out = run(&["compare", "--force", &fixture("all-cpus.json"), &evil]);
    assert!(out.success, "{}", out.stderr);
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
    }
    assert!(
        out.stdout.contains("evil\\u{1b}]0;owned\\u{7}host"),
        "{}",
        out.stdout
    );
}
