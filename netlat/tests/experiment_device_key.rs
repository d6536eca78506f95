//! Sysctl keys of a device whose name holds a dot (a VLAN's `eth0.100`),
//! written as sysctl(8) writes them: `net.ipv4.conf.eth0/100.rp_filter`.
//! A veth pair stands in for the VLAN device. Changes a sysctl of a device
//! this test makes and removes.

mod common;

use std::{os::unix::fs::PermissionsExt as _, path::Path, process::Command};

use common::{run, skip};

const DEV: &str = "nlt0.100";
const PEER: &str = "nlt1";
const PATH: &str = "/proc/sys/net/ipv4/conf/nlt0.100/rp_filter";

/// Removes the device (and with it its sysctls) whatever happens.
struct Device;

impl Device {
    fn add() -> Option<Device> {
        let _ = Command::new("ip").args(["link", "del", DEV]).output();
        let ok = Command::new("ip")
            .args([
                "link", "add", "name", DEV, "type", "veth", "peer", "name", PEER,
            ])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Device)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", DEV]).output();
    }
}

fn read() -> String {
    std::fs::read_to_string(PATH).unwrap().trim().to_owned()
}

#[test]
fn a_dotted_device_key_maps_as_sysctl_8_maps_it() {
    common::skip_unless_root!("needs root to add a device and set sysctls");
    let Some(device) = Device::add() else {
        return skip("cannot add a veth device here");
    };
    let original = read();
    let changed = if original == "2" { "1" } else { "2" };
    let out = run(&[
        "experiment",
        "net_rx_action",
        "--sysctl",
        &format!("net.ipv4.conf.nlt0/100.rp_filter={changed}"),
        "--duration",
        "0.3",
    ]);
    println!("{}{}", out.stderr, out.stdout);
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "run 2 of 2, with net.ipv4.conf.nlt0/100.rp_filter = {changed}"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains(&format!(
            "net.ipv4.conf.nlt0/100.rp_filter  {original}  {changed}"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(read(), original, "restored");

    // A record for the device's key, left by a netlat that is gone; then
    // the device goes: the record is dropped after one warning.
    let record = Path::new("/run/netlat/sysctl.net.ipv4.conf.nlt0%100.rp_filter.json");
    std::fs::create_dir_all("/run/netlat").unwrap();
    std::fs::write(
        record,
        serde_json::json!({
            "key": "net.ipv4.conf.nlt0/100.rp_filter", "original": original,
            "set": changed, "pid": 0x7fff_fff0u32, "pid_start": 1
        })
        .to_string(),
    )
    .unwrap();
    std::fs::set_permissions(record, std::fs::Permissions::from_mode(0o600)).unwrap();
    drop(device);
    let out = run(&["completions", "bash"]);
    assert_eq!(
        out.stderr.trim_end(),
        "netlat: dropped the restore record of netlat pid 2147483632 for net.ipv4.conf.nlt0/100.rp_filter: the key no longer exists (its device is gone?)"
    );
    assert!(!record.exists());
    let out = run(&["completions", "bash"]);
    assert_eq!(out.stderr, "", "said once");
}
