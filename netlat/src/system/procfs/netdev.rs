//! /sys/class/net/IFACE/statistics/*: one decimal counter per file
//! (rx_dropped, tx_errors, ...), and the `device` link that says which bus
//! device (and so which interrupts) an interface has.

use std::{
    collections::BTreeMap,
    path::{Component, Path},
};

use serde::{Deserialize, Serialize};

use super::{ProcError, Root, interrupts::NicNames, read_text};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    /// Bus ids of its device (`0000:00:03.0`, `virtio2`); empty for
    /// virtual interfaces (lo, veth, bridges), which have no interrupts.
    pub bus_ids: Vec<String>,
    /// Every readable counter under `statistics/`, by file name.
    pub stats: BTreeMap<String, u64>,
}

impl Interface {
    pub fn nic_names(&self) -> NicNames {
        NicNames {
            interface: self.name.clone(),
            bus_ids: self.bus_ids.clone(),
        }
    }
}

/// One statistics file's content.
pub fn parse_counter(text: &str) -> Result<u64, ProcError> {
    text.trim()
        .parse()
        .map_err(|_| ProcError::parse("statistics", 1, format!("{:?} is no counter", text.trim())))
}

/// Bus ids from the target of an interface's `device` link, e.g.
/// `../../../0000:00:1f.6` or `../../../virtio2` (whose parent directory,
/// `.../0000:00:03.0/virtio2` once resolved, is its PCI function).
pub fn bus_ids(device_link_target: &Path) -> Vec<String> {
    let names: Vec<&str> = device_link_target
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => n.to_str(),
            _ => None,
        })
        .collect();
    let mut ids = Vec::new();
    if let Some((last, rest)) = names.split_last() {
        ids.push((*last).to_owned());
        // Only virtio devices sit under the PCI function whose MSI chip name
        // carries the address; for a PCI NIC the parent is a bridge, whose
        // own interrupts (PCIe PME, hotplug) are not the NIC's.
        if last.starts_with("virtio")
            && let Some(parent) = rest.last()
        {
            ids.push((*parent).to_owned());
        }
    }
    ids
}

/// Every interface under `root`'s /sys/class/net with its counters. An
/// unreadable counter file is left out of that interface's `stats`.
pub fn read(root: &Root) -> Result<Vec<Interface>, ProcError> {
    let dir = &root.sys_class_net;
    let io = |error| ProcError::Io {
        path: dir.clone(),
        error,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = dir.join(&name);
        let device = std::fs::canonicalize(path.join("device"))
            .map(|p| bus_ids(&p))
            .unwrap_or_default();
        let mut stats = BTreeMap::new();
        if let Ok(files) = std::fs::read_dir(path.join("statistics")) {
            for f in files.flatten() {
                let Some(counter) = f.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if let Ok(v) = read_text(&f.path()).and_then(|t| parse_counter(&t)) {
                    stats.insert(counter, v);
                }
            }
        }
        out.push(Interface {
            name,
            bus_ids: device,
            stats,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_bus_ids() {
        assert_eq!(parse_counter("9914\n").unwrap(), 9914);
        assert!(parse_counter("-1\n").is_err());
        assert!(parse_counter("").is_err());
        assert_eq!(
            bus_ids(Path::new("/sys/devices/pci0000:00/0000:00:03.0/virtio2")),
            ["virtio2", "0000:00:03.0"]
        );
        assert_eq!(
            bus_ids(Path::new(
                "/sys/devices/pci0000:00/0000:00:1c.0/0000:3b:00.0"
            )),
            ["0000:3b:00.0"]
        );
        assert!(bus_ids(Path::new("")).is_empty());
    }

    #[test]
    fn reads_a_fixture_tree() {
        let root = Root::under(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/doctor/tree"
        )));
        let ifaces = read(&root).unwrap();
        let names: Vec<&str> = ifaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "lo"]);
        assert_eq!(ifaces[0].stats["rx_dropped"], 3);
        assert_eq!(ifaces[0].stats["rx_packets"], 9914);
        // "garbage" is left out, not an error.
        assert!(!ifaces[0].stats.contains_key("tx_errors"));
        assert!(ifaces[1].bus_ids.is_empty());
        let missing = Root::under(Path::new("/nonexistent"));
        assert!(read(&missing).unwrap_err().is_not_found());
    }
}
