//! Types and constants that the eBPF programs and userspace both see.
//!
//! Everything here is `#[repr(C)]` without padding so userspace can read map
//! values straight into these structs (`aya::Pod`, behind the `user` feature).
#![no_std]

pub mod buckets;
pub mod names;
pub mod net_rx;

/// Sub-buckets per power of two. 4 keeps percentiles within ~19% of the true
/// value while a whole per-CPU slot stays at a few KiB.
pub const SUB_BUCKET_BITS: u32 = 2;
pub const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
/// Durations are nanoseconds in a u64, so 64 powers of two cover every value.
pub const BUCKETS: usize = 64 * SUB_BUCKETS;

/// The read-only globals userspace sets when it loads the object
/// (`EbpfLoader::override_global`); netlat-ebpf declares each as a
/// `#[no_mangle] static` of that name (a symbol name cannot come from a
/// constant there, so a test of the built object checks the two agree).
pub mod globals {
    use crate::net_rx::globals as net_rx;

    /// u32: offset of `vec` in the classic irq:softirq_* record.
    pub const SOFTIRQ_VEC_OFFSET: &str = "SOFTIRQ_VEC_OFFSET";
    /// u32: [`crate::sample_filter`].
    pub const SAMPLE_FILTER: &str = "SAMPLE_FILTER";
    /// u64: `flamegraph --slower-than`, ns.
    pub const SLOWER_THAN_NS: &str = "SLOWER_THAN_NS";
    /// u32: `--by rcvbuf`'s offset of `sk_rcvbuf`, or [`crate::NO_OFFSET`].
    pub const RCVBUF_OFFSET: &str = "RCVBUF_OFFSET";
    /// u64: `netlat slow`'s threshold, or [`crate::NO_THRESHOLD`].
    pub const SLOW_THRESHOLD_NS: &str = "SLOW_THRESHOLD_NS";
    /// u32: non-zero for `slow --stack`.
    pub const SLOW_STACKS: &str = "SLOW_STACKS";
    /// [`crate::SockOffsets`].
    pub const SOCK_OFFSETS: &str = "SOCK_OFFSETS";
    /// u64: ns of budget one slow-call record costs on its CPU (10^9 / the
    /// records per second allowed), or 0 for no limit.
    pub const SLOW_RECORD_COST_NS: &str = "SLOW_RECORD_COST_NS";

    /// Every global userspace sets, [`crate::net_rx::globals`] included,
    /// with the size in bytes it writes.
    pub const ALL: &[(&str, usize)] = &[
        (SOFTIRQ_VEC_OFFSET, size_of::<u32>()),
        (SAMPLE_FILTER, size_of::<u32>()),
        (SLOWER_THAN_NS, size_of::<u64>()),
        (RCVBUF_OFFSET, size_of::<u32>()),
        (SLOW_THRESHOLD_NS, size_of::<u64>()),
        (SLOW_STACKS, size_of::<u32>()),
        (SOCK_OFFSETS, size_of::<crate::SockOffsets>()),
        (SLOW_RECORD_COST_NS, size_of::<u64>()),
        (net_rx::NETDEV_BUDGET, size_of::<u32>()),
        (net_rx::NETDEV_BUDGET_JIFFIES, size_of::<u64>()),
        (
            net_rx::NAPI_OFFSETS,
            size_of::<crate::net_rx::NapiOffsets>(),
        ),
        (net_rx::NET_RX_RECORDS, size_of::<u32>()),
    ];
}

/// Every map userspace opens by name, [`net_rx`]'s included.
pub const MAPS: &[&str] = &[
    STATS_MAP,
    EPOCH_MAP,
    ARMED_MAP,
    STARTS_MAP,
    SOFTIRQ_START_MAP,
    STACKS_MAP,
    STACK_COUNTS_MAP,
    SAMPLE_STATS_MAP,
    PENDING_MAP,
    SLOW_EVENTS_MAP,
    SLOW_STATS_MAP,
    SLOW_ENTRIES_MAP,
    ENTRY_FRAMES_MAP,
    net_rx::NET_RX_STATS_MAP,
    net_rx::NET_RX_DEVICES_MAP,
];

