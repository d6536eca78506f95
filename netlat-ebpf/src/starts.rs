//! Where each context's start times live: written by timing's entries and
//! exits, read by the sampler to know whether a sample landed inside a
//! traced call. Apart from both so that neither reaches into the other.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_smp_processor_id},
    macros::map,
    maps::{HashMap, PerCpuArray},
};
use netlat_common::{StartKey, StartStack};

/// One stack per thread in the function at once; a full map drops entries
/// (counted), it never mis-times.
#[map(name = "STARTS")]
pub(crate) static STARTS: HashMap<StartKey, StartStack> = HashMap::with_max_entries(16384, 0);

/// NET_RX softirqs never nest on one CPU, so one start time per CPU suffices.
#[map(name = "SOFTIRQ_START")]
pub(crate) static SOFTIRQ_START: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The context a start belongs to: the thread, or the CPU for the idle
/// tasks (all thread id 0, see timing.rs).
#[inline(always)]
pub fn key() -> StartKey {
    let tid = bpf_get_current_pid_tgid() as u32;
    let cpu = if tid == 0 {
        // SAFETY: helper without preconditions.
        unsafe { bpf_get_smp_processor_id() }
    } else {
        u32::MAX
    };
    StartKey { tid, cpu }
}

/// Whether the thread (or idle CPU) `key` is inside the traced function.
#[inline(always)]
pub fn in_function(key: StartKey) -> bool {
    // SAFETY: read of a map value.
    unsafe { STARTS.get(key) }.is_some_and(|s| s.depth > 0)
}

/// Whether this CPU is running the NET_RX softirq.
#[inline(always)]
pub fn in_softirq() -> bool {
    SOFTIRQ_START.get(0).is_some_and(|start| *start != 0)
}
