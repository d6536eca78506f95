//! NET_RX seen whole (`netlat softirq`, `slow net_rx_action`, `serve
//! --softirq`): the wait from the softirq's raise to its entry, and what
//! each call did. Four raw tracepoints, attached only when asked for:
//! softirq_raise, softirq_entry, napi_poll, softirq_exit.
//!
//! handle_softirqs (kernel/softirq.c) clears the pending bits, then runs
//! each raised vector between its softirq_entry and softirq_exit; every
//! `__raise_softirq_irqoff` fires softirq_raise, also when NET_RX is already
//! pending. So the first raise since the last entry is the oldest packet's
//! wait, and net_rx_action's own re-raise when it runs out of budget starts
//! the wait of the call that finishes its work.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_jiffies64, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::map,
    maps::{PerCpuArray, PerCpuHashMap},
};
use netlat_common::{
    BUCKETS, NO_OFFSET, Stats, buckets,
    net_rx::{
        DeviceName, MAX_CALL_DEVICES, NO_DEVICE, NO_WAIT, NapiOffsets, NetRxCall, NetRxState,
        NetRxStats, squeeze,
    },
};

#[unsafe(no_mangle)]
static NETDEV_BUDGET: u32 = 300;
#[unsafe(no_mangle)]
static NETDEV_BUDGET_JIFFIES: u64 = 2;
#[unsafe(no_mangle)]
static NAPI_OFFSETS: NapiOffsets = NapiOffsets::NONE;
#[unsafe(no_mangle)]
static NET_RX_RECORDS: u32 = 0;

#[map(name = "NET_RX_STATE")]
static NET_RX_STATE: PerCpuArray<NetRxState> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "NET_RX_STATS")]
static NET_RX_STATS: PerCpuArray<NetRxStats> = PerCpuArray::with_max_entries(1, 0);

/// A host has few devices; a full map leaves the new one out of the
/// by-device counts (its packets are still in every call's count).
#[map(name = "NET_RX_DEVICES")]
static NET_RX_DEVICES: PerCpuHashMap<DeviceName, u64> = PerCpuHashMap::with_max_entries(64, 0);

#[inline(always)]
fn global<T: Copy>(g: &T) -> T {
    // SAFETY: volatile so the compiler cannot fold the load-time value away.
    unsafe { core::ptr::read_volatile(g) }
}

#[inline(always)]
fn state() -> Option<&'static mut NetRxState> {
    // SAFETY: this CPU's value; softirqs do not nest on a CPU, and a raise
    // from a hard interrupt only touches `raised_ns`.
    NET_RX_STATE.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

#[inline(always)]
fn stats() -> Option<&'static mut NetRxStats> {
    // SAFETY: as in state().
    NET_RX_STATS.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: helper without preconditions.
    unsafe { bpf_ktime_get_ns() }
}

#[inline(always)]
fn jiffies() -> u64 {
    // SAFETY: helper without preconditions (Linux 5.5+; older kernels
    // refuse the program, and userspace says so).
    unsafe { bpf_jiffies64() }
}

/// Adds `value` to a histogram slot (counts only: no windows here).
#[inline(always)]
fn record(s: &mut Stats, value: u64) {
    if s.count == 0 || value < s.min_ns {
        s.min_ns = value;
    }
    if value > s.max_ns {
        s.max_ns = value;
    }
    s.count += 1;
    s.sum_ns += value;
    let i = buckets::index(value);
    if i < BUCKETS {
        s.buckets[i] += 1;
    }
}

#[inline(always)]
pub fn raised() {
    let Some(st) = state() else { return };
    if st.running != 0
        && let Some(s) = stats()
    {
        s.raised_while_running += 1;
    }
    if st.raised_ns == 0 {
        st.raised_ns = now();
    }
}

#[inline(always)]
pub fn entry() {
    let ts = now();
    let Some(st) = state() else { return };
    let mut call = NetRxCall::NONE;
    call.entered_ns = ts;
    if st.raised_ns != 0 {
        call.wait_ns = ts.saturating_sub(st.raised_ns);
    }
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    call.ksoftirqd = u32::from(comm.starts_with(b"ksoftirqd/"));
    st.call = call;
    st.raised_ns = 0;
    st.running = 1;
    st.time_limit = jiffies().wrapping_add(global(&NETDEV_BUDGET_JIFFIES));
}