/// Start-time stacks of calls in progress, by [`StartKey`].
pub const STARTS_MAP: &str = "STARTS";
/// Per-CPU start time of the NET_RX softirq in progress (0: none).
pub const SOFTIRQ_START_MAP: &str = "SOFTIRQ_START";

/// Name of the per-CPU array holding [`Stats`]. Index = window parity (0
/// or 1), so userspace can start a new `--interval` window and read the
/// other, quiet slot.
pub const STATS_MAP: &str = "STATS";
/// Name of the one-entry array holding the current window number (u32).
/// Programs write to slot `window % EPOCHS`.
pub const EPOCH_MAP: &str = "EPOCH";
pub const EPOCHS: u32 = 2;
/// Name of the one-entry array that userspace sets to 1 once the entry
/// program is attached too. Until then an exit without an entry is only
/// the gap between attaching the exit and the entry program, not news.
pub const ARMED_MAP: &str = "ARMED";

/// Histogram groups of `--by`. STATS holds `GROUPS * EPOCHS` slots, index
/// `group * EPOCHS + epoch`; without `--by` every call is in group 0 and
/// userspace shrinks the map to `EPOCHS` slots.
pub const GROUPS: u32 = 32;

/// The `RCVBUF_OFFSET` global when not grouping by receive buffer.
pub const NO_OFFSET: u32 = u32::MAX;

/// `--by rcvbuf` group of a socket's `sk_rcvbuf`: its bit length, so group
/// g (1..=31) holds buffers in `[2^(g-1), 2^g)`. Group 0: unreadable or
/// not positive.
#[inline(always)]
pub fn rcvbuf_group(sk_rcvbuf: i32) -> u32 {
    if sk_rcvbuf <= 0 {
        0
    } else {
        32 - (sk_rcvbuf as u32).leading_zeros()
    }
}

/// Depth of the per-context stack of entry timestamps. Deeper nesting than
/// this is counted in [`Stats::dropped_entries`] rather than mis-timed.
pub const MAX_DEPTH: usize = 8;

/// `NET_RX_SOFTIRQ` in include/linux/interrupt.h; stable kernel ABI since 2.6.
pub const NET_RX_SOFTIRQ: u32 = 3;

/// Latency statistics of one CPU (one slot of a per-CPU map).
///
/// The counters only ever grow: userspace never writes a slot, it takes
/// the difference between two reads, so a program still writing when a
/// window ends (preempted, on a preemptible kernel) has its call counted in
/// the next read of that slot rather than zeroed or counted twice.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub count: u64,
    pub sum_ns: u64,
    /// Shortest and longest call of window `extremes_of - 1` alone (extremes
    /// cannot be subtracted); meaningless while `extremes_of` is 0.
    pub min_ns: u64,
    pub max_ns: u64,
    /// The window number + 1 that `min_ns` and `max_ns` describe.
    pub extremes_of: u64,
    /// Exits seen without a matching entry once both programs were attached
    /// (see [`ARMED_MAP`]): calls already running then, or whose entry the
    /// kernel skipped. Never timed.
    pub unmatched_exits: u64,
    /// Entries that found the nesting stack full; their calls are not timed.
    pub dropped_entries: u64,
    /// fentry/fexit: calls not timed because the kernel ran only one half
    /// of their entry/exit pair while the thread had other calls in flight
    /// (its recursion guard is per program: a nested call's entry is
    /// skipped while the entry program runs on that CPU, its exit is not).
    /// Seen as an exit that is not the call on top of the thread's stack;
    /// pairing by position alone would time it against the outer call.
    pub mismatched_exits: u64,
    pub buckets: [u64; BUCKETS],
}

