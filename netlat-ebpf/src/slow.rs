//! `netlat slow`: a record of every call that lasted at least a threshold.
//!
//! The exit compares the duration with `SLOW_THRESHOLD_NS` and only then
//! reserves a ring-buffer record, so a fast call costs one comparison more
//! than `histogram`. What the record needs from the entry (the CPU, the
//! stack, the socket's state) is kept per context and depth in
//! SLOW_ENTRIES, written only when a threshold is set: with the
//! `NO_THRESHOLD` default the verifier sees a constant and drops all of it.
//!
//! `--stack` takes each entry's stack in place, into the call's own slot
//! (ENTRY_FRAMES, SOFTIRQ_FRAMES), tagged with the call's start; a slow
//! call's exit copies its own frames into its record. A shared stack map
//! (get_stackid) instead kept every fast call's stack until userspace
//! emptied it, and lost stacks to its hash collisions.

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id,
        bpf_probe_read_kernel, generated,
    },
    macros::map,
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
};
use netlat_common::{
    EntryFrames, EntryInfo, MAX_FRAMES, NET_RX_SOFTIRQ, NO_OFFSET, NO_STACK, NO_THRESHOLD,
    SlowRecord, SlowStackRecord, SlowStats, SockInfo, SockOffsets, StartKey, call_context,
    net_rx::NetRxCall,
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

/// Entry stacks of calls in progress (function backends), by the same key
/// as SLOW_ENTRIES. Userspace sizes it: 4096 with `--stack`, else 1.
#[map(name = "ENTRY_FRAMES")]
static ENTRY_FRAMES: LruHashMap<EntryKey, EntryFrames> = LruHashMap::with_max_entries(1, 0);

/// The NET_RX softirq's entry stack, per CPU (it never nests).
#[map(name = "SOFTIRQ_FRAMES")]
static SOFTIRQ_FRAMES: PerCpuArray<EntryFrames> = PerCpuArray::with_max_entries(1, 0);

/// A zeroed value to create ENTRY_FRAMES slots from: at ~1 KB it cannot
/// be built on the 512-byte BPF stack.
#[map(name = "BLANK_FRAMES")]
static BLANK_FRAMES: Array<EntryFrames> = Array::with_max_entries(1, 0);

const FRAME_BYTES: u32 = (MAX_FRAMES * 8) as u32;

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
fn stacks_on() -> bool {
    global(&SLOW_STACKS) != 0
}

/// Takes the current kernel stack into `f`, tagged with the call's start.
#[inline(always)]
fn take_frames<C: EbpfContext>(ctx: &C, f: *mut EntryFrames, start_ns: u64) {
    // SAFETY: `f` is a map value of this CPU's call; the helper writes at
    // most FRAME_BYTES into its frames.
    unsafe {
        let n =
            generated::bpf_get_stack(ctx.as_ptr(), (*f).ips.as_mut_ptr().cast(), FRAME_BYTES, 0);
        (*f).start_ns = start_ns;
        (*f).len = if n > 0 { n as u64 / 8 } else { 0 };
    }
}

/// The entry stack slot of a function call in progress, made if missing.
#[inline(always)]
fn frames_slot(key: &EntryKey) -> Option<*mut EntryFrames> {
    if let Some(f) = ENTRY_FRAMES.get_ptr_mut(key) {
        return Some(f);
    }
    let blank = BLANK_FRAMES.get(0)?;
    ENTRY_FRAMES.insert(key, blank, 0).ok()?;
    ENTRY_FRAMES.get_ptr_mut(key)
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

/// A function backend's entry pushed `start_ns` at `depth` for `key`.
#[inline(always)]
pub fn function_entry<C: EbpfContext>(
    ctx: &C,
    key: StartKey,
    depth: u32,
    start_ns: u64,
    first_arg: impl FnOnce() -> *const u8,
) {
    if !enabled() {
        return;
    }
    let entry = EntryInfo {
        cpu: cpu(),
        stack_id: NO_STACK,
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
    if stacks_on() {
        // No slot (the map is full of calls in progress): the exit finds
        // no frames of its own and counts the stack lost.
        if let Some(f) = frames_slot(&key) {
            take_frames(ctx, f, start_ns);
        }
    }
}

/// A function backend's call at `depth` for `key` ended.
#[inline(always)]
pub fn function_exit(key: StartKey, depth: u32, start_ns: u64, duration_ns: u64) {
    if !enabled() {
        return;
    }
    let key = EntryKey {
        tid: key.tid,
        cpu: key.cpu,
        depth,
    };
    if duration_ns >= global(&SLOW_THRESHOLD_NS) {
        // SAFETY: read of a map value, copied out at once.
        let entry = unsafe { SLOW_ENTRIES.get(key) }.copied();
        let (context, vec) = match CPU_CONTEXT.get(0) {
            Some(c) if c.hardirq > 0 => (call_context::HARDIRQ, 0),
            Some(c) if c.softirq > 0 => (call_context::SOFTIRQ, c.softirq - 1),
            _ => (call_context::TASK, 0),
        };
        let frames = if stacks_on() {
            ENTRY_FRAMES.get_ptr(key)
        } else {
            None
        };
        emit(start_ns, duration_ns, entry, frames, context, vec);
    }
    if stacks_on() {
        // The map then holds only calls in progress, far below its size:
        // an LRU map under pressure evicts only roughly the oldest, and a
        // run that churns threads (a new key each) once lost a call's
        // frames between its entry and its exit.
        let _ = ENTRY_FRAMES.remove(key);
    }
}

/// Only `--stack` needs anything from a softirq's entry: a softirq never
/// migrates, so its CPU at the exit is its CPU, and it takes no socket.
/// Skipping the write otherwise keeps `slow net_rx_action` within a few ns
/// of `histogram` per call.
#[inline(always)]
pub fn softirq_entry<C: EbpfContext>(ctx: &C, start_ns: u64) {
    if !enabled() || !stacks_on() {
        return;
    }
    if let Some(e) = SOFTIRQ_ENTRY.get_ptr_mut(0) {
        // SAFETY: this CPU's value.
        unsafe {
            *e = EntryInfo {
                cpu: cpu(),
                stack_id: NO_STACK,
                sock: SockInfo::NONE,
            }
        };
    }
    if let Some(f) = SOFTIRQ_FRAMES.get_ptr_mut(0) {
        take_frames(ctx, f, start_ns);
    }
}

#[inline(always)]
pub fn softirq_exit(start_ns: u64, duration_ns: u64) {
    if !enabled() || duration_ns < global(&SLOW_THRESHOLD_NS) {
        return;
    }
    let (entry, frames) = if stacks_on() {
        (SOFTIRQ_ENTRY.get(0).copied(), SOFTIRQ_FRAMES.get_ptr(0))
    } else {
        (None, None)
    };
    emit(
        start_ns,
        duration_ns,
        entry,
        frames,
        call_context::SOFTIRQ,
        NET_RX_SOFTIRQ,
    );
}

#[inline(always)]
fn emit(
    start_ns: u64,
    duration_ns: u64,
    entry: Option<EntryInfo>,
    frames: Option<*const EntryFrames>,
    context: u32,
    vec: u32,
) {
    let Some(stats) = stats() else { return };
    stats.over += 1;
    if !within_budget(start_ns.wrapping_add(duration_ns)) {
        stats.limited += 1;
        return;
    }
    let record = record(start_ns, duration_ns, entry, context, vec);
    if !stacks_on() {
        let Some(mut slot) = SLOW_EVENTS.reserve::<SlowRecord>(0) else {
            stats.lost += 1;
            return;
        };
        slot.write(record);
        slot.submit(0);
        return;
    }
    let Some(mut slot) = SLOW_EVENTS.reserve::<SlowStackRecord>(0) else {
        stats.lost += 1;
        return;
    };
    let out = slot.as_mut_ptr();
    // SAFETY: `out` is the reserved record, `frames` a map value of this
    // call's context; the copy is of exactly the frames' size.
    unsafe {
        (*out).record = record;
        let own = frames.filter(|f| (**f).start_ns == start_ns && (**f).len > 0);
        match own {
            Some(f) => {
                (*out).frames.start_ns = start_ns;
                (*out).frames.len = (*f).len;
                let copied = generated::bpf_probe_read_kernel(
                    (*out).frames.ips.as_mut_ptr().cast(),
                    FRAME_BYTES,
                    (*f).ips.as_ptr().cast(),
                );
                if copied != 0 {
                    (*out).frames.len = 0;
                }
            }
            None => {
                (*out).frames.start_ns = start_ns;
                (*out).frames.len = 0;
            }
        }
        if (*out).frames.len == 0 {
            stats.lost_stacks += 1;
        }
    }
    slot.submit(0);
}

#[inline(always)]
fn record(
    start_ns: u64,
    duration_ns: u64,
    entry: Option<EntryInfo>,
    context: u32,
    vec: u32,
) -> SlowRecord {
    let pid_tgid = bpf_get_current_pid_tgid();
    let exit_cpu = cpu();
    let (entry_cpu, sock) = match entry {
        Some(e) => (e.cpu, e.sock),
        None => (exit_cpu, SockInfo::NONE),
    };
    let net_rx = crate::net_rx::call_of(start_ns, duration_ns).unwrap_or(NetRxCall::NONE);
    SlowRecord {
        start_ns,
        duration_ns,
        cpu: entry_cpu,
        exit_cpu,
        pid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        context,
        softirq_vec: vec,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
        stack_id: NO_STACK,
        _pad: 0,
        sock,
        net_rx,
    }
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
