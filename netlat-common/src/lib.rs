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
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] integers with no padding.
    unsafe impl aya::Pod for super::Stats {}
    unsafe impl aya::Pod for super::StartKey {}
    unsafe impl aya::Pod for super::StartStack {}
}