impl Stats {
    pub const ZERO: Stats = Stats {
        count: 0,
        sum_ns: 0,
        min_ns: 0,
        max_ns: 0,
        extremes_of: 0,
        unmatched_exits: 0,
        dropped_entries: 0,
        mismatched_exits: 0,
        buckets: [0; BUCKETS],
    };
}

/// Which program context a start time belongs to. Interrupted contexts nest
/// strictly (LIFO), so one stack per key times recursion, nesting and a
/// softirq that interrupts a task inside the same function, all correctly.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartKey {
    /// Thread id, or 0 for the idle tasks.
    pub tid: u32,
    /// CPU for the idle tasks (tid 0 on every CPU), else `u32::MAX`: a real
    /// thread may migrate between entry and exit.
    pub cpu: u32,
}

/// Start times of the calls in progress in one context.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StartStack {
    pub depth: u64,
    pub start_ns: [u64; MAX_DEPTH],
    /// Which call each start belongs to, as its exit can tell: for
    /// fentry/fexit the address of the trampoline's argument block (the
    /// program's context), the same at a call's entry and exit and
    /// different for every call on the stack at once. 0: not known
    /// (kprobes, whose entry and exit run on different frames).
    pub frame: [u64; MAX_DEPTH],
    /// The `--by` group of each call, decided at its entry.
    pub group: [u8; MAX_DEPTH],
}

/// Map of kernel stacks sampled by the flame graph program.
pub const STACKS_MAP: &str = "STACKS";
/// stack id -> samples kept.
pub const STACK_COUNTS_MAP: &str = "STACK_COUNTS";
/// Per-CPU [`SampleStats`].
pub const SAMPLE_STATS_MAP: &str = "SAMPLE_STATS";
/// Samples held per call for `--slower-than` until the call's exit decides.
pub const MAX_PENDING: usize = 32;

/// Which samples the flame graph keeps (the `SAMPLE_FILTER` global).
pub mod sample_filter {
    /// Every sample.
    pub const ALL: u32 = 0;
    /// Only inside the traced function: the sampled thread (or idle CPU) is
    /// in it, or, with the softirq backends, this CPU runs NET_RX. Only one
    /// backend is attached, so the other test is always false.
    pub const DURING: u32 = 1;
}

/// Set in a [`STACK_COUNTS_MAP`] key when the samples counted under it came
/// from calls faster than `--slower-than`: kept apart, so userspace can
/// rank what the slow calls do more than the fast ones. Stack ids stay
/// below the stack map's size, far under this bit.
pub const FAST_CALL: u32 = 1 << 31;
/// Name of the map of samples still held for calls in progress.
pub const PENDING_MAP: &str = "PENDING";

/// What happened to the flame graph's samples, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SampleStats {
    /// Drawn: every sample, the in-call ones (`--during`) or those of slow
    /// calls (`--slower-than`).
    pub kept: u64,
    /// Outside the traced function (`--during`).
    pub outside: u64,
    /// Of calls that turned out faster than `--slower-than`: counted under
    /// [`FAST_CALL`] keys, not drawn.
    pub fast: u64,
    /// The kernel could not record the stack (stack map full or error).
    pub lost_stack: u64,
    /// A call had more samples pending than `MAX_PENDING`.
    pub lost_pending: u64,
    /// The count map was full.
    pub lost_count: u64,
    /// Inside the traced function with a recorded stack (`--during`):
    /// kept, fast, lost to the pending list or the count map, or still
    /// pending when the probes detached.
    pub in_call: u64,
    /// Calls that ended slower / not slower than `--slower-than`.
    pub slow_calls: u64,
    pub fast_calls: u64,
    /// The sampler program's own run time, summed, and its runs: what
    /// each sample adds (at least) to the call it lands in.
    pub cost_ns: u64,
    pub runs: u64,
}

