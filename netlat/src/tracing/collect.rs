//! Reading the kernel's per-CPU stats maps into per-CPU histograms.
//!
//! The STATS map has two slots (window parities) per `--by` group, and
//! the kernel only ever adds to them. Programs write to the slot of the
//! window the EPOCH map names; `--interval` moves EPOCH to the next window
//! and reads the finished window's slot, and a window's calls are what that
//! slot gained since it was last read. Nothing is zeroed, so a program that
//! was still writing when the window ended (a BPF program may be preempted
//! on a preemptible kernel) is not lost and not counted twice: its call
//! lands in that slot's next read, and every call is in exactly one window.

use anyhow::{Context as _, Result};
use aya::maps::{Array, HashMap, PerCpuArray};
use netlat_common::{
    EPOCH_MAP, EPOCHS, SOFTIRQ_START_MAP, STARTS_MAP, STATS_MAP, StartKey, StartStack, Stats,
    buckets,
};

use crate::{model::histogram::Histogram, tracing::backend::attach::Tracer};

#[derive(Default)]
pub struct Collector {
    /// The window programs write to now (the EPOCH map's value).
    window: u32,
    /// What each STATS index (`group * EPOCHS + parity`) held per CPU when
    /// last read; missing: never read, all zero.
    seen: std::collections::HashMap<u32, Vec<Stats>>,
}

/// One read of the maps.
#[derive(Clone, Debug, Default)]
pub struct Slot {
    /// All groups together, indexed by CPU id.
    pub per_cpu: Vec<Histogram>,
    /// All CPUs together, indexed by `--by` group; empty when not grouping.
    pub per_group: Vec<Histogram>,
}

impl Slot {
    /// The CPUs worth a line of their own: the online ones, and any other
    /// (per-CPU maps cover every possible CPU) that recorded calls.
    pub fn cpus<'a>(&'a self, online: &'a [u32]) -> impl Iterator<Item = (u32, &'a Histogram)> {
        self.per_cpu
            .iter()
            .enumerate()
            .map(|(cpu, h)| (cpu as u32, h))
            .filter(move |(cpu, h)| online.contains(cpu) || h.count > 0)
    }
}

impl Slot {
    /// Adds `other`'s calls to these, CPU by CPU and group by group: the
    /// windows of a run add up to the run.
    pub fn absorb(&mut self, other: &Slot) {
        fn add(into: &mut Vec<Histogram>, from: &[Histogram]) {
            if into.len() < from.len() {
                into.resize(from.len(), Histogram::default());
            }
            for (a, b) in into.iter_mut().zip(from) {
                a.merge(b);
            }
        }
        add(&mut self.per_cpu, &other.per_cpu);
        add(&mut self.per_group, &other.per_group);
    }
}

