//! `netlat slow`: a record of every call that lasted at least a threshold.
//!
//! The exit compares the duration with `SLOW_THRESHOLD_NS` and only then
//! reserves a ring-buffer record, so a fast call costs one comparison more
//! than `histogram`. What the record needs from the entry (the CPU, the
//! stack, the socket's state) is kept per context and depth in
//! SLOW_ENTRIES, written only when a threshold is set: with the
//! `NO_THRESHOLD` default the verifier sees a constant and drops all of it.

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id,
        bpf_probe_read_kernel,
    },
    macros::map,
    maps::{LruHashMap, PerCpuArray, RingBuf, StackTrace},
    programs::tracing::StackIdContext,
};
use netlat_common::{
    EntryInfo, NET_RX_SOFTIRQ, NO_OFFSET, NO_STACK, NO_THRESHOLD, SlowRecord, SlowStats, SockInfo,
    SockOffsets, StartKey, call_context, net_rx::NetRxCall,
};

/// Set by userspace at load time; `NO_THRESHOLD` outside `netlat slow`.
#[unsafe(no_mangle)]
static SLOW_THRESHOLD_NS: u64 = NO_THRESHOLD;
/// Non-zero: take the kernel stack at each entry (`--stack`).
#[unsafe(no_mangle)]
static SLOW_STACKS: u32 = 0;
/// Where `struct sock` keeps what a record shows, from kernel BTF.
#[unsafe(no_mangle)]
static SOCK_OFFSETS: SockOffsets = SockOffsets::NONE;

/// ns of budget a record costs; 0: every slow call gets its record.
#[unsafe(no_mangle)]
static SLOW_RECORD_COST_NS: u64 = 0;

/// Userspace sizes it (bytes, a power of two of pages).
#[map(name = "SLOW_EVENTS")]
static SLOW_EVENTS: RingBuf = RingBuf::with_byte_size(4096, 0);

#[map(name = "SLOW_STATS")]
static SLOW_STATS: PerCpuArray<SlowStats> = PerCpuArray::with_max_entries(1, 0);

/// A CPU's record budget, a token bucket kept in nanoseconds: time since
/// the last record earns budget, up to one second's worth (the burst), and
/// each record spends `SLOW_RECORD_COST_NS`. A storm of slow calls (a
/// threshold every call crosses) then costs the ring and userspace a fixed
/// rate per CPU, while the kernel still counts every call in `over`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RecordBudget {
    credit_ns: u64,
    last_ns: u64,
}

#[map(name = "RECORD_BUDGET")]
static RECORD_BUDGET: PerCpuArray<RecordBudget> = PerCpuArray::with_max_entries(1, 0);

/// One second of budget: the burst a CPU may spend at once.
const BURST_NS: u64 = 1_000_000_000;

/// Whether this CPU may write one more record at `now_ns`.
#[inline(always)]
fn within_budget(now_ns: u64) -> bool {
    let cost = global(&SLOW_RECORD_COST_NS);
    if cost == 0 {
        return true;
    }
    let Some(b) = RECORD_BUDGET.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: this CPU's value; programs on one CPU do not interleave.
    let b = unsafe { &mut *b };
    // The first record on a CPU finds last_ns 0: a full bucket.
    let earned = now_ns.saturating_sub(b.last_ns);
    let credit = b.credit_ns.saturating_add(earned).min(BURST_NS);
    b.last_ns = now_ns;
    if credit < cost {
        b.credit_ns = credit;
        return false;
    }
    b.credit_ns = credit - cost;
    true
}

/// A call in progress: its context (as in the start-time stacks) and depth.
#[repr(C)]
#[derive(Clone, Copy)]
struct EntryKey {
    tid: u32,
    cpu: u32,
    depth: u32,
}

/// LRU: entries are never removed at exit (one map operation less per
/// call); the oldest make room. Evicting a call still in progress would
/// take more threads inside the function at once than the map holds.
#[map(name = "SLOW_ENTRIES")]
static SLOW_ENTRIES: LruHashMap<EntryKey, EntryInfo> = LruHashMap::with_max_entries(8192, 0);