impl SampleStats {
    /// Sums another CPU's counts into these.
    pub fn add(&mut self, o: &SampleStats) {
        self.kept += o.kept;
        self.outside += o.outside;
        self.fast += o.fast;
        self.lost_stack += o.lost_stack;
        self.lost_pending += o.lost_pending;
        self.lost_count += o.lost_count;
        self.in_call += o.in_call;
        self.slow_calls += o.slow_calls;
        self.fast_calls += o.fast_calls;
        self.cost_ns += o.cost_ns;
        self.runs += o.runs;
    }
}

/// Samples waiting for their call to end (`--slower-than`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    pub len: u32,
    pub stack_ids: [u32; MAX_PENDING],
    pub _pad: u32,
}

/// Ring buffer of [`SlowRecord`]s (`netlat slow`).
pub const SLOW_EVENTS_MAP: &str = "SLOW_EVENTS";
/// Per-CPU [`SlowStats`].
pub const SLOW_STATS_MAP: &str = "SLOW_STATS";
/// [`EntryInfo`] of each call in progress, by context and depth; written
/// at entry only by `netlat slow`.
pub const SLOW_ENTRIES_MAP: &str = "SLOW_ENTRIES";
/// The `SLOW_THRESHOLD_NS` global when no slow-call records are wanted.
pub const NO_THRESHOLD: u64 = u64::MAX;
/// `STACK_ID` of a record without a stack (not asked for, or not taken).
pub const NO_STACK: i32 = -1;

/// Where the fields of `struct sock` lie in the running kernel (from its
/// BTF), handed to the entry programs as one load-time global. An offset of
/// [`NO_OFFSET`] means "not available" and that field is not read.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockOffsets {
    /// Whether the first argument is read as a `struct sock *` at all.
    pub enabled: u32,
    pub family: u32,
    /// `skc_num`: the local port, host byte order.
    pub local_port: u32,
    /// `skc_dport`: the remote port, network byte order.
    pub remote_port: u32,
    pub local_v4: u32,
    pub remote_v4: u32,
    pub local_v6: u32,
    pub remote_v6: u32,
    pub rcvbuf: u32,
    /// `sk_backlog.rmem_alloc` (an atomic_t): receive memory in use.
    pub rmem_alloc: u32,
}

impl SockOffsets {
    pub const NONE: SockOffsets = SockOffsets {
        enabled: 0,
        family: NO_OFFSET,
        local_port: NO_OFFSET,
        remote_port: NO_OFFSET,
        local_v4: NO_OFFSET,
        remote_v4: NO_OFFSET,
        local_v6: NO_OFFSET,
        remote_v6: NO_OFFSET,
        rcvbuf: NO_OFFSET,
        rmem_alloc: NO_OFFSET,
    };
}

/// The socket a call was about, read at its entry. `family` 0: none.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockInfo {
    /// AF_INET (2) or AF_INET6 (10), as the kernel stores it.
    pub family: u16,
    pub local_port: u16,
    /// Host byte order (converted in the kernel program).
    pub remote_port: u16,
    pub _pad: u16,
    pub rcvbuf: i32,
    pub rmem_alloc: i32,
    /// IPv4 addresses in the first 4 bytes, network order.
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
}

impl SockInfo {
    pub const NONE: SockInfo = SockInfo {
        family: 0,
        local_port: 0,
        remote_port: 0,
        _pad: 0,
        rcvbuf: 0,
        rmem_alloc: 0,
        local_addr: [0; 16],
        remote_addr: [0; 16],
    };
}

/// What `netlat slow` keeps about one call from its entry to its exit.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EntryInfo {
    pub cpu: u32,
    /// Unused by the kernel ([`NO_STACK`]): entry stacks travel as
    /// [`EntryFrames`].
    pub stack_id: i32,
    pub sock: SockInfo,
}

/// Frames of an entry stack kept at most: the kernel's default
/// `kernel.perf_event_max_stack`.
pub const MAX_FRAMES: usize = 127;

