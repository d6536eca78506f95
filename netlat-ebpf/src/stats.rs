//! Recording one duration into this CPU's histogram slot.

use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};
use netlat_common::{BUCKETS, EPOCHS, GROUPS, Stats, buckets};

/// Index `group * EPOCHS + epoch`. Sized for every `--by` group; userspace
/// shrinks it to group 0 alone when not grouping.
#[map(name = "STATS")]
static STATS: PerCpuArray<Stats> = PerCpuArray::with_max_entries(GROUPS * EPOCHS, 0);

#[map(name = "EPOCH")]
static EPOCH: Array<u32> = Array::with_max_entries(1, 0);

/// Non-zero once userspace has attached the entry program after the exit
/// program (`netlat_common::ARMED_MAP`).
#[map(name = "ARMED")]
static ARMED: Array<u32> = Array::with_max_entries(1, 0);

/// The current window's number, and this CPU's slot of `group` for it.
/// Per-CPU, so no atomics: programs on one CPU never run concurrently with
/// each other for the same slot (the kernel skips a program re-entered on
/// its own CPU).
#[inline(always)]
pub fn slot(group: u32) -> Option<(u32, &'static mut Stats)> {
    let window = EPOCH.get(0).copied().unwrap_or(0);
    let index = (group % GROUPS) * EPOCHS + window % EPOCHS;
    // SAFETY: the pointer is into this CPU's map value, valid for the program's run.
    STATS
        .get_ptr_mut(index)
        .map(|p| (window, unsafe { &mut *p }))
}

#[inline(always)]
pub fn record(group: u32, duration_ns: u64) {
    let Some((window, s)) = slot(group) else {
        return;
    };
    // The first call of a window in this slot starts its extremes afresh;
    // the counters carry on (userspace subtracts).
    let stamp = window as u64 + 1;
    if s.extremes_of != stamp {
        s.extremes_of = stamp;
        s.min_ns = duration_ns;
        s.max_ns = duration_ns;
    } else if duration_ns < s.min_ns {
        s.min_ns = duration_ns;
    } else if duration_ns > s.max_ns {
        s.max_ns = duration_ns;
    }
    s.count += 1;
    s.sum_ns += duration_ns;
    let i = buckets::index(duration_ns);
    if i < BUCKETS {
        s.buckets[i] += 1;
    }
}

/// Counted in group 0: without an entry there is no group. Read only on
/// this rare path, so arming costs the matched calls nothing.
#[inline(always)]
pub fn unmatched_exit() {
    if ARMED.get(0).is_none_or(|armed| *armed == 0) {
        return;
    }
    if let Some((_, s)) = slot(0) {
        s.unmatched_exits += 1;
    }
}

#[inline(always)]
pub fn mismatched_exits(n: u64) {
    if let Some((_, s)) = slot(0) {
        s.mismatched_exits += n;
    }
}

#[inline(always)]
pub fn dropped_entry() {
    if let Some((_, s)) = slot(0) {
        s.dropped_entries += 1;
    }
}
