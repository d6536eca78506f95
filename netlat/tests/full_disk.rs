//! Every file netlat writes, on a full disk (a small tmpfs filled to the
//! last byte): the previous file stays intact, no partial file is left,
//! and what was measured is still printed. Special files are refused
//! before tracing starts. Mounts, so run under the kernel lock.

mod common;

use std::{
    fs,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::{run, skip};
use netlat_testkit::loopback;

const OLD: &str = "the previous result\n";

/// A 256 KiB tmpfs under the temp dir, unmounted and removed on drop.
struct FullDisk {
    dir: PathBuf,
}

impl FullDisk {
    fn mount(name: &str) -> Option<FullDisk> {
        let dir = std::env::temp_dir().join(format!("netlat-full-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let _ = fs::remove_dir(&dir);
            return None;
        }
        Some(FullDisk { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `name` with the old content, to be kept.
    fn old(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, OLD).unwrap();
        path
    }

    /// Fills what is left, down to the last byte.
    fn fill(&self) {
        let mut filler = fs::File::create(self.path("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        while filler.write_all(&chunk).is_ok() {}
        while filler.write_all(&chunk[..1]).is_ok() {}
    }

    /// Names in the directory other than the ones the test made.
    fn strays(&self, expected: &[&str]) -> Vec<String> {
        fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "filler" && !expected.contains(&n.as_str()))
            .collect()
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn assert_old(path: &Path) {
    assert_eq!(
        fs::read_to_string(path).unwrap(),
        OLD,
        "{} kept",
        path.display()
    );
}

#[test]
fn histogram_output_on_a_full_disk_keeps_the_old_file_and_prints() {
    common::skip_unless_root!("needs root to mount a tmpfs and load eBPF programs");
    let Some(disk) = FullDisk::mount("histogram") else {
        return skip("cannot mount a tmpfs here");
    };
    let path = disk.old("run.json");
    disk.fill();
    let out = run(&[
        "histogram",
        "net_rx_action",
        "0.5",
        "--output",
        path.to_str().unwrap(),
    ]);
    println!("{}{}", out.stdout, out.stderr);
    assert!(!out.success);
    assert!(
        out.stderr.contains("No space left on device"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("Sysctls"),
        "still printed: {}",
        out.stdout
    );
    assert_old(&path);
    assert_eq!(disk.strays(&["run.json"]), Vec::<String>::new());
}

#[test]
fn flamegraph_files_on_a_full_disk_keep_the_old_ones_and_print() {
    common::skip_unless_root!("needs root to mount a tmpfs and load eBPF programs");
    let Some(disk) = FullDisk::mount("flamegraph") else {
        return skip("cannot mount a tmpfs here");
    };
    let (svg, folded) = (disk.old("fg.svg"), disk.old("fg.folded"));
    disk.fill();
    let traffic = std::thread::spawn(|| loopback::run_for(Duration::from_secs(2)));
    let out = run(&[
        "flamegraph",
        "--duration",
        "1",
        "--frequency",
        "1000",
        "-o",
        svg.to_str().unwrap(),
        "--folded",
        folded.to_str().unwrap(),
    ]);
    traffic.join().unwrap();
    println!("{}", out.stderr);
    assert!(!out.success);
    assert!(out.stderr.contains("samples kept"), "{}", out.stderr);
    assert!(
        out.stderr
            .lines()
            .last()
            .unwrap()
            .contains("No space left on device"),
        "{}",
        out.stderr
    );
    assert_old(&svg);
    assert_old(&folded);
    assert_eq!(disk.strays(&["fg.svg", "fg.folded"]), Vec::<String>::new());
}

/// The disk fills during run 2: before.json is there, after.json keeps its
/// old content, the comparison is printed and the sysctl is back.
#[test]
fn experiment_on_a_disk_that_fills_during_run_2() {
    common::skip_unless_root!("needs root to mount a tmpfs, load eBPF and set sysctls");
    let Some(disk) = FullDisk::mount("experiment") else {
        return skip("cannot mount a tmpfs here");
    };
    const KEY: &str = "/proc/sys/net/core/netdev_budget";
    let read = || fs::read_to_string(KEY).unwrap().trim().to_owned();
    let original = read();
    let changed = if original == "600" { "601" } else { "600" };
    let after = disk.old("after.json");
    let mut child = Command::new(common::BIN)
        .args([
            "experiment",
            "net_rx_action",
            "--sysctl",
            &format!("net.core.netdev_budget={changed}"),
            "--duration",
            "1",
            "--output-dir",
            disk.dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("run 2 of 2") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ended: {seen}");
        seen.push_str(&line);
    }
    disk.fill();
    let status = child.wait().unwrap();
    stderr.read_to_string(&mut seen).unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let now = read();
    if now != original {
        fs::write(KEY, &original).unwrap();
    }
    println!("{seen}{stdout}");
    assert!(!status.success());
    assert_eq!(now, original, "restored");
    assert!(
        stdout.contains("before") && stdout.contains("after") && stdout.contains("p99"),
        "the comparison is printed: {stdout}"
    );
    assert!(
        seen.lines()
            .last()
            .unwrap()
            .contains("after.json: No space left on device"),
        "{seen}"
    );
    let before: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(disk.path("before.json")).unwrap()).unwrap();
    assert_eq!(before["function"], "net_rx_action");
    assert_old(&after);
    assert_eq!(
        disk.strays(&["before.json", "after.json"]),
        Vec::<String>::new()
    );
}

#[test]
fn special_files_are_refused_before_tracing() {
    common::skip_unless_root!("needs root (the check comes after the privilege check)");
    for (args, expected) in [
        (
            vec!["histogram", "net_rx_action", "5", "--output", "/dev/full"],
            "Error: cannot write /dev/full: it is not a regular file",
        ),
        (
            vec![
                "histogram",
                "net_rx_action",
                "5",
                "--output",
                "/proc/x.json",
            ],
            "Error: cannot write /proc/x.json: it is under /proc or /sys",
        ),
        (
            vec!["flamegraph", "--duration", "5", "-o", "/dev/full"],
            "Error: cannot write /dev/full: it is not a regular file",
        ),
        (
            vec![
                "flamegraph",
                "--duration",
                "5",
                "--folded",
                "/proc/self/comm",
            ],
            "Error: cannot write /proc/self/comm: it is under /proc or /sys",
        ),
    ] {
        let t = std::time::Instant::now();
        let out = run(&args);
        assert!(!out.success, "{args:?}");
        assert!(out.stderr.starts_with(expected), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(t.elapsed() < Duration::from_secs(2), "refused at once");
    }
}

#[test]
fn capture_store_on_a_full_disk_says_full_and_keeps_what_it_had() {
    use netlat::recorder::store::{Limits, Store, StoreError};
    common::skip_unless_root!("needs root to mount a tmpfs");
    let Some(disk) = FullDisk::mount("captures") else {
        return skip("cannot mount a tmpfs here");
    };
    let dir = disk.path("captures");
    let limits = Limits {
        max_files: 10,
        max_bytes: 1 << 20,
    };
    let store = Store::open(&dir, limits).unwrap();
    let kept = common::capture::capture(common::capture::T0, &[7]);
    store.write(&kept).unwrap();
    disk.fill();
    let next = common::capture::capture(common::capture::T0 + 1_000_000_000, &[8; 20]);
    match store.write(&next) {
        Err(StoreError::Full { id, .. }) => assert_eq!(id, next.id),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(store.list(), [kept.listing()]);
    assert_eq!(store.capture(&kept.id).unwrap(), kept);
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [format!("{}.json", kept.id)], "no partial file left");
}

/// serve's recorder on a full disk: the capture is skipped and counted as
/// `disk`, no partial file is left, and the exporter carries on.
#[test]
fn serve_skips_a_capture_on_a_full_disk_and_keeps_serving() {
    use netlat_testkit::scrape::{free_port, get, sample};
    common::skip_unless_root!("needs root to mount a tmpfs and load eBPF programs");
    let Some(disk) = FullDisk::mount("serve-captures") else {
        return skip("cannot mount a tmpfs here");
    };
    let dir = disk.path("captures");
    let listen = format!("127.0.0.1:{}", free_port());
    let serve = common::Netlat::start(&[
        "serve",
        "--listen",
        &listen,
        "--capture",
        "net_rx_action=0",
        "--capture-dir",
        dir.to_str().unwrap(),
        "--capture-window",
        "1s",
        "--capture-cooldown",
        "1s",
    ]);
    // Every call is slow: a capture of a second of them is far larger
    // than the 256 KiB disk.
    let addr = listen.parse().unwrap();
    let metric = "netlat_captures_skipped_total{function=\"net_rx_action\",reason=\"disk\"}";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut skipped = 0.0;
    while skipped < 1.0 && std::time::Instant::now() < deadline {
        loopback::run_for(Duration::from_millis(500));
        skipped = sample(&get(addr, "/metrics").1, metric).unwrap_or(0.0);
    }
    let (status, page) = get(addr, "/metrics");
    let out = serve.terminate();
    assert!(out.success, "{}", out.stderr);
    assert!(
        skipped >= 1.0,
        "no capture skipped for the disk: {}",
        out.stderr
    );
    assert_eq!(status, 200, "{page}");
    assert!(out.stderr.contains("not kept"), "{}", out.stderr);
    let partial: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(partial.is_empty(), "partial files left: {partial:?}");
    println!("{skipped} captures skipped for the disk; serve kept answering");
}