/// A kernel stack taken in place at a call's entry (`netlat slow
/// --stack`), kept per call in progress and copied into that call's
/// record if it is slow. Frames are taken into the entry's own slot, not
/// a shared stack map: nothing is left behind to fill, and two stacks
/// never collide.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EntryFrames {
    /// The call's start (`bpf_ktime_get_ns`): the exit copies the frames
    /// only if they are its own call's.
    pub start_ns: u64,
    /// Frames written, innermost first; 0 when the stack could not be
    /// taken.
    pub len: u64,
    pub ips: [u64; MAX_FRAMES],
}

impl EntryFrames {
    pub const EMPTY: EntryFrames = EntryFrames {
        start_ns: 0,
        len: 0,
        ips: [0; MAX_FRAMES],
    };
}

/// A slow call's record with its entry stack (`netlat slow --stack`):
/// what the ring carries instead of a bare [`SlowRecord`] then.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SlowStackRecord {
    /// `stack_id` is [`NO_STACK`]; userspace names the frames.
    pub record: SlowRecord,
    pub frames: EntryFrames,
}

/// [`EntryFrames`] of each call in progress (function backends).
pub const ENTRY_FRAMES_MAP: &str = "ENTRY_FRAMES";

/// How the CPU was running when the call started.
pub mod call_context {
    /// A task, in process context.
    pub const TASK: u32 = 0;
    /// A softirq; the task fields name the task it interrupted (or ksoftirqd).
    pub const SOFTIRQ: u32 = 1;
    /// A hardware interrupt handler.
    pub const HARDIRQ: u32 = 2;
}

/// One call that lasted at least the threshold (`netlat slow`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SlowRecord {
    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC) at the call's entry.
    pub start_ns: u64,
    pub duration_ns: u64,
    /// The CPU the call started on, and the one it returned on.
    pub cpu: u32,
    pub exit_cpu: u32,
    /// Thread group and thread id of the task running at the exit: the
    /// caller, or the task a softirq interrupted (0: the idle task).
    pub pid: u32,
    pub tid: u32,
    /// [`call_context`].
    pub context: u32,
    /// Softirq vector when `context` is SOFTIRQ (3: NET_RX).
    pub softirq_vec: u32,
    pub comm: [u8; 16],
    pub stack_id: i32,
    pub _pad: u32,
    pub sock: SockInfo,
    /// `net_rx_action` records: what the call did; `entered_ns` 0 when not
    /// asked for or not seen (see `net_rx::NetRxCall`).
    pub net_rx: net_rx::NetRxCall,
}

/// Per-CPU counts of `netlat slow`, kept by the kernel so the summary does
/// not depend on what userspace managed to read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SlowStats {
    /// Calls at or over the threshold.
    pub over: u64,
    /// Of those, records the ring buffer had no room for.
    pub lost: u64,
    /// Entries whose stack could not be taken (`--stack`).
    pub lost_stacks: u64,
    /// Of `over`, records not written because this CPU had used its record
    /// budget (`serve --capture-rate`).
    pub limited: u64,
}

impl SlowStats {
    pub fn add(&mut self, o: &SlowStats) {
        self.over += o.over;
        self.lost += o.lost;
        self.lost_stacks += o.lost_stacks;
        self.limited += o.limited;
    }
}

#[cfg(feature = "user")]
mod pod {
    unsafe impl aya::Pod for super::SockOffsets {}
    unsafe impl aya::Pod for super::SlowRecord {}
    unsafe impl aya::Pod for super::SlowStats {}
    unsafe impl aya::Pod for super::SampleStats {}
    // SAFETY: plain #[repr(C)] integers with no padding.
    unsafe impl aya::Pod for super::Stats {}
    unsafe impl aya::Pod for super::StartKey {}
    unsafe impl aya::Pod for super::StartStack {}
    unsafe impl aya::Pod for super::Pending {}
}
