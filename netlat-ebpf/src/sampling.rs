//! Kernel stack sampling for flame graphs, optionally only inside (slow)
//! calls of the traced function.

use aya_ebpf::{
    helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns},
    macros::{map, perf_event},
    maps::{HashMap, PerCpuArray, PerCpuHashMap, StackTrace},
    programs::{PerfEventContext, tracing::StackIdContext as _},
};
use netlat_common::{FAST_CALL, MAX_PENDING, Pending, SampleStats, StartKey, sample_filter};

use crate::starts;

/// Set by userspace at load time (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
static SAMPLE_FILTER: u32 = sample_filter::ALL;
#[unsafe(no_mangle)]
static SLOWER_THAN_NS: u64 = 0;

#[map(name = "STACKS")]
static STACKS: StackTrace = StackTrace::with_max_entries(16384, 0);

/// Per-CPU so counting needs no atomics; userspace sums the CPUs. Keys are
/// stack ids, with `FAST_CALL` set for the samples of fast calls.
#[map(name = "STACK_COUNTS")]
static STACK_COUNTS: PerCpuHashMap<u32, u64> = PerCpuHashMap::with_max_entries(16384, 0);

#[map(name = "SAMPLE_STATS")]
static SAMPLE_STATS: PerCpuArray<SampleStats> = PerCpuArray::with_max_entries(1, 0);

/// Per calling context (same keys as the start-time stacks).
#[map(name = "PENDING")]
static PENDING: HashMap<StartKey, Pending> = HashMap::with_max_entries(4096, 0);

#[inline(always)]
fn read_global<T: Copy>(g: &T) -> T {
    // SAFETY: volatile so the compiler cannot fold the load-time value away.
    unsafe { core::ptr::read_volatile(g) }
}

#[inline(always)]
pub fn slower_than_ns() -> u64 {
    read_global(&SLOWER_THAN_NS)
}

#[inline(always)]
fn stats() -> Option<&'static mut SampleStats> {
    // SAFETY: this CPU's value, valid for the program's run.
    SAMPLE_STATS.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

/// Key for the NET_RX softirq context of this CPU (no thread owns it).
#[inline(always)]
pub fn softirq_key() -> StartKey {
    StartKey {
        tid: u32::MAX,
        // SAFETY: helper without preconditions.
        cpu: unsafe { bpf_get_smp_processor_id() },
    }
}

#[perf_event]
pub fn netlat_sample(ctx: PerfEventContext) -> u32 {
    // SAFETY: helper without preconditions.
    let started = unsafe { bpf_ktime_get_ns() };
    sample(&ctx);
    // SAFETY: as above.
    let took = unsafe { bpf_ktime_get_ns() }.saturating_sub(started);
    count(|s| {
        s.cost_ns += took;
        s.runs += 1;
    });
    0
}

#[inline(always)]
fn sample(ctx: &PerfEventContext) {
    let filter = read_global(&SAMPLE_FILTER);
    let context = if filter == sample_filter::DURING {
        let thread = starts::key();
        if starts::in_softirq() {
            softirq_key()
        } else if starts::in_function(thread) {
            thread
        } else {
            count(|s| s.outside += 1);
            return;
        }
    } else {
        softirq_key()
    };
    // Flags 0: the kernel stack, deduplicated by the map.
    let id = match ctx.get_stackid(&STACKS, 0) {
        Ok(id) => id as u32,
        Err(_) => {
            count(|s| s.lost_stack += 1);
            return;
        }
    };
    if filter != sample_filter::ALL {
        count(|s| s.in_call += 1);
    }
    if filter != sample_filter::ALL && slower_than_ns() > 0 {
        hold(context, id);
    } else {
        keep(id);
    }
}

#[inline(always)]
fn count(f: impl FnOnce(&mut SampleStats)) {
    if let Some(s) = stats() {
        f(s);
    }
}

/// Counts one sample under `key` (a stack id, `FAST_CALL` set for a fast
/// call's sample).
#[inline(always)]
fn keep(key: u32) {
    match STACK_COUNTS.get_ptr_mut(key) {
        // SAFETY: this CPU's value.
        Some(c) => unsafe { *c += 1 },
        None => {
            if STACK_COUNTS.insert(key, 1, 0).is_err() {
                count(|s| s.lost_count += 1);
                return;
            }
        }
    }
    if key & FAST_CALL != 0 {
        count(|s| s.fast += 1);
    } else {
        count(|s| s.kept += 1);
    }
}

#[inline(always)]
fn hold(context: StartKey, id: u32) {
    if let Some(p) = PENDING.get_ptr_mut(context) {
        // SAFETY: map value of this context; only this CPU runs it now.
        let p = unsafe { &mut *p };
        let len = p.len as usize;
        if len < MAX_PENDING {
            p.stack_ids[len] = id;
            p.len += 1;
        } else {
            count(|s| s.lost_pending += 1);
        }
        return;
    }
    let mut p = Pending {
        len: 1,
        stack_ids: [0; MAX_PENDING],
        _pad: 0,
    };
    p.stack_ids[0] = id;
    if PENDING.insert(context, p, 0).is_err() {
        count(|s| s.lost_pending += 1);
    }
}

/// The outermost call in `context` ended after `duration_ns`: count its
/// held samples as a slow or a fast call's.
#[inline(always)]
pub fn call_ended(context: StartKey, duration_ns: u64) {
    let threshold = slower_than_ns();
    if threshold == 0 {
        return;
    }
    // Branch-free on purpose: the verifier knows `threshold` (a load-time
    // constant), and a `duration_ns > threshold` branch would teach it
    // `duration_ns >= threshold + 1` for the rest of the exit program.
    // Linux 6.1's verifier then fails to see that the histogram's
    // small-bucket path is dead under that bound (it keeps a register
    // with umin > umax) and rejects the bucket index ("R0 invalid mem
    // access 'scalar'"). Both values are far below 2^63 ns.
    let slow = (threshold.wrapping_sub(duration_ns) >> 63) != 0;
    count(|s| {
        if slow {
            s.slow_calls += 1
        } else {
            s.fast_calls += 1
        }
    });
    let Some(p) = PENDING.get_ptr(context) else {
        return;
    };
    // SAFETY: as in hold().
    let p = unsafe { &*p };
    let len = (p.len as usize).min(MAX_PENDING);
    let flag = if slow { 0 } else { FAST_CALL };
    for i in 0..MAX_PENDING {
        if i >= len {
            break;
        }
        keep(p.stack_ids[i] | flag);
    }
    let _ = PENDING.remove(context);
}
