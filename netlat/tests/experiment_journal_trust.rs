//! The restore records in /run/netlat are acted on by every root netlat
//! run, so a record or a directory another user could have made must never
//! make netlat write a file or a sysctl: it is reported in one line and left.
//! Uses the real /run/netlat: skips when it holds anything already.

mod common;

use std::{os::unix::fs::PermissionsExt as _, path::Path};

use common::{run, skip};

const DIR: &str = "/run/netlat";

/// Removes /run/netlat when the test ends, whatever happens.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(DIR);
    }
}

fn in_use() -> bool {
    std::fs::read_dir(DIR).is_ok_and(|d| {
        d.filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("sysctl."))
    })
}

fn planted(key: &str, original: &str) -> String {
    serde_json::json!({
        "key": key, "original": original, "set": "x", "pid": 0x7fff_fff0u32, "pid_start": 1
    })
    .to_string()
}

#[test]
fn planted_records_never_make_root_write() {
    common::skip_unless_root!("needs root: the records are root's");
    if in_use() {
        return skip("/run/netlat holds records of a running netlat");
    }
    let _cleanup = Cleanup;
    let scratch = netlat_testkit::scratch::Scratch::new("journal-trust");
    let victim = scratch.join("victim");
    std::fs::write(&victim, "x").unwrap();

    // A directory made beforehand by another user (nobody), holding a record
    // whose key points outside /proc/sys.
    let _ = std::fs::remove_dir_all(DIR);
    std::fs::create_dir(DIR).unwrap();
    std::fs::set_permissions(DIR, std::fs::Permissions::from_mode(0o755)).unwrap();
    let record = Path::new(DIR).join(format!(
        "sysctl.{}.json",
        victim.display().to_string().replace('/', "%")
    ));
    std::fs::write(&record, planted(&victim.display().to_string(), "planted")).unwrap();
    std::os::unix::fs::chown(DIR, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(&record, Some(65534), Some(65534)).unwrap();
    let out = run(&["completions", "bash"]);
    println!("{}", out.stderr);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim_end(),
        "netlat: not acting on the restore records in /run/netlat: it is owned by uid 65534, not by uid 0 (this netlat); nothing was restored (look at it, then remove it or make it root's, mode 700)"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "x");
    let out = run(&["experiment", "--restore"]);
    assert!(!out.success, "--restore does not say nothing to restore");
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.stderr);

    // The directory root's, but the record nobody's, and one root's with a
    // key outside /proc/sys: each reported, neither acted on.
    std::os::unix::fs::chown(DIR, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(DIR, std::fs::Permissions::from_mode(0o700)).unwrap();
    let budget = "/proc/sys/net/core/netdev_budget";
    let before = std::fs::read_to_string(budget).unwrap();
    let edited = Path::new(DIR).join("sysctl.net.core.netdev_budget.json");
    std::fs::write(&edited, planted("net.core.netdev_budget", "1")).unwrap();
    std::os::unix::fs::chown(&edited, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(&record, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&["completions", "bash"]);
    println!("{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(
        lines.iter().any(|l| l.contains(
            "sysctl.net.core.netdev_budget.json: it is owned by uid 65534, not by uid 0 (this netlat)"
        )),
        "{}",
        out.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("is not a sysctl name: it starts with /")),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "x");
    assert_eq!(std::fs::read_to_string(budget).unwrap(), before);

    // A FIFO record used to hang every root netlat run.
    std::fs::remove_file(&edited).unwrap();
    let fifo = std::ffi::CString::new(edited.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let t = std::time::Instant::now();
    let out = run(&["completions", "bash"]);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        out.stderr.contains("it is not a regular file"),
        "{}",
        out.stderr
    );
}