/// `--by` groups the STATS map was loaded with: the loader sized it
/// `groups * EPOCHS`, so the map itself says.
fn groups<T: std::borrow::Borrow<aya::maps::MapData>>(stats: &PerCpuArray<T, Stats>) -> u32 {
    (stats.len() / EPOCHS).max(1)
}

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }

    /// The current window's calls so far, plus anything written late to the
    /// other slot since it was read. Exact once the tracer is detached;
    /// while attached a CPU's slot may be mid-update.
    pub fn read(&self, tracer: &Tracer) -> Result<Slot> {
        let stats = stats_map(tracer)?;
        let current = self.window % EPOCHS;
        let mut slot = self.gained(&stats, current, Some(self.window))?.0;
        slot.absorb(&self.gained(&stats, (current + 1) % EPOCHS, None)?.0);
        Ok(slot)
    }

    /// Ends the current window: new calls go to the next window's slot;
    /// returns what the finished window's slot gained.
    pub fn rotate(&mut self, tracer: &mut Tracer) -> Result<Slot> {
        let finished = self.window;
        let next = finished.wrapping_add(1);
        let mut epoch: Array<_, u32> = Array::try_from(
            tracer
                .ebpf
                .map_mut(EPOCH_MAP)
                .context("EPOCH map missing")?,
        )?;
        epoch
            .set(0, next, 0)
            .context("cannot start the next stats window")?;
        self.window = next;
        let stats = stats_map(tracer)?;
        let (slot, read) = self.gained(&stats, finished % EPOCHS, Some(finished))?;
        self.seen.extend(read);
        Ok(slot)
    }

    /// What the slots of `parity` gained since last read, with the raw
    /// values read (to remember). Extremes are taken from the kernel only
    /// when they belong to `window`.
    fn gained(
        &self,
        stats: &PerCpuArray<&aya::maps::MapData, Stats>,
        parity: u32,
        window: Option<u32>,
    ) -> Result<(Slot, Vec<Reading>)> {
        let groups = groups(stats);
        let mut read = Vec::with_capacity(groups as usize);
        // [group][cpu]
        let mut cells = Vec::with_capacity(groups as usize);
        for group in 0..groups {
            let index = group * EPOCHS + parity;
            let now: Vec<Stats> = stats
                .get(&index, 0)
                .context("cannot read the per-CPU stats map")?
                .iter()
                .copied()
                .collect();
            let before = self.seen.get(&index);
            let zero = Stats::ZERO;
            cells.push(
                now.iter()
                    .enumerate()
                    .map(|(cpu, n)| {
                        let b = before.and_then(|b| b.get(cpu)).unwrap_or(&zero);
                        gain(n, b, window)
                    })
                    .collect::<Vec<_>>(),
            );
            read.push((index, now));
        }
        let cpus = cells.first().map_or(0, Vec::len);
        let per_cpu = (0..cpus)
            .map(|cpu| Histogram::merged(cells.iter().map(|g| &g[cpu])))
            .collect();
        let per_group = if groups > 1 {
            cells.iter().map(Histogram::merged).collect()
        } else {
            Vec::new()
        };
        Ok((Slot { per_cpu, per_group }, read))
    }
}

/// A STATS index and its per-CPU values as read.
type Reading = (u32, Vec<Stats>);

fn stats_map(tracer: &Tracer) -> Result<PerCpuArray<&aya::maps::MapData, Stats>> {
    Ok(PerCpuArray::try_from(
        tracer.ebpf.map(STATS_MAP).context("STATS map missing")?,
    )?)
}

/// One CPU's calls between two reads of its slot. The counters subtract;
/// the kernel's min and max are this window's when stamped with it. A late
/// write of an earlier window carries no extremes of this one, so min and
/// max are widened to reach the lowest and highest non-empty buckets: a
/// no-op whenever every call counted was stamped with this window, and
/// never min > max or a bucket outside them.
fn gain(now: &Stats, before: &Stats, window: Option<u32>) -> Histogram {
    let mut h = Histogram {
        count: now.count.wrapping_sub(before.count),
        sum_ns: now.sum_ns.wrapping_sub(before.sum_ns),
        min_ns: 0,
        max_ns: 0,
        unmatched_exits: now.unmatched_exits.wrapping_sub(before.unmatched_exits),
        dropped_entries: now.dropped_entries.wrapping_sub(before.dropped_entries),
        mismatched_exits: now.mismatched_exits.wrapping_sub(before.mismatched_exits),
        buckets: now
            .buckets
            .iter()
            .zip(&before.buckets)
            .map(|(n, b)| n.wrapping_sub(*b))
            .collect(),
    };
    let nonempty = || h.buckets.iter().enumerate().filter(|(_, c)| **c > 0);
    let (Some((low, _)), Some((high, _))) = (nonempty().next(), nonempty().next_back()) else {
        return h;
    };
    let stamped = window.is_some_and(|w| now.extremes_of == u64::from(w) + 1);
    (h.min_ns, h.max_ns) = if stamped {
        (
            now.min_ns.min(buckets::upper_bound(low)),
            now.max_ns.max(buckets::lower_bound(high)),
        )
    } else {
        // Only late calls: their buckets' bounds are all that is known.
        (buckets::lower_bound(low), buckets::upper_bound(high))
    };
    h
}

