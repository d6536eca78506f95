//! Types and constants that the eBPF programs and userspace both see.
//!
//! Everything here is `#[repr(C)]` without padding so userspace can read map
//! values straight into these structs (`aya::Pod`, behind the `user` feature).
#![no_std]

pub mod buckets;

/// Sub-buckets per power of two. 4 keeps percentiles within ~19% of the true
/// value while a whole per-CPU slot stays at a few KiB.
pub const SUB_BUCKET_BITS: u32 = 2;
pub const SUB_BUCKETS: usize = 1 << SUB_BUCKET_BITS;
/// Durations are nanoseconds in a u64, so 64 powers of two cover every value.
pub const BUCKETS: usize = 64 * SUB_BUCKETS;

/// Name of the per-CPU array holding [`Stats`]. Index = epoch (0 or 1), so
/// userspace can flip the epoch and read a quiet slot for `--interval`.
pub const STATS_MAP: &str = "STATS";
/// Name of the one-entry array holding the current epoch.
pub const EPOCH_MAP: &str = "EPOCH";
pub const EPOCHS: u32 = 2;

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
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub count: u64,
    pub sum_ns: u64,
    /// 0 while `count == 0`; userspace must not read it then.
    pub min_ns: u64,
    pub max_ns: u64,
    /// Exits seen without a matching entry: calls already running when the
    /// probes attached, or whose entry the kernel skipped. Never timed.
    pub unmatched_exits: u64,
    /// Entries that found the nesting stack full; their calls are not timed.
    pub dropped_entries: u64,
    pub buckets: [u64; BUCKETS],
}

impl Stats {
    pub const ZERO: Stats = Stats {
        count: 0,
        sum_ns: 0,
        min_ns: 0,
        max_ns: 0,
        unmatched_exits: 0,
        dropped_entries: 0,
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

#[cfg(feature = "user")]
mod pod {
    unsafe impl aya::Pod for super::SampleStats {}
    // SAFETY: plain #[repr(C)] integers with no padding.
    unsafe impl aya::Pod for super::Stats {}
    unsafe impl aya::Pod for super::StartKey {}
    unsafe impl aya::Pod for super::StartStack {}
    unsafe impl aya::Pod for super::Pending {}
}
