//! The kernel side of `netlat slow` as userspace sees it (the context
//! programs that ride beside a function backend attach in `session`): the
//! ring buffer of records, the entry stacks that come in them, and the
//! kernel's own counts.

use std::{collections::HashMap, io};

use anyhow::{Context as _, Result};
use aya::maps::{MapData, PerCpuArray, RingBuf};
use netlat_common::{
    MAX_FRAMES, NO_STACK, SLOW_EVENTS_MAP, SLOW_STATS_MAP, SlowRecord, SlowStackRecord, SlowStats,
};
use tokio::io::unix::AsyncFd;

use super::backend::attach::Tracer;

/// The ring buffer, readable from the async runtime.
pub struct Records {
    ring: AsyncFd<RingBuf<MapData>>,
    /// `--stack`: the frames of records not yet forgotten, by an id of
    /// netlat's own (each record its own, never reused while held).
    stacks: Option<Stacks>,
}

#[derive(Default)]
struct Stacks {
    held: HashMap<u32, Vec<u64>>,
    next_id: u32,
}

impl Stacks {
    fn keep(&mut self, frames: &[u64]) -> i32 {
        let id = self.next_id;
        // Ids are i32 in the record; past i32::MAX they start again at 0,
        // long after those calls were printed and forgotten.
        self.next_id = if id >= i32::MAX as u32 { 0 } else { id + 1 };
        self.held.insert(id, frames.to_vec());
        id as i32
    }
}

impl Records {
    /// Takes the ring buffer out of the tracer's object; the kernel side
    /// keeps writing it. With `stacks`, the records carry entry stacks
    /// (the object must have been loaded with `SlowSettings::stacks`).
    pub fn open(tracer: &mut Tracer, stacks: bool) -> Result<Records> {
        let ebpf = &mut tracer.ebpf;
        let ring = RingBuf::try_from(
            ebpf.take_map(SLOW_EVENTS_MAP)
                .context("SLOW_EVENTS map missing")?,
        )?;
        // SAFETY: the RingBuf owns its map's fd, which stays open and the
        // same until the AsyncFd (and the RingBuf in it) is dropped.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("cannot poll the record ring buffer: {e}"))?;
        Ok(Records {
            ring,
            stacks: stacks.then(Stacks::default),
        })
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
    ///
    /// A record's entry stack, if it came with one, is held under the
    /// record's `stack_id` until [`Records::forget_stacks`].
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
            let mut record =
                unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<SlowRecord>()) };
            record.stack_id = NO_STACK;
            if let Some(stacks) = &mut self.stacks
                && item.len() >= size_of::<SlowStackRecord>()
            {
                // SAFETY: as above, a whole SlowStackRecord.
                let with =
                    unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<SlowStackRecord>()) };
                let len = (with.frames.len as usize).min(MAX_FRAMES);
                if len > 0 {
                    record.stack_id = stacks.keep(&with.frames.ips[..len]);
                }
            }
            drop(item);
            f(&record)?;
        }
        Ok(true)
    }

    /// The instruction pointers of an entry stack, innermost first.
    pub fn stack(&self, id: u32) -> Option<Vec<u64>> {
        self.stacks.as_ref()?.held.get(&id).cloned()
    }

    /// Lets go of entry stacks that have been read.
    pub fn forget_stacks(&mut self, ids: impl IntoIterator<Item = u32>) {
        let Some(stacks) = self.stacks.as_mut() else {
            return;
        };
        for id in ids {
            stacks.held.remove(&id);
        }
    }

    /// Lets go of every entry stack held: a recorder that keeps only some
    /// calls' records (`serve --capture`) would otherwise hold the stacks
    /// of calls it never reads.
    pub fn clear_stacks(&mut self) {
        if let Some(stacks) = self.stacks.as_mut() {
            stacks.held.clear();
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