/// Entries still waiting for their exit: calls in progress when the probes
/// came off, and calls whose exit the kernel never reported (a kretprobe
/// missed for lack of instances, or an exit program the kernel skipped).
/// Read after detaching, when nothing moves.
pub fn unfinished_calls(tracer: &Tracer) -> Result<u64> {
    let starts: HashMap<_, StartKey, StartStack> =
        HashMap::try_from(tracer.ebpf.map(STARTS_MAP).context("STARTS map missing")?)?;
    let mut total = 0;
    for entry in starts.iter() {
        let (_, stack) = entry.context("cannot read the start-time map")?;
        total += stack.depth;
    }
    let softirq: PerCpuArray<_, u64> = PerCpuArray::try_from(
        tracer
            .ebpf
            .map(SOFTIRQ_START_MAP)
            .context("SOFTIRQ_START map missing")?,
    )?;
    let pending = softirq
        .get(&0, 0)
        .context("cannot read the softirq start map")?;
    total += pending.iter().filter(|&&start| start != 0).count() as u64;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(calls: &[u64], window: u32) -> Stats {
        let mut s = Stats::ZERO;
        for &d in calls {
            if s.extremes_of != u64::from(window) + 1 {
                s.extremes_of = u64::from(window) + 1;
                s.min_ns = d;
                s.max_ns = d;
            }
            s.min_ns = s.min_ns.min(d);
            s.max_ns = s.max_ns.max(d);
            s.count += 1;
            s.sum_ns += d;
            s.buckets[buckets::index(d)] += 1;
        }
        s
    }

    #[test]
    fn a_window_is_what_the_slot_gained_with_its_own_extremes() {
        let before = stats(&[5, 900], 0);
        // The slot's next window (2) adds three calls; its extremes were
        // started afresh by the kernel.
        let mut now = stats(&[5, 900, 40, 70, 60], 0);
        now.extremes_of = 3;
        (now.min_ns, now.max_ns) = (40, 70);
        now.unmatched_exits = 2;
        let h = gain(&now, &before, Some(2));
        assert_eq!((h.count, h.sum_ns, h.min_ns, h.max_ns), (3, 170, 40, 70));
        assert_eq!(h.unmatched_exits, 2);
        assert_eq!(h.bucket_total(), 3);
        // Nothing new: an empty window, whatever the old extremes say.
        let h = gain(&before, &before, Some(2));
        assert_eq!((h.count, h.min_ns, h.max_ns), (0, 0, 0));
    }

    #[test]
    fn a_late_call_without_this_windows_extremes_stays_inside_min_and_max() {
        // A call of an earlier window, written after that window was read,
        // is counted now; the slot's extremes are not this window's.
        let before = stats(&[100], 0);
        let now = stats(&[100, 5000], 0);
        let h = gain(&now, &before, Some(2));
        assert_eq!(h.count, 1);
        let bucket = buckets::index(5000);
        assert!(h.min_ns <= 5000 && 5000 <= h.max_ns, "{h:?}");
        assert_eq!(h.min_ns, buckets::lower_bound(bucket));
        assert_eq!(h.max_ns, buckets::upper_bound(bucket));
        // The window's own call (7000) keeps its stamped max; the min
        // reaches down into the late call's bucket.
        let mut now = stats(&[100, 5000, 7000], 0);
        (now.extremes_of, now.min_ns, now.max_ns) = (3, 7000, 7000);
        let h = gain(&now, &before, Some(2));
        assert_eq!((h.count, h.max_ns), (2, 7000));
        assert_eq!(h.min_ns, buckets::upper_bound(bucket));
    }
}
