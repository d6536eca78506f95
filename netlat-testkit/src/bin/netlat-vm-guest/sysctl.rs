//! The guest's sysctls: read, set, and put back however a test ends; and
//! the story's large receive-buffer setting, under which the autotuned
//! generator makes tcp_collapse run long.

use std::time::Duration;

use netlat_testkit::autotuned::Knobs;

pub const RMEM: &str = "net.ipv4.tcp_rmem";
/// "The story of one latency spike"'s setting before and after.
pub const LARGE: &str = "4096 5242880 33554432";
pub const SMALL: &str = "4096 1048576 2097152";
const AUTOCORKING: &str = "net.ipv4.tcp_autocorking";

/// A large-setting cycle takes 5.2-8.7 s of trickle under TCG (6.12 and
/// sid, two guests at once); the default 8 s would give some up.
pub fn story_knobs() -> Knobs {
    Knobs {
        trickle: Duration::from_secs(14),
        ..Knobs::default()
    }
}

/// For sampling: one CPU per flow, as on a NIC with RSS (see
/// `Knobs::pin_cpu`). The experiment's ratios were measured unpinned.
pub fn sampling_knobs() -> Knobs {
    Knobs {
        pin_cpu: Some(0),
        ..story_knobs()
    }
}

fn path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// The value with its whitespace normalised ("4096\t131072" -> "4096 131072").
pub fn read(key: &str) -> String {
    std::fs::read_to_string(path(key))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn write(key: &str, value: &str) -> Result<(), String> {
    std::fs::write(path(key), value).map_err(|e| format!("cannot set {key}={value}: {e}"))
}

/// Puts the keys back when dropped, however the test ends.
pub struct Restore(pub Vec<(&'static str, String)>);

impl Restore {
    pub fn original(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        for (key, value) in &self.0 {
            let _ = write(key, value);
        }
    }
}

/// The story's large tcp_rmem, with autocorking off so the generator's
/// trickle stays tiny segments; both put back when the guard drops.
pub fn large_rmem() -> Result<Restore, String> {
    let restore = Restore(vec![(RMEM, read(RMEM)), (AUTOCORKING, read(AUTOCORKING))]);
    write(AUTOCORKING, "0")?;
    write(RMEM, LARGE)?;
    Ok(restore)
}
