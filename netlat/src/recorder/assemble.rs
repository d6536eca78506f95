//! Turning what the recorder gathered from the kernel into the capture
//! document: records decoded and put on the wall clock, stacks named and
//! folded, the culprit ranking computed. Runs off the async thread:
//! naming reads /proc/kallsyms (~10 MB), once per capture rather than kept
//! in memory for the life of serve.

use std::collections::BTreeMap;

use netlat_common::SlowRecord;

use super::document::{Accounting, Capture, FORMAT, Histograms, Second, Stacks, Trigger, Window};
use crate::{
    flamegraph::{
        culprit,
        fold::{self, Anchor},
        sampler::Samples,
    },
    model::slow_call::{Clock, SlowCall},
    system::{
        conditions,
        kallsyms::{self, Symbols},
    },
};

/// Everything a capture is made of, before naming and folding.
pub struct Gathered {
    pub function: String,
    pub threshold_ns: u64,
    pub backend: &'static str,
    pub softirq: bool,
    pub host: String,
    pub kernel: String,
    pub clock: Clock,
    /// The trigger first.
    pub records: Vec<SlowRecord>,
    pub missed_before: u64,
    /// Monotonic ns.
    pub window_end_ns: u64,
    pub accounting: Accounting,
    pub samples: Samples,
    pub stacks_lost: u64,
    pub entry_stacks_lost: u64,
    /// (slow, fast) calls the in-call samples were kept for.
    pub sampled_calls: (u64, u64),
    pub frequency_hz: u64,
    /// Entry stack id -> instruction pointers, innermost first.
    pub entry_stacks: BTreeMap<u32, Vec<u64>>,
    pub before: Vec<Second>,
    pub window: Vec<Second>,
    pub conditions: conditions::Start,
}

/// None only for a window without a call (the trigger opens it, so never).
pub fn build(g: Gathered) -> Option<Capture> {
    // Unnamed frames print as addresses rather than losing the capture.
    let symbols = Symbols::read().unwrap_or_else(|_| Symbols::parse(""));
    let calls: Vec<SlowCall> = g
        .records
        .iter()
        .map(|r| {
            let mut call = SlowCall::from_record(r, &g.clock);
            call.stack = SlowCall::stack_id(r)
                .and_then(|id| g.entry_stacks.get(&id))
                .map(|ips| kallsyms::name_stack(ips, &symbols));
            call
        })
        .collect();
    let anchor = Some(Anchor {
        function: &g.function,
        softirq: g.softirq,
    });
    let slow = fold::fold(&g.samples.kept, &symbols, anchor).stacks;
    let fast = fold::fold(&g.samples.fast, &symbols, anchor).stacks;
    let ranking = culprit::rank(&slow, Some(&fast), &g.function);
    let trigger = calls.first()?.clone();
    Some(Capture {
        netlat_capture: FORMAT,
        id: super::store::make_id(&g.function, trigger.start_unix_ns),
        function: g.function,
        threshold_ns: g.threshold_ns,
        backend: g.backend.to_owned(),
        host: g.host,
        kernel: g.kernel,
        netlat_version: crate::VERSION.to_owned(),
        window: Window {
            start_unix_ns: trigger.start_unix_ns,
            end_unix_ns: g.clock.unix_ns(g.window_end_ns),
        },
        trigger: Trigger {
            call: trigger,
            missed_before: g.missed_before,
        },
        calls,
        accounting: g.accounting,
        stacks: Stacks {
            frequency_hz: g.frequency_hz,
            slow,
            fast,
            lost: g.stacks_lost,
            slow_calls: g.sampled_calls.0,
            fast_calls: g.sampled_calls.1,
            entry_lost: g.entry_stacks_lost,
        },
        ranking,
        histograms: Histograms {
            before: g.before,
            window: g.window,
        },
        conditions: g.conditions.finish(),
    })
}
