//! What a recording collects as it runs, window by window: the window's
//! histogram, the slow-call records waiting in the buffer, and the growth
//! of the sampler's counts since the last window. Stacks are named once,
//! at the end (naming reads /proc/kallsyms).

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use netlat_common::SlowStats;

use crate::{
    flamegraph::{
        fold::{self, Anchor, Stack},
        sampler,
    },
    model::{
        histogram::Histogram,
        recording::{Accounting, RecWindow, WindowSamples},
        slow_call::{Clock, SlowCall},
    },
    system::kallsyms::Symbols,
    tracing::{backend::attach::Tracer, slow_records::Records},
};

/// Records taken from the buffer at a time.
const BATCH: usize = 1024;
/// Slow calls a recording keeps (~300 bytes each in the file); the rest
/// are counted. With the kernel's per-CPU budget a storm reaches this
/// only after minutes.
pub const MAX_CALLS: usize = 200_000;

pub struct Gather {
    clock: Clock,
    sampling: bool,
    windows: Vec<RecWindow>,
    calls: Vec<SlowCall>,
    not_kept: u64,
    /// The sampler's counts at the last read, by key.
    seen: BTreeMap<u32, u64>,
    /// (window, key, samples): the growth of one key over one window.
    grown: Vec<(usize, u32, u64)>,
}

impl Gather {
    pub fn new(clock: Clock, sampling: bool) -> Gather {
        Gather {
            clock,
            sampling,
            windows: Vec::new(),
            calls: Vec::new(),
            not_kept: 0,
            seen: BTreeMap::new(),
            grown: Vec::new(),
        }
    }

    /// A window has ended: it started at `start_ns` (monotonic) and holds
    /// the calls of `per_cpu`.
    pub fn window(&mut self, start_ns: u64, per_cpu: &[Histogram]) {
        let h = Histogram::merged(per_cpu);
        self.windows
            .push(RecWindow::from_histogram(self.clock.unix_ns(start_ns), &h));
    }

    /// The samples of calls that ended since the last read, counted in the
    /// window that just ended.
    pub fn samples(&mut self, tracer: &Tracer) -> Result<()> {
        let window = self.windows.len().saturating_sub(1);
        for (key, count) in sampler::counts(tracer.ebpf())? {
            let before = self.seen.insert(key, count).unwrap_or(0);
            if count > before {
                self.grown.push((window, key, count - before));
            }
        }
        Ok(())
    }

    /// Every record waiting in the buffer.
    pub fn calls(&mut self, records: &mut Records) -> Result<()> {
        let clock = self.clock;
        while records.drain(BATCH, |r| {
            if self.calls.len() < MAX_CALLS {
                self.calls.push(SlowCall::from_record(r, &clock));
            } else {
                self.not_kept += 1;
            }
            Ok(())
        })? {}
        Ok(())
    }

    /// The kernel's counts at the end, against what reached the file.
    pub fn accounting(&self, tracer: &Tracer, kernel: &SlowStats) -> Result<Accounting> {
        let samples = sampler::read(tracer.ebpf())?;
        let t = samples.tally;
        Ok(Accounting {
            over_threshold: kernel.over,
            recorded: self.calls.len() as u64,
            lost_ring: kernel.lost,
            limited: kernel.limited,
            not_kept: self.not_kept,
            samples_lost: t.lost_stack + t.lost_pending + t.lost_count,
            samples_undecided: samples.undecided,
        })
    }

    /// The windows, the calls in start order, and the samples with their
    /// stacks named and folded as `flamegraph --during` folds them.
    #[allow(clippy::type_complexity)]
    pub fn finish(
        mut self,
        tracer: &Tracer,
        function: &str,
    ) -> Result<(
        Vec<RecWindow>,
        Vec<SlowCall>,
        Vec<String>,
        Vec<WindowSamples>,
    )> {
        self.calls.sort_by_key(|c| c.start_unix_ns);
        let (stacks, samples) = if self.sampling && !self.grown.is_empty() {
            self.name_samples(tracer, function)?
        } else {
            (Vec::new(), Vec::new())
        };
        Ok((self.windows, self.calls, stacks, samples))
    }

    fn name_samples(
        &self,
        tracer: &Tracer,
        function: &str,
    ) -> Result<(Vec<String>, Vec<WindowSamples>)> {
        // Unnamed frames print as addresses rather than losing the run.
        let symbols = Symbols::read().unwrap_or_else(|_| Symbols::parse(""));
        let anchor = Some(Anchor {
            function,
            softirq: tracer.backend().times_softirq(),
        });
        let mut names: Vec<String> = Vec::new();
        let mut index_of_name: HashMap<String, usize> = HashMap::new();
        // A stack id (fast or slow) -> its folded name's index; None when
        // the kernel lost the stack.
        let mut index_of_id: HashMap<u32, Option<usize>> = HashMap::new();
        let mut merged: BTreeMap<(usize, usize), (u64, u64)> = BTreeMap::new();
        for &(window, key, count) in &self.grown {
            let id = key & !netlat_common::FAST_CALL;
            let index = match index_of_id.get(&id) {
                Some(i) => *i,
                None => {
                    let i = sampler::frames(tracer.ebpf(), key)?.map(|frames| {
                        let folded = fold::fold(&[Stack { frames, count: 1 }], &symbols, anchor);
                        let name = folded.stacks.into_keys().next().unwrap_or_default();
                        let next = names.len();
                        *index_of_name.entry(name.clone()).or_insert_with(|| {
                            names.push(name);
                            next
                        })
                    });
                    index_of_id.insert(id, i);
                    i
                }
            };
            let Some(stack) = index else { continue };
            let e = merged.entry((window, stack)).or_default();
            if sampler::is_fast(key) {
                e.1 += count;
            } else {
                e.0 += count;
            }
        }
        let samples = merged
            .into_iter()
            .map(|((window, stack), (slow, fast))| WindowSamples {
                window,
                stack,
                slow,
                fast,
            })
            .collect();
        Ok((names, samples))
    }
}
