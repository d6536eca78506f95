//! One watched function's recorder, as a task of `serve`: reads the
//! kernel's slow-call records as they come, keeps a minute of per-second
//! histograms, and when a capture's window closes gathers the kernel's
//! side (counts, in-call samples, entry stacks) and hands the finished
//! document to the store.
//!
//! The kernel does the per-call work: the exit program compares each
//! call with the threshold and writes a record only for a slow one, within
//! a per-CPU record budget; the sampler holds its samples per call and
//! keeps them only for calls over the threshold. Userspace wakes for
//! records and once a second.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result};
use netlat_common::{SlowRecord, SlowStats};

use super::{
    assemble::{self, Gathered},
    document::{Accounting, Capture, Second},
    window::{Seen, Settings, StormLimit, Window},
};
use crate::{
    flamegraph::sampler,
    model::{histogram::Histogram, report::Summary, slow_call::Clock},
    system::conditions,
    tracing::{
        backend::attach::Tracer,
        collect::Collector,
        slow_records::{self, Records},
    },
};

/// Seconds of histograms kept from before a trigger.
pub const BEFORE_SECONDS: usize = 60;
/// How long after a window's end records may still be on their way.
const SETTLE: Duration = Duration::from_millis(50);
/// While no capture is open, the sample and entry-stack maps are emptied
/// this often, so they never fill: a capture's fast-call baseline is at
/// most this old.
const RESET_EVERY: Duration = Duration::from_secs(10);
/// Records taken from the buffer at a time.
const BATCH: usize = 1024;

/// Where a finished capture goes.
pub trait Keep: Send + Sync {
    /// Writes the capture whole or not at all.
    fn keep(&self, capture: &Capture) -> Result<(), KeepError>;
}

#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    /// No room (ENOSPC, EDQUOT, or over the store's bounds).
    #[error("{0}")]
    Full(String),
    #[error("{0}")]
    Other(String),
}

/// Why a capture that was due is not on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    Cooldown,
    Disk,
    Storm,
}

impl SkipReason {
    pub const ALL: [SkipReason; 3] = [SkipReason::Cooldown, SkipReason::Disk, SkipReason::Storm];

    pub fn label(self) -> &'static str {
        match self {
            SkipReason::Cooldown => "cooldown",
            SkipReason::Disk => "disk",
            SkipReason::Storm => "storm",
        }
    }
}

/// A captured call, for the exemplar on its histogram bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    pub capture_id: String,
    pub duration_ns: u64,
    pub unix_s: f64,
    pub cpu: u32,
}

/// What `/metrics` shows of a recorder, shared with the scrape.
#[derive(Debug, Default)]
pub struct Status {
    pub captures: AtomicU64,
    skipped: [AtomicU64; 3],
    /// The latest capture's trigger (Prometheus keeps one exemplar per
    /// series and bucket; older ones are in its storage already).
    exemplar: Mutex<Option<Exemplar>>,
}

