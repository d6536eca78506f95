//! Reading the kernel's per-CPU stats maps into per-CPU histograms.
//!
//! The STATS map has two slots (epochs) per `--by` group. Programs write to
//! the slot the EPOCH map names; `--interval` flips the epoch, lets in-flight
//! programs finish, then reads and clears the quiet slots, so each interval
//! is exact and no read races a writer.

use std::time::Duration;

use anyhow::{Context as _, Result};
use aya::maps::{Array, HashMap, PerCpuArray, PerCpuValues};
use netlat_common::{EPOCH_MAP, EPOCHS, STATS_MAP, StartKey, StartStack, Stats};

use crate::{model::histogram::Histogram, tracing::backend::attach::Tracer};

/// Every program run finishes in microseconds; this is ample.
const QUIESCE: Duration = Duration::from_millis(5);

#[derive(Default)]
pub struct Collector {
    epoch: u32,
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

    /// Histograms of the current epoch so far. Exact once the tracer is
    /// detached; while attached a CPU's slot may be mid-update.
    pub fn read(&self, tracer: &Tracer) -> Result<Slot> {
        self.read_epoch(tracer, self.epoch)
    }

    /// Ends the current interval: new calls go to the other slots; returns
    /// the finished ones and clears them for reuse.
    pub async fn rotate(&mut self, tracer: &mut Tracer) -> Result<Slot> {
        let finished = self.epoch;
        self.epoch = (self.epoch + 1) % EPOCHS;
        let mut epoch: Array<_, u32> = Array::try_from(
            tracer
                .ebpf
                .map_mut(EPOCH_MAP)
                .context("EPOCH map missing")?,
        )?;
        epoch
            .set(0, self.epoch, 0)
            .context("cannot switch the stats epoch")?;
        tokio::time::sleep(QUIESCE).await;
        let slot = self.read_epoch(tracer, finished)?;
        let mut stats: PerCpuArray<_, Stats> = PerCpuArray::try_from(
            tracer
                .ebpf
                .map_mut(STATS_MAP)
                .context("STATS map missing")?,
        )?;
        // per_group is empty when not grouping: then only group 0 exists.
        for group in 0..slot.per_group.len().max(1) as u32 {
            let zeros = PerCpuValues::try_from(vec![Stats::ZERO; slot.per_cpu.len()])
                .context("cannot build zeroed per-CPU stats")?;
            stats
                .set(group * EPOCHS + finished, zeros, 0)
                .context("cannot clear the finished interval")?;
        }
        Ok(slot)
    }

    fn read_epoch(&self, tracer: &Tracer, epoch: u32) -> Result<Slot> {
        let stats: PerCpuArray<_, Stats> =
            PerCpuArray::try_from(tracer.ebpf.map(STATS_MAP).context("STATS map missing")?)?;
        let groups = groups(&stats);
        // [group][cpu]
        let mut cells = Vec::with_capacity(groups as usize);
        for group in 0..groups {
            let per_cpu = stats
                .get(&(group * EPOCHS + epoch), 0)
                .context("cannot read the per-CPU stats map")?;
            cells.push(per_cpu.iter().map(Histogram::from).collect::<Vec<_>>());
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
        Ok(Slot { per_cpu, per_group })
    }
}

/// Entries still waiting for their exit: calls in progress when the probes
/// came off, and calls whose exit the kernel never reported (a kretprobe
/// missed for lack of instances, or an exit program the kernel skipped).
/// Read after detaching, when nothing moves.
pub fn unfinished_calls(tracer: &Tracer) -> Result<u64> {
    let starts: HashMap<_, StartKey, StartStack> =
        HashMap::try_from(tracer.ebpf.map("STARTS").context("STARTS map missing")?)?;
    let mut total = 0;
    for entry in starts.iter() {
        let (_, stack) = entry.context("cannot read the start-time map")?;
        total += stack.depth;
    }
    let softirq: PerCpuArray<_, u64> = PerCpuArray::try_from(
        tracer
            .ebpf
            .map("SOFTIRQ_START")
            .context("SOFTIRQ_START map missing")?,
    )?;
    let pending = softirq
        .get(&0, 0)
        .context("cannot read the softirq start map")?;
    total += pending.iter().filter(|&&start| start != 0).count() as u64;
    Ok(total)
}
