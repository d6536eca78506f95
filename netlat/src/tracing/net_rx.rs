//! The NET_RX programs as userspace sees them: their load-time settings
//! (the host's budgets and device-name offsets), attaching them beside the
//! backend that times net_rx_action, and reading what they counted.

use anyhow::{Context as _, Result};
use aya::{
    Ebpf,
    maps::{PerCpuArray, PerCpuHashMap},
    programs::RawTracePoint,
};
use netlat_common::names::programs;
use netlat_common::{
    NO_OFFSET,
    net_rx::{DeviceName, NET_RX_DEVICES_MAP, NET_RX_STATS_MAP, NapiOffsets, NetRxStats},
};

use crate::system::procfs::{Root, sysctl, timer_list};
use crate::tracing::kernel_btf::{KernelBtf, VMLINUX};

/// The function these programs describe.
pub const NET_RX_ACTION: &str = "net_rx_action";

/// `(program, tracepoint)`, in attach order: the exit first and the entry
/// last, so a call whose entry was seen has its polls and exit seen too.
const PROGRAMS: [(&str, &str); 4] = [
    (programs::NETRX_EXIT, "softirq_exit"),
    (programs::NETRX_POLL, "napi_poll"),
    (programs::NETRX_RAISE, "softirq_raise"),
    (programs::NETRX_ENTRY, "softirq_entry"),
];

// Where the settings go at load time is the loader's; what they are on
// this host is found here.
pub use super::backend::attach::NetRxSettings;

impl NetRxSettings {
    /// Reads the budgets, measures HZ (100 ms) and finds the device name
    /// in the kernel's BTF. What cannot be read falls back to the kernel
    /// defaults (300 packets, 2000 us at 250 Hz) or to unnamed devices.
    pub fn for_this_host(records: bool) -> NetRxSettings {
        let root = Root::host();
        let read = |key| sysctl::read_u64_at(&root, key).ok().flatten();
        let budget = read("net.core.netdev_budget").unwrap_or(300);
        let usecs = read("net.core.netdev_budget_usecs").unwrap_or(2000);
        let hz = timer_list::measure_hz(std::time::Duration::from_millis(100)).unwrap_or(250);
        NetRxSettings {
            budget: u32::try_from(budget).unwrap_or(u32::MAX),
            budget_jiffies: timer_list::usecs_to_jiffies(usecs, hz),
            napi: napi_offsets(),
            records,
        }
    }
}

fn napi_offsets() -> NapiOffsets {
    let Ok(btf) = KernelBtf::open(std::path::Path::new(VMLINUX)) else {
        return NapiOffsets::NONE;
    };
    let offset = |s, m| btf.member(s, m).map_or(NO_OFFSET, |m| m.offset);
    NapiOffsets {
        dev: offset("napi_struct", "dev"),
        name: offset("net_device", "name"),
    }
}

/// Loads and attaches the four programs; they come off with the object.
pub fn attach(ebpf: &mut Ebpf) -> Result<()> {
    for (name, tracepoint) in PROGRAMS {
        let program: &mut RawTracePoint = ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing from the eBPF object"))?
            .try_into()?;
        program.load().with_context(|| {
            format!("the kernel refused {name} (NET_RX figures need Linux 5.5 or later)")
        })?;
        program
            .attach(tracepoint)
            .with_context(|| format!("cannot attach to the {tracepoint} tracepoint"))?;
    }
    Ok(())
}

/// Detaches them, entry first, so the figures read afterwards are final.
pub fn detach(ebpf: &mut Ebpf) -> Result<()> {
    for (name, _) in PROGRAMS.iter().rev() {
        if let Some(aya::programs::Program::RawTracePoint(p)) = ebpf.program_mut(name) {
            p.unload()
                .with_context(|| format!("cannot detach {name}"))?;
        }
    }
    Ok(())
}

/// Each CPU's counts, indexed by CPU id.
pub fn stats(ebpf: &Ebpf) -> Result<Vec<NetRxStats>> {
    let map: PerCpuArray<_, NetRxStats> = PerCpuArray::try_from(
        ebpf.map(NET_RX_STATS_MAP)
            .context("NET_RX_STATS map missing")?,
    )?;
    Ok(map
        .get(&0, 0)
        .context("cannot read the NET_RX counts")?
        .iter()
        .copied()
        .collect())
}

/// Packets per device and CPU: `(device, per-CPU packets)`.
pub fn devices(ebpf: &Ebpf) -> Result<Vec<(String, Vec<u64>)>> {
    let map: PerCpuHashMap<_, DeviceName, u64> = PerCpuHashMap::try_from(
        ebpf.map(NET_RX_DEVICES_MAP)
            .context("NET_RX_DEVICES map missing")?,
    )?;
    let mut out = Vec::new();
    for entry in map.iter() {
        let (name, per_cpu) = entry.context("cannot read the NET_RX device counts")?;
        out.push((
            crate::model::net_rx::device_name(&name),
            per_cpu.iter().copied().collect(),
        ));
    }
    out.sort();
    Ok(out)
}
