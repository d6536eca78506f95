//! `experiment` never leaves a sysctl changed: SIGHUP ends it like SIGTERM,
//! and after SIGKILL the restore record in /run/netlat lets the next netlat
//! run (or `experiment --restore`) put the original back, unless someone
//! changed the value meanwhile. Changes a sysctl: run under the kernel lock.

mod common;

use std::{
    io::{BufRead as _, BufReader, Read as _},
    process::{Child, ChildStderr, Command, Stdio},
};

use common::run;

const KEY: &str = "net.core.netdev_budget";
const PATH: &str = "/proc/sys/net/core/netdev_budget";
const RECORD: &str = "/run/netlat/sysctl.net.core.netdev_budget.json";

fn read() -> String {
    std::fs::read_to_string(PATH).unwrap().trim().to_owned()
}

/// Puts the original value back when the test ends, whatever happens.
struct Guard {
    original: String,
}

impl Guard {
    fn new() -> Guard {
        Guard { original: read() }
    }

    /// A value different from the original.
    fn changed(&self) -> &'static str {
        if self.original == "600" { "601" } else { "600" }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if read() != self.original {
            let _ = std::fs::write(PATH, &self.original);
        }
        let _ = std::fs::remove_file(RECORD);
    }
}

/// An experiment that has reached run 2 (the new value is in force).
#[expect(
    clippy::zombie_processes,
    reason = "the caller waits for the child it is handed"
)]
fn in_run_2(value: &str) -> (Child, BufReader<ChildStderr>, String) {
    let mut child = Command::new(common::BIN)
        .args([
            "experiment",
            "net_rx_action",
            "--sysctl",
            &format!("{KEY}={value}"),
            "--duration",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netlat");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.wait();
            panic!("netlat ended early: {seen}");
        }
        seen.push_str(&line);
        if line.starts_with("netlat: tracing") && seen.contains("run 2 of 2") {
            return (child, stderr, seen);
        }
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Starts an experiment, SIGKILLs it in run 2: the value stays changed and
/// its restore record is there.
fn killed_in_run_2(value: &str) {
    let (mut child, _stderr, _) = in_run_2(value);
    assert!(
        std::path::Path::new(RECORD).exists(),
        "the record is written before the change"
    );
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    assert_eq!(read(), value, "SIGKILL leaves the value changed");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(RECORD).expect("record")).unwrap();
    assert_eq!(record["set"], value);
}

#[test]
fn sighup_restores_like_sigterm() {
    common::skip_unless_root!("needs root to load eBPF and set sysctls");
    let guard = Guard::new();
    let (mut child, mut stderr, mut seen) = in_run_2(guard.changed());
    assert_eq!(read(), guard.changed());
    signal(&child, libc::SIGHUP);
    let status = child.wait().unwrap();
    stderr.read_to_string(&mut seen).unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    println!("{seen}{stdout}");
    assert_eq!(read(), guard.original, "restored after SIGHUP");
    assert!(status.success(), "SIGHUP is a normal end: {status:?}");
    assert!(
        seen.contains(&format!("restored {KEY} = {}", guard.original)),
        "{seen}"
    );
    assert!(stdout.contains("after"), "{stdout}");
    assert!(
        !std::path::Path::new(RECORD).exists(),
        "the record goes with the change"
    );
}

#[test]
fn after_sigkill_the_next_netlat_run_restores_and_says_so() {
    common::skip_unless_root!("needs root to load eBPF and set sysctls");
    let guard = Guard::new();
    killed_in_run_2(guard.changed());
    // Any subcommand run as root; this one fails at once on its own.
    let out = run(&["compare", "/nonexistent/a.json", "/nonexistent/b.json"]);
    println!("{}", out.stderr);
    assert_eq!(read(), guard.original, "restored by the next run");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(
        lines[0].starts_with(&format!(
            "netlat: restored {KEY} = {} (netlat pid ",
            guard.original
        )),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("Error: cannot read"), "{}", lines[1]);
    assert!(!std::path::Path::new(RECORD).exists());
    // Nothing left: the next run says nothing more.
    let out = run(&["compare", "/nonexistent/a.json", "/nonexistent/b.json"]);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn restore_flag_puts_back_and_then_has_nothing_to_do() {
    common::skip_unless_root!("needs root to load eBPF and set sysctls");
    let guard = Guard::new();
    killed_in_run_2(guard.changed());
    let out = run(&["experiment", "--restore"]);
    println!("{}", out.stderr);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(read(), guard.original);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with(&format!("netlat: restored {KEY} = {}", guard.original)),
        "{}",
        out.stderr
    );
    let out = run(&["experiment", "--restore"]);
    assert!(out.success);
    assert_eq!(
        out.stderr.trim_end(),
        "netlat: nothing to restore (no records in /run/netlat)"
    );
}

#[test]
fn a_value_someone_else_changed_is_not_restored_over() {
    common::skip_unless_root!("needs root to load eBPF and set sysctls");
    let guard = Guard::new();
    killed_in_run_2(guard.changed());
    let theirs = if guard.original == "602" {
        "603"
    } else {
        "602"
    };
    std::fs::write(PATH, theirs).unwrap();
    let out = run(&["experiment", "--restore"]);
    println!("{}", out.stderr);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(read(), theirs, "left as someone else set it");
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "netlat: not restoring {KEY}: it is now {theirs}, not the {} netlat pid {} set, so someone changed it since; it was {} before netlat",
            guard.changed(),
            out.stderr
                .split("netlat pid ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .unwrap_or("?"),
            guard.original
        )
    );
    assert!(
        !std::path::Path::new(RECORD).exists(),
        "the record is dropped: the newer value was somebody's choice"
    );
}
