//! The kernel side of `netlat slow` as userspace sees it (the context
//! programs that ride beside a function backend attach in `session`): the ring buffer of
//! records, the entry stacks, and the kernel's own counts.

use std::io;

use anyhow::{Context as _, Result};
use aya::maps::{MapData, PerCpuArray, RingBuf, StackTraceMap};
use netlat_common::{ENTRY_STACKS_MAP, SLOW_EVENTS_MAP, SLOW_STATS_MAP, SlowRecord, SlowStats};
use tokio::io::unix::AsyncFd;

use super::backend::attach::Tracer;

/// The ring buffer, readable from the async runtime.
pub struct Records {
    ring: AsyncFd<RingBuf<MapData>>,
    stacks: Option<StackTraceMap<MapData>>,
}

impl Records {
    /// Takes the ring buffer (and, with `stacks`, the entry stack map) out
    /// of the tracer's object; the kernel side keeps writing them.
    pub fn open(tracer: &mut Tracer, stacks: bool) -> Result<Records> {
        let ebpf = &mut tracer.ebpf;
        let ring = RingBuf::try_from(
            ebpf.take_map(SLOW_EVENTS_MAP)
                .context("SLOW_EVENTS map missing")?,
        )?;
        let stacks = if stacks {
            Some(StackTraceMap::try_from(
                ebpf.take_map(ENTRY_STACKS_MAP)
                    .context("ENTRY_STACKS map missing")?,
            )?)
        } else {
            None
        };
        // SAFETY: the RingBuf owns its map's fd, which stays open and the
        // same until the AsyncFd (and the RingBuf in it) is dropped.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("cannot poll the record ring buffer: {e}"))?;
        Ok(Records { ring, stacks })
    }

    /// Waits until the kernel has submitted records (or says it may have).
    pub async fn readable(&mut self) -> io::Result<()> {
        let mut guard = self.ring.readable_mut().await?;
        // Readiness is edge-triggered: clear it before draining, so a
        // record submitted during the drain wakes the next wait.
        guard.clear_ready();
        Ok(())
    }

    /// Hands up to `limit` records to `f`, oldest first; true when it
    /// stopped at the limit, so more may be waiting. The kernel wakes a
    /// reader only once it has caught up, so a caller that stopped early
    /// must come back without waiting for [`Records::readable`].
    pub fn drain(
        &mut self,
        limit: usize,
        mut f: impl FnMut(&SlowRecord) -> Result<()>,
    ) -> Result<bool> {
        let ring = self.ring.get_mut();
        let mut n = 0;
        while n < limit {
            let Some(item) = ring.next() else {
                return Ok(false);
            };
            n += 1;
            if item.len() < size_of::<SlowRecord>() {
                continue;
            }
            // SAFETY: the kernel wrote a whole SlowRecord (plain integers);
            // read_unaligned makes no assumption about the item's alignment.
            let record = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<SlowRecord>()) };
            drop(item);
            f(&record)?;
        }
        Ok(true)
    }

    /// The instruction pointers of an entry stack, innermost first.
    pub fn stack(&self, id: u32) -> Option<Vec<u64>> {
        let trace = self.stacks.as_ref()?.get(&id, 0).ok()?;
        Some(trace.frames().iter().map(|f| f.ip).collect())
    }

    /// Frees entry stacks that have been read. The map is a hash table
    /// that never evicts: a stack whose slot is taken is lost, so stacks
    /// left in it make every later one likelier to be lost.
    pub fn forget_stacks(&mut self, ids: impl IntoIterator<Item = u32>) {
        let Some(stacks) = self.stacks.as_mut() else {
            return;
        };
        for id in ids {
            // Gone already is fine: nothing else removes entries, but a
            // failed removal only costs that slot, never a record.
            let _ = stacks.remove(&id);
        }
    }
}

impl Records {
    /// Frees every entry stack: a recorder that keeps only some calls'
    /// records (`serve --capture`) would otherwise fill the map with the
    /// stacks of calls it never reads.
    pub fn clear_stacks(&mut self) {
        let Some(stacks) = self.stacks.as_mut() else {
            return;
        };
        let ids: Vec<u32> = stacks.stack_ids().filter_map(Result::ok).collect();
        for id in ids {
            let _ = stacks.remove(&id);
        }
    }
}

/// The kernel's per-CPU counts of slow calls, indexed by CPU.
pub fn kernel_stats(tracer: &Tracer) -> Result<Vec<SlowStats>> {
    let stats: PerCpuArray<_, SlowStats> = PerCpuArray::try_from(
        tracer
            .ebpf
            .map(SLOW_STATS_MAP)
            .context("SLOW_STATS map missing")?,
    )?;
    Ok(stats
        .get(&0, 0)
        .context("cannot read the slow-call counts")?
        .iter()
        .copied()
        .collect())
}
