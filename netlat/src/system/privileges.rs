//! Whether this process may load and attach eBPF programs.

/// Capability bits from include/uapi/linux/capability.h.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Parses the effective capability mask from /proc/self/status text.
pub fn effective_caps(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// Tracing needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN (kernels before
/// 5.8 know only the latter).
pub fn can_trace(caps: u64) -> bool {
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    (has(CAP_BPF) && has(CAP_PERFMON)) || has(CAP_SYS_ADMIN)
}

pub const NOT_ROOT: &str = "netlat needs root to load eBPF programs (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN): run it with sudo";

/// Checks this process; unreadable status counts as allowed so the kernel's
/// own answer decides.
pub fn check() -> Result<(), &'static str> {
    match std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| effective_caps(&s))
    {
        Some(caps) if !can_trace(caps) => Err(NOT_ROOT),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_capeff_and_decides() {
        let root = "Name:\tnetlat\nCapEff:\t000001ffffffffff\n";
        assert!(can_trace(effective_caps(root).unwrap()));
        let user = "CapEff:\t0000000000000000\n";
        assert!(!can_trace(effective_caps(user).unwrap()));
        let bpf_only = format!("CapEff:\t{:016x}\n", 1u64 << CAP_BPF);
        assert!(!can_trace(effective_caps(&bpf_only).unwrap()));
        let bpf_perfmon = format!(
            "CapEff:\t{:016x}\n",
            (1u64 << CAP_BPF) | (1u64 << CAP_PERFMON)
        );
        assert!(can_trace(effective_caps(&bpf_perfmon).unwrap()));
        assert_eq!(effective_caps("Name: x\n"), None);
    }
}
