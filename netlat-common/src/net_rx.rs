//! NET_RX seen whole: how long the softirq waited after it was raised, and
//! what each `net_rx_action` call did (packets, polls, devices, whether it
//! ran out of budget, whether ksoftirqd ran it).
//!
//! Kept from the tracepoints alone (irq:softirq_raise, irq:softirq_entry/
//! exit, napi:napi_poll), so it works where kprobes do not. Softirqs do not
//! migrate, so every value is per CPU and needs no locking.

use crate::Stats;

/// Per-CPU [`NetRxState`]: the raise and the call in progress.
pub const NET_RX_STATE_MAP: &str = "NET_RX_STATE";
/// Per-CPU [`NetRxStats`]: counts and histograms since attaching.
pub const NET_RX_STATS_MAP: &str = "NET_RX_STATS";
/// Per-CPU hash of [`DeviceName`] -> packets polled.
pub const NET_RX_DEVICES_MAP: &str = "NET_RX_DEVICES";
/// Devices a [`NetRxCall`] names one by one; packets of further devices
/// are summed in `other_packets`.
pub const MAX_CALL_DEVICES: usize = 4;
/// `wait_ns` of a call whose raise was not seen (it came before netlat
/// attached, or between the kernel clearing the pending bits and this
/// call's entry, when the previous call took it): counted in
/// `unraised_calls`, never timed.
pub const NO_WAIT: u64 = u64::MAX;
/// Device name of the per-CPU backlog (RPS, loopback, netif_rx), which has
/// no `net_device`: the kernel's napi_poll tracepoint prints "(no_device)".
pub const NO_DEVICE: &[u8] = b"(no_device)";

/// The load-time globals of these programs (`EbpfLoader::override_global`).
pub mod globals {
    /// u32: `net.core.netdev_budget`, packets per call.
    pub const NETDEV_BUDGET: &str = "NETDEV_BUDGET";
    /// u64: `net.core.netdev_budget_usecs` in jiffies, as the kernel
    /// rounds it (`usecs_to_jiffies`).
    pub const NETDEV_BUDGET_JIFFIES: &str = "NETDEV_BUDGET_JIFFIES";
    /// [`super::NapiOffsets`].
    pub const NAPI_OFFSETS: &str = "NAPI_OFFSETS";
    /// u32: non-zero when `netlat slow net_rx_action` wants each record to
    /// carry its call's [`super::NetRxCall`].
    pub const NET_RX_RECORDS: &str = "NET_RX_RECORDS";
}

/// Why a call ended with work left (`time_squeeze` in softnet_stat).
pub mod squeeze {
    /// The packets polled reached `netdev_budget`.
    pub const BUDGET: u32 = 1;
    /// The call ran past `netdev_budget_usecs`.
    pub const TIME: u32 = 2;
}

/// Where the device name lies behind a `struct napi_struct *`, from the
/// kernel's BTF; [`crate::NO_OFFSET`]: not known, names read as empty.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NapiOffsets {
    /// `napi_struct.dev`.
    pub dev: u32,
    /// `net_device.name`.
    pub name: u32,
}

impl NapiOffsets {
    pub const NONE: NapiOffsets = NapiOffsets {
        dev: crate::NO_OFFSET,
        name: crate::NO_OFFSET,
    };
}

/// A network device name (IFNAMSIZ bytes, NUL padded).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceName {
    pub name: [u8; 16],
}

/// Packets one call polled from one device.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevicePackets {
    pub name: DeviceName,
    pub packets: u64,
}

impl DevicePackets {
    pub const NONE: DevicePackets = DevicePackets {
        name: DeviceName { name: [0; 16] },
        packets: 0,
    };
}

/// What one `net_rx_action` call did, as far as it has run.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetRxCall {
    /// `bpf_ktime_get_ns` at its softirq_entry, and at its softirq_exit
    /// (0 while it runs): a slow-call record takes this call only when it
    /// is the one the record times.
    pub entered_ns: u64,
    pub exited_ns: u64,
    /// Oldest raise not yet served -> entry, or [`NO_WAIT`].
    pub wait_ns: u64,
    /// Sum of the napi_poll `work` of the call.
    pub packets: u64,
    pub polls: u32,
    /// [`squeeze`] bits, as of its last poll.
    pub squeezed: u32,
    /// Non-zero when a ksoftirqd thread ran it (else on interrupt exit or
    /// at a bottom-half enable in a task).
    pub ksoftirqd: u32,
    pub devices_len: u32,
    /// Packets of devices beyond the first [`MAX_CALL_DEVICES`].
    pub other_packets: u64,
    pub devices: [DevicePackets; MAX_CALL_DEVICES],
}

impl NetRxCall {
    pub const NONE: NetRxCall = NetRxCall {
        entered_ns: 0,
        exited_ns: 0,
        wait_ns: NO_WAIT,
        packets: 0,
        polls: 0,
        squeezed: 0,
        ksoftirqd: 0,
        devices_len: 0,
        other_packets: 0,
        devices: [DevicePackets::NONE; MAX_CALL_DEVICES],
    };
}

/// One CPU's NET_RX state between programs.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NetRxState {
    /// Oldest raise since the last entry; 0: none seen. Set only when 0,
    /// so the wait counts from the first packet's raise.
    pub raised_ns: u64,
    /// `bpf_jiffies64` past which this call is squeezed by time.
    pub time_limit: u64,
    /// Non-zero between this CPU's NET_RX entry and exit.
    pub running: u32,
    pub _pad: u32,
    pub call: NetRxCall,
}

/// One CPU's NET_RX counts since attaching; they only grow.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NetRxStats {
    /// Calls whose entry and exit were both seen.
    pub calls: u64,
    pub ksoftirqd_calls: u64,
    /// The waits of the calls ksoftirqd ran, summed (ns): how much of the
    /// waiting was for ksoftirqd (a starved one makes it most of it).
    pub ksoftirqd_wait_ns: u64,
    /// Calls that ended squeezed, and of those by time alone.
    pub squeezed: u64,
    pub squeezed_time: u64,
    pub packets: u64,
    pub polls: u64,
    /// Raises while a call ran on this CPU (served by the next call).
    pub raised_while_running: u64,
    /// Calls without a seen raise: their wait is not timed.
    pub unraised_calls: u64,
    /// napi_poll outside a NET_RX call (busy polling, threaded NAPI):
    /// not in any call's packets.
    pub outside_polls: u64,
    pub outside_packets: u64,
    /// Raise -> entry, ns.
    pub wait: Stats,
    /// Packets and polls of each call (the bucket layout used for counts).
    pub call_packets: Stats,
    pub call_polls: Stats,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] integers; the padding is explicit.
    unsafe impl aya::Pod for super::NapiOffsets {}
    unsafe impl aya::Pod for super::DeviceName {}
    unsafe impl aya::Pod for super::NetRxStats {}
    unsafe impl aya::Pod for super::NetRxState {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records and map values are read straight into these structs, so
    /// they must hold no implicit padding.
    #[test]
    fn no_implicit_padding() {
        assert_eq!(size_of::<DevicePackets>(), 24);
        assert_eq!(
            size_of::<NetRxCall>(),
            8 * 4 + 4 * 4 + 8 + 24 * MAX_CALL_DEVICES
        );
        assert_eq!(
            size_of::<NetRxState>(),
            8 * 2 + 4 * 2 + size_of::<NetRxCall>()
        );
    }
}
