//! Pairing entries with exits.
//!
//! Function backends keep a stack of start times per context key. Interrupts
//! nest strictly, so when a softirq interrupts a task that is inside the
//! traced function and calls it again, its entry and exit push and pop above
//! the task's own. Threads are keyed by thread id (they may sleep and migrate
//! between entry and exit), except the idle tasks, which all have id 0: they
//! are keyed by CPU instead, or softirqs interrupting idle on two CPUs would
//! clobber each other's start times (the bug BCC's funclatency still has).

use aya_ebpf::helpers::bpf_ktime_get_ns;
use netlat_common::{MAX_DEPTH, StartKey, StartStack};

use aya_ebpf::EbpfContext;

use crate::{
    sampling, slow,
    starts::{self, SOFTIRQ_START, STARTS},
    stats,
};

/// An index already checked against MAX_DEPTH, masked so that older
/// verifiers (6.1) also see it bounded: they lose the check's range when
/// the compiler indexes two arrays from copies of one register.
#[inline(always)]
fn bounded(i: usize) -> usize {
    const _: () = assert!(MAX_DEPTH.is_power_of_two());
    i & (MAX_DEPTH - 1)
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: helper without preconditions.
    unsafe { bpf_ktime_get_ns() }
}

/// Pushes this call's start; returns its context, depth and start (for
/// what `netlat slow` keeps beside it), or None when it cannot be timed.
/// `frame` identifies the call to its exit (see `StartStack::frame`).
#[inline(always)]
pub fn function_entry(group: u8, frame: u64) -> Option<(StartKey, u32, u64)> {
    let key = starts::key();
    let ts = now();
    match STARTS.get_ptr_mut(key) {
        Some(stack) => {
            // SAFETY: points into the map value; only this context uses this key.
            let stack = unsafe { &mut *stack };
            let depth = stack.depth as usize;
            if depth < MAX_DEPTH {
                let i = bounded(depth);
                stack.start_ns[i] = ts;
                stack.frame[i] = frame;
                stack.group[i] = group;
                stack.depth += 1;
                Some((key, i as u32, ts))
            } else {
                stats::dropped_entry();
                None
            }
        }
        None => {
            let mut stack = StartStack {
                depth: 1,
                start_ns: [0; MAX_DEPTH],
                frame: [0; MAX_DEPTH],
                group: [0; MAX_DEPTH],
            };
            stack.start_ns[0] = ts;
            stack.frame[0] = frame;
            stack.group[0] = group;
            if STARTS.insert(key, stack, 0).is_err() {
                stats::dropped_entry();
                return None;
            }
            Some((key, 0, ts))
        }
    }
}

/// Where on the stack of `depth` starts the call with `frame` is, from the
/// top: `depth - 1` when it is on top (always, without a frame).
#[inline(always)]
fn position(stack: &StartStack, depth: usize, frame: u64) -> Option<usize> {
    let top = depth - 1;
    if frame == 0 || stack.frame[bounded(top)] == frame {
        return Some(top);
    }
    // Constant bounds, innermost first: a loop bounded by `top` is one the
    // verifier walks to its instruction limit (it loses the bound).
    let mut i = MAX_DEPTH - 1;
    loop {
        if i < top && stack.frame[i] == frame {
            return Some(i);
        }
        if i == 0 {
            return None;
        }
        i -= 1;
    }
}

#[inline(always)]
pub fn function_exit(frame: u64) {
    let ts = now();
    let key = starts::key();
    let Some(stack) = STARTS.get_ptr_mut(key) else {
        stats::unmatched_exit();
        return;
    };
    // SAFETY: as in function_entry.
    let stack = unsafe { &mut *stack };
    let depth = stack.depth as usize;
    if depth == 0 || depth > MAX_DEPTH {
        stats::unmatched_exit();
        return;
    }
    // A call whose entry the kernel skipped is not on the stack: leave the
    // calls that are alone. One found below the top means the exits of the
    // calls above it were skipped: their starts can only mis-time, so go.
    let Some(position) = position(stack, depth, frame) else {
        stats::mismatched_exits(1);
        return;
    };
    let skipped = (depth - 1 - position) as u64;
    if skipped > 0 {
        stats::mismatched_exits(skipped);
    }
    let i = bounded(position);
    let start = stack.start_ns[i];
    let group = stack.group[i];
    stack.depth = position as u64;
    let duration = ts.saturating_sub(start);
    if stack.depth == 0 {
        // Keep the map to threads that are inside the function right now.
        let _ = STARTS.remove(key);
        sampling::call_ended(key, duration);
    }
    stats::record(group as u32, duration);
    slow::function_exit(key, i as u32, start, duration);
}

#[inline(always)]
pub fn softirq_entry<C: EbpfContext>(ctx: &C) {
    let ts = now();
    if let Some(start) = SOFTIRQ_START.get_ptr_mut(0) {
        // SAFETY: this CPU's value.
        unsafe { *start = ts };
    }
    slow::softirq_entry(ctx, ts);
}

#[inline(always)]
pub fn softirq_exit() {
    let ts = now();
    let Some(start) = SOFTIRQ_START.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's value.
    let start = unsafe { &mut *start };
    if *start == 0 {
        // The softirq was already running when we attached.
        stats::unmatched_exit();
        return;
    }
    let started = *start;
    let duration = ts.saturating_sub(started);
    *start = 0;
    sampling::call_ended(sampling::softirq_key(), duration);
    stats::record(0, duration);
    slow::softirq_exit(started, duration);
}