impl Status {
    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.skipped[reason as usize].load(Ordering::Relaxed)
    }

    fn skip(&self, reason: SkipReason) {
        self.skipped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn exemplar(&self) -> Option<Exemplar> {
        self.exemplar
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What every recorder of one serve shares.
pub struct Shared {
    pub settings: Settings,
    pub frequency_hz: u64,
    pub storm: Mutex<StormLimit>,
    pub keep: Arc<dyn Keep>,
    /// One capture is built at a time, whatever the number of functions:
    /// naming stacks parses kallsyms (~30 MB while it lasts), so this
    /// bounds serve's memory at one build's worth above its resting size.
    pub building: Mutex<()>,
    pub host: String,
    pub kernel: String,
}

/// One function's recorder.
pub struct Recorder {
    pub function: String,
    pub threshold_ns: u64,
    pub backend: &'static str,
    /// Timed by the NET_RX softirq tracepoints (for folding the stacks).
    pub softirq: bool,
    pub tracer: Arc<Mutex<Tracer>>,
    pub records: Records,
    pub shared: Arc<Shared>,
    pub status: Arc<Status>,
}

/// The kernel's slow-call counts summed over CPUs.
fn kernel_counts(tracer: &Tracer) -> Result<SlowStats> {
    let mut sum = SlowStats::default();
    for s in slow_records::kernel_stats(tracer)? {
        sum.add(&s);
    }
    Ok(sum)
}

fn unix_s_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The capture being gathered: what was known at its trigger.
struct Opening {
    before: Vec<Second>,
    window: Vec<Second>,
    conditions: conditions::Start,
}

struct Run {
    rec: Recorder,
    clock: Clock,
    window: Window<SlowRecord>,
    collector: Collector,
    seconds: VecDeque<Second>,
    opening: Option<Opening>,
    /// The kernel's counts when the recorder last armed.
    armed_counts: SlowStats,
    /// The sampler's loss counts when its maps were last emptied.
    armed_sample_loss: u64,
    /// The sampler's per-call counts then.
    armed_sample_calls: (u64, u64),
    /// When those counts were read (monotonic ns).
    armed_ns: u64,
    last_reset_ns: u64,
}

impl Recorder {
    /// Runs until the task is dropped; an error reading the kernel's maps
    /// ends this recorder (the exporter carries on) and is returned.
    pub async fn run(self) -> Result<()> {
        let settings = self.shared.settings;
        let mut run = Run {
            rec: self,
            clock: Clock::now(),
            window: Window::new(settings),
            collector: Collector::new(),
            seconds: VecDeque::with_capacity(BEFORE_SECONDS + 1),
            opening: None,
            armed_counts: SlowStats::default(),
            armed_sample_loss: 0,
            armed_sample_calls: (0, 0),
            armed_ns: 0,
            last_reset_ns: 0,
        };
        run.arm()?;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Checked here, not only by the timer below: under a stream of
            // records the select would find them ready every time and a
            // freshly made timer not yet fired, and the window would never
            // close while the storm lasted.
            let now = Clock::monotonic_ns();
            let settle = SETTLE.as_nanos() as u64;
            if run.window.due(now.saturating_sub(settle)) {
                run.close().await?;
                continue;
            }
            let close_in = run
                .window
                .close_at()
                .map(|at| Duration::from_nanos(at.saturating_add(settle).saturating_sub(now)));
            tokio::select! {
                ready = run.rec.records.readable() => {
                    ready.context("cannot wait for slow-call records")?;
                    run.drain()?;
                }
                _ = tick.tick() => run.second()?,
                () = sleep_or_never(close_in) => {}
            }
        }
    }
}

async fn sleep_or_never(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn lock(tracer: &Mutex<Tracer>) -> std::sync::MutexGuard<'_, Tracer> {
    tracer.lock().unwrap_or_else(|p| p.into_inner())
}

impl Run {
    /// Starts a clean stretch: empty sample and entry-stack maps, and the
    /// kernel's counts to measure the next capture's calls from.
    fn arm(&mut self) -> Result<()> {
        let mut tracer = lock(&self.rec.tracer);
        // Emptying the maps takes a syscall per entry: done before the
        // counts are read, so no call slips in between the two.
        tracer.reset_sampler()?;
        let tally = sampler::tally(tracer.ebpf())?;
        let loss = tally.lost_stack + tally.lost_pending + tally.lost_count;
        let now = Clock::monotonic_ns();
        let counts = kernel_counts(&tracer)?;
        drop(tracer);
        self.rec.records.clear_stacks();
        self.armed_counts = counts;
        self.armed_sample_loss = loss;
        self.armed_sample_calls = (tally.slow_calls, tally.fast_calls);
        self.armed_ns = now;
        self.last_reset_ns = now;
        // Records of calls that ended before the counts were read are in
        // them already: they belong to no capture.
        self.drain()
    }

    /// Takes every waiting record to the window.
    fn drain(&mut self) -> Result<()> {
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            let more = self.rec.records.drain(BATCH, |r| {
                batch.push(*r);
                Ok(())
            })?;
            for r in batch {
                self.take(r);
            }
            if !more {
                return Ok(());
            }
        }
    }

    fn take(&mut self, r: SlowRecord) {
        let end_ns = r.start_ns.saturating_add(r.duration_ns);
        if end_ns < self.armed_ns {
            self.window.miss();
            return;
        }
        let may_open = !self.window.is_armed()
            || self
                .rec
                .shared
                .storm
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .try_open(end_ns);
        match self.window.on_call(end_ns, r, may_open) {
            Seen::Opened => {
                self.opening = Some(Opening {
                    before: self.seconds.iter().cloned().collect(),
                    window: Vec::new(),
                    conditions: conditions::start(),
                });
            }
            Seen::Joined => {}
            Seen::Missed { first_of_cooldown } => {
                if self.window.is_armed() {
                    // Armed yet refused: the node-wide storm limit.
                    self.rec.status.skip(SkipReason::Storm);
                    self.window.abandon(Clock::monotonic_ns());
                } else if first_of_cooldown {
                    self.rec.status.skip(SkipReason::Cooldown);
                }
            }
        }
    }

    /// Once a second: the second's histogram, a cooldown that ended, and
    /// the periodic emptying of the maps.
    fn second(&mut self) -> Result<()> {
        let slot = self.collector.rotate(&mut lock(&self.rec.tracer))?;
        let h = Histogram::merged(&slot.per_cpu);
        let second = Second {
            unix_s: unix_s_now(),
            summary: Summary::from(&h),
        };
        match &mut self.opening {
            Some(o) => o.window.push(second),
            None => {
                if self.seconds.len() == BEFORE_SECONDS {
                    self.seconds.pop_front();
                }
                self.seconds.push_back(second);
            }
        }
        let now = Clock::monotonic_ns();
        if self.window.rearm_if_due(now) {
            // What the cooldown left in the buffer is counted as missed.
            return self.arm();
        }
        if self.window.is_open()
            || now.saturating_sub(self.last_reset_ns) < RESET_EVERY.as_nanos() as u64
        {
            return Ok(());
        }
        if self.window.is_armed() {
            // A slow call waiting in the buffer is a trigger, not the past
            // (the counts of the last arm still hold: nothing was slow since).
            self.drain()?;
            if self.window.is_open() {
                return Ok(());
            }
        }
        // In a cooldown the maps are emptied too: its samples are of calls
        // no capture holds.
        self.arm()
    }

    /// The window has ended: gather the kernel's side, then build and keep
    /// the document off the async thread (naming stacks reads kallsyms).
    async fn close(&mut self) -> Result<()> {
        self.drain()?;
        let Some(closed) = self.window.close() else {
            return Ok(());
        };
        let Some(opening) = self.opening.take() else {
            return Ok(());
        };
        let (counts, samples) = {
            let tracer = lock(&self.rec.tracer);
            let counts = kernel_counts(&tracer)?;
            let samples = sampler::read(tracer.ebpf())?;
            (counts, samples)
        };
        let sampled_calls = (
            samples
                .tally
                .slow_calls
                .saturating_sub(self.armed_sample_calls.0),
            samples
                .tally
                .fast_calls
                .saturating_sub(self.armed_sample_calls.1),
        );
        let sample_loss =
            samples.tally.lost_stack + samples.tally.lost_pending + samples.tally.lost_count;
        // Entry stacks while the map still holds them (nothing empties it
        // before the next arm).
        let entry_stacks: BTreeMap<u32, Vec<u64>> = closed
            .calls
            .iter()
            .filter_map(crate::model::slow_call::SlowCall::stack_id)
            .filter_map(|id| Some((id, self.rec.records.stack(id)?)))
            .collect();
        let a = self.armed_counts;
        let over = counts.over.saturating_sub(a.over);
        let lost_ring = counts.lost.saturating_sub(a.lost);
        let limited = counts.limited.saturating_sub(a.limited);
        let recorded = closed.calls.len() as u64;
        let accounted = recorded + closed.not_kept + closed.after_window + lost_ring + limited;
        let accounting = Accounting {
            kernel_over_threshold: over,
            recorded,
            not_kept: closed.not_kept,
            after_window: closed.after_window,
            lost_ring,
            limited,
            unsettled: over as i64 - accounted as i64,
        };
        let gathered = Gathered {
            function: self.rec.function.clone(),
            threshold_ns: self.rec.threshold_ns,
            backend: self.rec.backend,
            softirq: self.rec.softirq,
            host: self.rec.shared.host.clone(),
            kernel: self.rec.shared.kernel.clone(),
            clock: self.clock,
            records: closed.calls,
            missed_before: closed.missed_before,
            window_end_ns: closed.end_ns,
            accounting,
            samples,
            stacks_lost: sample_loss.saturating_sub(self.armed_sample_loss),
            entry_stacks_lost: counts.lost_stacks.saturating_sub(a.lost_stacks),
            sampled_calls,
            frequency_hz: self.rec.shared.frequency_hz,
            entry_stacks,
            before: opening.before,
            window: opening.window,
            conditions: opening.conditions,
        };
        let shared = Arc::clone(&self.rec.shared);
        let built = tokio::task::spawn_blocking(move || {
            let _one_at_a_time = shared.building.lock().unwrap_or_else(|p| p.into_inner());
            let keep = &shared.keep;
            let capture = assemble::build(gathered)?;
            let kept = keep.keep(&capture);
            give_back_memory();
            Some((capture, kept))
        })
        .await
        .context("the capture builder failed")?;
        let Some((capture, kept)) = built else {
            return Ok(());
        };
        match kept {
            Ok(()) => {
                self.rec.status.captures.fetch_add(1, Ordering::Relaxed);
                let trigger = &capture.trigger.call;
                *self
                    .rec
                    .status
                    .exemplar
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(Exemplar {
                    capture_id: capture.id.clone(),
                    duration_ns: trigger.duration_ns,
                    unix_s: trigger.start_unix_ns as f64 / 1e9,
                    cpu: trigger.cpu,
                });
                eprintln!(
                    "netlat: captured {} ({} slow calls, max {}): {}",
                    capture.function,
                    capture.accounting.recorded,
                    crate::render::slow::duration(capture.listing().max_duration_ns),
                    capture.id
                );
            }
            Err(KeepError::Full(why) | KeepError::Other(why)) => {
                self.rec.status.skip(SkipReason::Disk);
                eprintln!("netlat: capture of {} not kept: {why}", capture.function);
            }
        }
        Ok(())
    }
}

/// The kallsyms parse of a build is freed, but glibc keeps the pages:
/// hand them back, so serve returns to its resting size between captures
/// rather than staying at its peak for days. (musl's allocator returns
/// large frees by itself.)
fn give_back_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
