//! The windows of one run: when each started and ended, `--interval`'s
//! grid of ends, and the whole run `--output` keeps beside the windows.

use std::time::{Duration, Instant, SystemTime};

use crate::{
    model::report::{HistogramReport, WindowSummary},
    tracing::collect::Slot,
};

pub(super) struct Window {
    pub(super) instant: Instant,
    pub(super) wall: SystemTime,
    /// When its epoch was flipped away (or the probes came off); until
    /// then, now.
    pub(super) ended: Option<Instant>,
}

impl Window {
    pub(super) fn start() -> Window {
        Window {
            instant: Instant::now(),
            wall: SystemTime::now(),
            ended: None,
        }
    }

    pub(super) fn elapsed(&self) -> Duration {
        self.ended
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(self.instant)
    }
}

/// `--interval`'s window ends: `start + k * interval`.
pub(crate) struct Boundaries {
    start: Instant,
    interval: Duration,
    /// The index of the next end.
    k: u32,
}

impl Boundaries {
    pub(crate) fn new(start: Instant, interval: Duration) -> Boundaries {
        Boundaries {
            start,
            interval,
            k: 1,
        }
    }

    pub(crate) fn next(&self) -> Instant {
        self.start + self.interval * self.k
    }

    /// After a window ended at `now`: the next end is the first boundary
    /// after it. One that was missed (the host was too busy to read a
    /// window in time) is skipped, so the later ones stay on the grid
    /// instead of firing at once.
    pub(crate) fn advance(&mut self, now: Instant) {
        let behind =
            now.saturating_duration_since(self.start).as_nanos() / self.interval.as_nanos();
        self.k = (self.k + 1).max(u32::try_from(behind + 1).unwrap_or(u32::MAX));
    }
}

/// A run cut into `--interval` windows, added up for `--output`.
pub(super) struct WholeRun {
    pub(super) start: Window,
    /// Every window's calls together.
    pub(super) slot: Slot,
    pub(super) windows: Vec<WindowSummary>,
}

impl WholeRun {
    pub(super) fn add(&mut self, slot: &Slot, printed: &HistogramReport) {
        self.slot.absorb(slot);
        self.windows.push(WindowSummary {
            start: printed.start.clone(),
            window_ns: printed.window_ns,
            summary: printed.summary.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_ends_stay_on_the_grid() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = Boundaries::new(t0, ms(10));
        assert_eq!(b.next(), t0 + ms(10));
        // Woken 3 ms late, then read for 4 ms: the next end is still 20 ms.
        b.advance(t0 + ms(13));
        assert_eq!(b.next(), t0 + ms(20));
        // Woken late by more than a window: the missed end is skipped.
        b.advance(t0 + ms(45));
        assert_eq!(b.next(), t0 + ms(50));
        // Exactly on a boundary: the next one.
        b.advance(t0 + ms(50));
        assert_eq!(b.next(), t0 + ms(60));
    }
}