/// The device behind a `struct napi_struct *`; the backlog has none.
#[inline(always)]
fn device(napi: *const u8) -> DeviceName {
    let o = global(&NAPI_OFFSETS);
    let mut name = DeviceName { name: [0; 16] };
    if o.dev == NO_OFFSET || o.name == NO_OFFSET || napi.is_null() {
        return name;
    }
    // SAFETY: probe reads check the addresses; a bad one reads as zero.
    let dev: *const u8 =
        unsafe { bpf_probe_read_kernel(napi.wrapping_add(o.dev as usize).cast::<*const u8>()) }
            .unwrap_or(core::ptr::null());
    if dev.is_null() {
        name.name[..NO_DEVICE.len()].copy_from_slice(NO_DEVICE);
        return name;
    }
    name.name =
        unsafe { bpf_probe_read_kernel(dev.wrapping_add(o.name as usize).cast::<[u8; 16]>()) }
            .unwrap_or([0; 16]);
    name
}

#[inline(always)]
pub fn polled(napi: *const u8, work: i32) {
    let work = if work > 0 { work as u64 } else { 0 };
    let Some(st) = state() else { return };
    if st.running == 0 {
        if let Some(s) = stats() {
            s.outside_polls += 1;
            s.outside_packets += work;
        }
        return;
    }
    let name = device(napi);
    let call = &mut st.call;
    call.packets += work;
    call.polls += 1;
    // The kernel's own test after each poll (net_rx_action): budget spent,
    // or time_after_eq(jiffies, time_limit).
    call.squeezed = if call.packets >= global(&NETDEV_BUDGET) as u64 {
        squeeze::BUDGET
    } else if jiffies() >= st.time_limit {
        squeeze::TIME
    } else {
        0
    };
    add_device(call, name, work);
    if work > 0 {
        match NET_RX_DEVICES.get_ptr_mut(name) {
            // SAFETY: this CPU's value.
            Some(p) => unsafe { *p += work },
            None => {
                let _ = NET_RX_DEVICES.insert(name, work, 0);
            }
        }
    }
}

#[inline(always)]
fn add_device(call: &mut NetRxCall, name: DeviceName, work: u64) {
    let len = call.devices_len as usize;
    // Constant indices only: older verifiers (5.10, 6.1) lose the bounds of
    // an index computed from `len` and refuse the write.
    for i in 0..MAX_CALL_DEVICES {
        let d = &mut call.devices[i];
        if i < len {
            if d.name == name {
                d.packets += work;
                return;
            }
        } else {
            d.name = name;
            d.packets = work;
            call.devices_len += 1;
            return;
        }
    }
    call.other_packets += work;
}

#[inline(always)]
pub fn exit() {
    let ts = now();
    let Some(st) = state() else { return };
    if st.running == 0 {
        // Running already when netlat attached.
        return;
    }
    st.running = 0;
    st.call.exited_ns = ts;
    let Some(s) = stats() else { return };
    let call = &st.call;
    s.calls += 1;
    s.packets += call.packets;
    s.polls += call.polls as u64;
    if call.ksoftirqd != 0 {
        s.ksoftirqd_calls += 1;
    }
    if call.squeezed != 0 {
        s.squeezed += 1;
        if call.squeezed == squeeze::TIME {
            s.squeezed_time += 1;
        }
    }
    if call.wait_ns == NO_WAIT {
        s.unraised_calls += 1;
    } else {
        record(&mut s.wait, call.wait_ns);
        if call.ksoftirqd != 0 {
            s.ksoftirqd_wait_ns += call.wait_ns;
        }
    }
    record(&mut s.call_packets, call.packets);
    record(&mut s.call_polls, call.polls as u64);
}

/// For a slow-call record of the `net_rx_action` call that started at
/// `start_ns`: that call's figures, or None when they were not asked for or
/// belong to another call (the NET_RX programs attached after it began).
/// The exit program attaches before the entry program, so a call whose
/// entry was seen has `exited_ns` 0 until its exit, and an older call's
/// figures always end before `start_ns`.
#[inline(always)]
pub fn call_of(start_ns: u64, duration_ns: u64) -> Option<NetRxCall> {
    if global(&NET_RX_RECORDS) == 0 {
        return None;
    }
    let call = NET_RX_STATE.get(0)?.call;
    let ends = start_ns.wrapping_add(duration_ns);
    let mine = call.entered_ns != 0
        && call.entered_ns <= ends
        && (call.exited_ns == 0 || call.exited_ns >= start_ns);
    mine.then_some(call)
}
