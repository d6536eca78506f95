//! `experiment` on a sysctl outside the ones every report records: both
//! result files say what was changed (key, value before, value during), and
//! `netlat compare` shows it. Changes a sysctl: run under the kernel lock.

mod common;

use common::run;
use serde_json::Value;

/// Not among the recorded ones, and harmless to nudge for a few seconds:
/// only how long orphaned FIN_WAIT2 sockets linger.
const KEY: &str = "net.ipv4.tcp_fin_timeout";
const PATH: &str = "/proc/sys/net/ipv4/tcp_fin_timeout";

struct Guard(String);

impl Drop for Guard {
    fn drop(&mut self) {
        if std::fs::read_to_string(PATH).unwrap().trim() != self.0 {
            let _ = std::fs::write(PATH, &self.0);
        }
    }
}

#[test]
fn both_files_and_compare_record_an_unrecorded_sysctl() {
    common::skip_unless_root!("needs root to load eBPF and set sysctls");
    let guard = Guard(std::fs::read_to_string(PATH).unwrap().trim().to_owned());
    let original = guard.0.clone();
    let changed = if original == "61" { "62" } else { "61" };
    let dir = std::env::temp_dir().join(format!("netlat-unrecorded-{}", std::process::id()));
    let out = run(&[
        "experiment",
        "net_rx_action",
        "--sysctl",
        &format!("{KEY}={changed}"),
        "--duration",
        "0.5",
        "--output-dir",
        dir.to_str().unwrap(),
    ]);
    println!("{}{}", out.stderr, out.stdout);
    assert!(out.success, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(PATH).unwrap().trim(), original);
    let shown = format!("Experiment: {KEY} {original} -> {changed}");
    assert!(out.stdout.contains(&shown), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("{KEY}  {original}  {changed}")),
        "{}",
        out.stdout
    );
    for (name, run_name) in [("before.json", "before"), ("after.json", "after")] {
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
        let e = &r["experiment"];
        assert_eq!(e["sysctl"], KEY, "{name}: {e}");
        assert_eq!(e["before"], original.as_str(), "{name}");
        assert_eq!(e["during"], changed, "{name}");
        assert_eq!(e["run"], run_name, "{name}");
    }
    let before = dir.join("before.json");
    let after = dir.join("after.json");
    let cmp = run(&["compare", before.to_str().unwrap(), after.to_str().unwrap()]);
    assert!(cmp.success, "{}", cmp.stderr);
    assert!(cmp.stdout.contains(&shown), "{}", cmp.stdout);
    assert!(
        !cmp.stdout.contains("the same in every run"),
        "{}",
        cmp.stdout
    );
    let json = run(&[
        "compare",
        "--json",
        before.to_str().unwrap(),
        after.to_str().unwrap(),
    ]);
    let c: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(c["experiments"][0]["sysctl"], KEY);
    assert_eq!(c["sysctls_differing"][0]["values"][1], changed);
    std::fs::remove_dir_all(&dir).unwrap();
}
