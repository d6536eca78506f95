//! The perf_event sampler's maps: read the stacks back (attaching it is
//! `tracing::session`'s job, with every other program).

use anyhow::{Context as _, Result};
use aya::{
    Ebpf,
    maps::{HashMap, PerCpuArray, PerCpuHashMap, StackTraceMap},
};
use netlat_common::{
    FAST_CALL, MAX_PENDING, PENDING_MAP, Pending, SAMPLE_STATS_MAP, STACK_COUNTS_MAP, STACKS_MAP,
    SampleStats, StartKey,
};

use super::fold::Stack;

/// What happened to the samples, summed over CPUs (the kernel's per-CPU
/// counters, same fields).
pub type Tally = SampleStats;

/// What the sampler left in its maps after detaching.
pub struct Samples {
    /// Drawn: every sample, the in-call ones, or the slow calls'.
    pub kept: Vec<Stack>,
    /// The fast calls' (`--slower-than`).
    pub fast: Vec<Stack>,
    pub tally: Tally,
    /// Held for calls still running when the timing probes detached:
    /// neither slow nor fast.
    pub undecided: u64,
}

impl Samples {
    /// The mean run time of the sampler program, in ns.
    pub fn cost_ns(&self) -> Option<f64> {
        (self.tally.runs > 0).then(|| self.tally.cost_ns as f64 / self.tally.runs as f64)
    }
}

/// The kernel's sample counts, summed over CPUs.
pub fn tally(ebpf: &Ebpf) -> Result<Tally> {
    let stats: PerCpuArray<_, SampleStats> = PerCpuArray::try_from(
        ebpf.map(SAMPLE_STATS_MAP)
            .context("sample stats map missing")?,
    )?;
    let mut tally = Tally::default();
    for s in stats
        .get(&0, 0)
        .context("cannot read the sample stats")?
        .iter()
    {
        tally.add(s);
    }
    Ok(tally)
}

pub fn read(ebpf: &Ebpf) -> Result<Samples> {
    let counts: PerCpuHashMap<_, u32, u64> = PerCpuHashMap::try_from(
        ebpf.map(STACK_COUNTS_MAP)
            .context("stack count map missing")?,
    )?;
    let traces = StackTraceMap::try_from(ebpf.map(STACKS_MAP).context("stack map missing")?)?;
    let (mut kept, mut fast) = (Vec::new(), Vec::new());
    let (mut lost_kept, mut lost_fast) = (0, 0);
    for entry in counts.iter() {
        let (key, per_cpu) = entry.context("cannot read the stack counts")?;
        let count = per_cpu.iter().sum();
        let is_fast = key & FAST_CALL != 0;
        match traces.get(&(key & !FAST_CALL), 0) {
            Ok(trace) => {
                let stack = Stack {
                    frames: trace.frames().iter().map(|f| f.ip).collect(),
                    count,
                };
                if is_fast { &mut fast } else { &mut kept }.push(stack);
            }
            // A stack id whose trace was evicted (hash collision, map full).
            Err(_) if is_fast => lost_fast += count,
            Err(_) => lost_kept += count,
        }
    }
    let mut tally = tally(ebpf)?;
    tally.kept -= lost_kept.min(tally.kept);
    tally.fast -= lost_fast.min(tally.fast);
    tally.lost_stack += lost_kept + lost_fast;
    let pending: HashMap<_, StartKey, Pending> =
        HashMap::try_from(ebpf.map(PENDING_MAP).context("pending map missing")?)?;
    let undecided = pending
        .iter()
        .filter_map(Result::ok)
        .map(|(_, p)| (p.len as usize).min(MAX_PENDING) as u64)
        .sum();
    Ok(Samples {
        kept,
        fast,
        tally,
        undecided,
    })
}

/// Empties the stack and count maps while the sampler runs, so a
/// long-running recorder's maps hold only the latest stretch: the kernel
/// never evicts from them, and a full stack map loses every new stack.
/// Samples held for calls in progress may then name a stack that is gone;
/// `read` counts those as lost.
pub fn reset(ebpf: &mut Ebpf) -> Result<()> {
    let mut counts: PerCpuHashMap<_, u32, u64> = PerCpuHashMap::try_from(
        ebpf.map_mut(STACK_COUNTS_MAP)
            .context("stack count map missing")?,
    )?;
    let keys: Vec<u32> = counts.keys().filter_map(Result::ok).collect();
    for key in keys {
        // Gone already is fine.
        let _ = counts.remove(&key);
    }
    let mut traces =
        StackTraceMap::try_from(ebpf.map_mut(STACKS_MAP).context("stack map missing")?)?;
    let ids: Vec<u32> = traces.stack_ids().filter_map(Result::ok).collect();
    for id in ids {
        let _ = traces.remove(&id);
    }
    Ok(())
}

/// The sampler's counts so far, by key (a stack id, with [`FAST_CALL`]
/// set for samples of fast calls), summed over CPUs. The maps are never
/// emptied while a recording runs, so the samples of a stretch are the
/// growth of these counts over it: nothing is lost between two reads.
pub fn counts(ebpf: &Ebpf) -> Result<std::collections::BTreeMap<u32, u64>> {
    let counts: PerCpuHashMap<_, u32, u64> = PerCpuHashMap::try_from(
        ebpf.map(STACK_COUNTS_MAP)
            .context("stack count map missing")?,
    )?;
    counts
        .iter()
        .map(|entry| {
            let (key, per_cpu) = entry.context("cannot read the stack counts")?;
            Ok((key, per_cpu.iter().sum()))
        })
        .collect()
}

/// The frames of a sampled stack, leaf first; None when the kernel lost
/// it (see [`read`]).
pub fn frames(ebpf: &Ebpf, key: u32) -> Result<Option<Vec<u64>>> {
    let traces = StackTraceMap::try_from(ebpf.map(STACKS_MAP).context("stack map missing")?)?;
    Ok(traces
        .get(&(key & !FAST_CALL), 0)
        .ok()
        .map(|t| t.frames().iter().map(|f| f.ip).collect()))
}

/// Whether a key of [`counts`] is a fast call's.
pub fn is_fast(key: u32) -> bool {
    key & FAST_CALL != 0
}