/// NET_RX softirqs never nest on one CPU: one entry per CPU.
#[map(name = "SOFTIRQ_ENTRY")]
static SOFTIRQ_ENTRY: PerCpuArray<EntryInfo> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "ENTRY_STACKS")]
static ENTRY_STACKS: StackTrace = StackTrace::with_max_entries(8192, 0);

/// Which interrupt context this CPU is in, kept by the context programs
/// below (function backends only: the kernel offers no portable way to
/// read preempt_count from BPF).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CpuContext {
    /// Softirq vector + 1 while one runs, else 0.
    softirq: u32,
    /// Hardware interrupt handlers running (they may nest).
    hardirq: u32,
}

#[map(name = "CPU_CONTEXT")]
static CPU_CONTEXT: PerCpuArray<CpuContext> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
fn global<T: Copy>(g: &T) -> T {
    // SAFETY: volatile so the compiler cannot fold the load-time value away.
    unsafe { core::ptr::read_volatile(g) }
}

#[inline(always)]
fn enabled() -> bool {
    global(&SLOW_THRESHOLD_NS) != NO_THRESHOLD
}

#[inline(always)]
fn cpu() -> u32 {
    // SAFETY: helper without preconditions.
    unsafe { bpf_get_smp_processor_id() }
}

#[inline(always)]
fn stats() -> Option<&'static mut SlowStats> {
    // SAFETY: this CPU's value, valid for the program's run.
    SLOW_STATS.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

#[inline(always)]
fn stack_id<C: StackIdContext>(ctx: &C) -> i32 {
    if global(&SLOW_STACKS) == 0 {
        return NO_STACK;
    }
    match ctx.get_stackid(&ENTRY_STACKS, 0) {
        Ok(id) => id as i32,
        Err(_) => {
            if let Some(s) = stats() {
                s.lost_stacks += 1;
            }
            NO_STACK
        }
    }
}

#[inline(always)]
fn read<T: Copy + Default>(sk: *const u8, offset: u32) -> T {
    if offset == NO_OFFSET {
        return T::default();
    }
    // SAFETY: probe_read checks the address; a bad one reads as zero.
    unsafe { bpf_probe_read_kernel(sk.wrapping_add(offset as usize).cast::<T>()) }
        .unwrap_or_default()
}

/// AF_INET and AF_INET6 (include/linux/socket.h).
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

#[inline(always)]
fn sock_info(first_arg: impl FnOnce() -> *const u8) -> SockInfo {
    let o = global(&SOCK_OFFSETS);
    let mut info = SockInfo::NONE;
    // Read the argument only for a socket function: a function without
    // arguments (net_rx_action since Linux 6.11) has no argument slot, and
    // fentry's verifier refuses a program that reads one.
    if o.enabled == 0 {
        return info;
    }
    let sk = first_arg();
    if sk.is_null() {
        return info;
    }
    info.family = read::<u16>(sk, o.family);
    info.local_port = read::<u16>(sk, o.local_port);
    info.remote_port = u16::from_be(read::<u16>(sk, o.remote_port));
    info.rcvbuf = read::<i32>(sk, o.rcvbuf);
    info.rmem_alloc = read::<i32>(sk, o.rmem_alloc);
    if info.family == AF_INET {
        info.local_addr[..4].copy_from_slice(&read::<[u8; 4]>(sk, o.local_v4));
        info.remote_addr[..4].copy_from_slice(&read::<[u8; 4]>(sk, o.remote_v4));
    } else if info.family == AF_INET6 {
        info.local_addr = read::<[u8; 16]>(sk, o.local_v6);
        info.remote_addr = read::<[u8; 16]>(sk, o.remote_v6);
    }
    info
}

/// A function backend's entry pushed its start at `depth` for `key`.
#[inline(always)]
pub fn function_entry<C: StackIdContext>(
    ctx: &C,
    key: StartKey,
    depth: u32,
    first_arg: impl FnOnce() -> *const u8,
) {
    if !enabled() {
        return;
    }
    let entry = EntryInfo {
        cpu: cpu(),
        stack_id: stack_id(ctx),
        sock: sock_info(first_arg),
    };
    let key = EntryKey {
        tid: key.tid,
        cpu: key.cpu,
        depth,
    };
    // A full map evicts the oldest entry; this call's record then lacks
    // its entry details (cpu, stack, socket), never its timing.
    let _ = SLOW_ENTRIES.insert(key, entry, 0);
}

/// A function backend's call at `depth` for `key` ended.
#[inline(always)]
pub fn function_exit(key: StartKey, depth: u32, start_ns: u64, duration_ns: u64) {
    if !enabled() || duration_ns < global(&SLOW_THRESHOLD_NS) {
        return;
    }
    let key = EntryKey {
        tid: key.tid,
        cpu: key.cpu,
        depth,
    };
    // SAFETY: read of a map value, copied out at once.
    let entry = unsafe { SLOW_ENTRIES.get(key) }.copied();
    let (context, vec) = match CPU_CONTEXT.get(0) {
        Some(c) if c.hardirq > 0 => (call_context::HARDIRQ, 0),
        Some(c) if c.softirq > 0 => (call_context::SOFTIRQ, c.softirq - 1),
        _ => (call_context::TASK, 0),
    };
    emit(start_ns, duration_ns, entry, context, vec);
}

/// Only `--stack` needs anything from a softirq's entry: a softirq never
/// migrates, so its CPU at the exit is its CPU, and it takes no socket.
/// Skipping the write otherwise keeps `slow net_rx_action` within a few ns
/// of `histogram` per call.
#[inline(always)]
pub fn softirq_entry<C: StackIdContext>(ctx: &C) {
    if !enabled() || global(&SLOW_STACKS) == 0 {
        return;
    }
    if let Some(e) = SOFTIRQ_ENTRY.get_ptr_mut(0) {
        // SAFETY: this CPU's value.
        unsafe {
            *e = EntryInfo {
                cpu: cpu(),
                stack_id: stack_id(ctx),
                sock: SockInfo::NONE,
            }
        };
    }
}

#[inline(always)]
pub fn softirq_exit(start_ns: u64, duration_ns: u64) {
    if !enabled() || duration_ns < global(&SLOW_THRESHOLD_NS) {
        return;
    }
    let entry = if global(&SLOW_STACKS) != 0 {
        SOFTIRQ_ENTRY.get(0).copied()
    } else {
        None
    };
    emit(
        start_ns,
        duration_ns,
        entry,
        call_context::SOFTIRQ,
        NET_RX_SOFTIRQ,
    );
}

#[inline(always)]
fn emit(start_ns: u64, duration_ns: u64, entry: Option<EntryInfo>, context: u32, vec: u32) {
    let Some(stats) = stats() else { return };
    stats.over += 1;
    if !within_budget(start_ns.wrapping_add(duration_ns)) {
        stats.limited += 1;
        return;
    }
    let Some(mut slot) = SLOW_EVENTS.reserve::<SlowRecord>(0) else {
        stats.lost += 1;
        return;
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    let exit_cpu = cpu();
    let (entry_cpu, stack_id, sock) = match entry {
        Some(e) => (e.cpu, e.stack_id, e.sock),
        None => (exit_cpu, NO_STACK, SockInfo::NONE),
    };
    let net_rx = crate::net_rx::call_of(start_ns, duration_ns).unwrap_or(NetRxCall::NONE);
    slot.write(SlowRecord {
        start_ns,
        duration_ns,
        cpu: entry_cpu,
        exit_cpu,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        context,
        softirq_vec: vec,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
        stack_id,
        _pad: 0,
        sock,
        net_rx,
    });
    slot.submit(0);
}

// The context programs: attached beside a function backend by `netlat slow`.

#[inline(always)]
pub fn context_update(f: impl FnOnce(&mut CpuContext)) {
    if let Some(c) = CPU_CONTEXT.get_ptr_mut(0) {
        // SAFETY: this CPU's value; programs on one CPU do not interleave.
        f(unsafe { &mut *c });
    }
}

#[inline(always)]
pub fn softirq_started(vec: u32) {
    context_update(|c| c.softirq = vec + 1);
}

#[inline(always)]
pub fn softirq_ended() {
    context_update(|c| c.softirq = 0);
}

#[inline(always)]
pub fn hardirq_started() {
    context_update(|c| c.hardirq += 1);
}

#[inline(always)]
pub fn hardirq_ended() {
    context_update(|c| c.hardirq = c.hardirq.saturating_sub(1));
}
