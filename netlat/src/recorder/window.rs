//! When a watched function's slow call opens a capture, which calls belong
//! to it, and when the next may open: a state machine on the kernel's
//! monotonic clock, with no I/O, so its rules are tested without a kernel.
//!
//! Armed -> (a slow call) -> Open for `window` after that call's end ->
//! Cooldown for `cooldown` -> Armed. Slow calls that come while the
//! recorder is cooling down are counted and reported by the next capture.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long after the first slow call's end the capture collects.
    pub window_ns: u64,
    /// Least time from one capture's window end to the next trigger.
    pub cooldown_ns: u64,
    /// Calls kept per capture; more are counted, not kept.
    pub max_calls: usize,
}

/// Calls the capture holds when it closes.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed<T> {
    /// The trigger first, then in the order they reached userspace.
    pub calls: Vec<T>,
    pub not_kept: u64,
    pub after_window: u64,
    pub missed_before: u64,
    /// The window's end, monotonic ns.
    pub end_ns: u64,
}

#[derive(Debug)]
enum State<T> {
    Armed,
    Open {
        close_at_ns: u64,
        calls: Vec<T>,
        not_kept: u64,
        after_window: u64,
        missed_before: u64,
    },
    Cooling {
        until_ns: u64,
    },
}

/// What a slow call did to the recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// It opened a capture.
    Opened,
    /// It joined (or was counted by) the open capture.
    Joined,
    /// It came during a cooldown; the first of a cooldown is a capture
    /// skipped.
    Missed { first_of_cooldown: bool },
}

#[derive(Debug)]
pub struct Window<T> {
    settings: Settings,
    state: State<T>,
    /// Slow calls no capture holds since the last one closed.
    missed: u64,
    /// Whether the current cooldown has seen a slow call.
    missed_this_cooldown: bool,
}

impl<T> Window<T> {
    pub fn new(settings: Settings) -> Window<T> {
        Window {
            settings,
            state: State::Armed,
            missed: 0,
            missed_this_cooldown: false,
        }
    }

    pub fn is_armed(&self) -> bool {
        matches!(self.state, State::Armed)
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    /// A slow call that ended at `end_ns`. `may_open` is false when a
    /// capture may not start now (the node-wide storm limit): the call is
    /// then missed like one in a cooldown.
    pub fn on_call(&mut self, end_ns: u64, call: T, may_open: bool) -> Seen {
        match &mut self.state {
            State::Armed if may_open => {
                self.state = State::Open {
                    close_at_ns: end_ns.saturating_add(self.settings.window_ns),
                    calls: vec![call],
                    not_kept: 0,
                    after_window: 0,
                    missed_before: std::mem::take(&mut self.missed),
                };
                Seen::Opened
            }
            State::Open {
                close_at_ns,
                calls,
                not_kept,
                after_window,
                ..
            } => {
                if end_ns > *close_at_ns {
                    *after_window += 1;
                } else if calls.len() < self.settings.max_calls {
                    calls.push(call);
                } else {
                    *not_kept += 1;
                }
                Seen::Joined
            }
            State::Armed | State::Cooling { .. } => {
                self.missed += 1;
                let first = !self.missed_this_cooldown;
                self.missed_this_cooldown = true;
                Seen::Missed {
                    first_of_cooldown: first,
                }
            }
        }
    }

    /// A slow call from before the recorder armed: no capture's, counted
    /// as missed by the next.
    pub fn miss(&mut self) {
        self.missed += 1;
    }

    /// Whether the open capture's window has ended at `now_ns`.
    pub fn due(&self, now_ns: u64) -> bool {
        matches!(self.state, State::Open { close_at_ns, .. } if now_ns >= close_at_ns)
    }

    /// When the open capture's window ends.
    pub fn close_at(&self) -> Option<u64> {
        match self.state {
            State::Open { close_at_ns, .. } => Some(close_at_ns),
            _ => None,
        }
    }

    /// Ends the open capture and starts the cooldown; None if none is open.
    pub fn close(&mut self) -> Option<Closed<T>> {
        let State::Open {
            close_at_ns,
            calls,
            not_kept,
            after_window,
            missed_before,
        } = std::mem::replace(&mut self.state, State::Armed)
        else {
            return None;
        };
        self.state = State::Cooling {
            until_ns: close_at_ns.saturating_add(self.settings.cooldown_ns),
        };
        // Calls that ended after the window belong to no capture.
        self.missed = after_window;
        self.missed_this_cooldown = false;
        Some(Closed {
            calls,
            not_kept,
            after_window,
            missed_before,
            end_ns: close_at_ns,
        })
    }

    /// Ends a cooldown that is over at `now_ns`; true if it re-armed.
    pub fn rearm_if_due(&mut self, now_ns: u64) -> bool {
        if matches!(self.state, State::Cooling { until_ns } if now_ns >= until_ns) {
            self.state = State::Armed;
            self.missed_this_cooldown = false;
            return true;
        }
        false
    }

    /// A capture that was refused (storm) or could not be written: the
    /// recorder cools down as after a capture.
    pub fn abandon(&mut self, now_ns: u64) {
        if let Some(closed) = self.close() {
            self.missed += closed.calls.len() as u64 + closed.not_kept;
        }
        if matches!(self.state, State::Armed) {
            self.state = State::Cooling {
                until_ns: now_ns.saturating_add(self.settings.cooldown_ns),
            };
        }
    }
}

/// The node-wide limit on captures: at most `max` in any `period_ns`,
/// whatever the thresholds and cooldowns, so a threshold every call
/// crosses cannot churn the disk.
#[derive(Debug)]
pub struct StormLimit {
    max: usize,
    period_ns: u64,
    opened: VecDeque<u64>,
}

impl StormLimit {
    pub fn new(max: usize, period_ns: u64) -> StormLimit {
        StormLimit {
            max,
            period_ns,
            opened: VecDeque::new(),
        }
    }

    /// Whether a capture may open at `now_ns`; if so, it is counted.
    pub fn try_open(&mut self, now_ns: u64) -> bool {
        while self
            .opened
            .front()
            .is_some_and(|&t| now_ns.saturating_sub(t) >= self.period_ns)
        {
            self.opened.pop_front();
        }
        if self.opened.len() >= self.max {
            return false;
        }
        self.opened.push_back(now_ns);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn window() -> Window<u32> {
        Window::new(Settings {
            window_ns: 2_000 * MS,
            cooldown_ns: 60_000 * MS,
            max_calls: 3,
        })
    }

    #[test]
    fn a_capture_holds_the_calls_of_its_window_and_counts_the_rest() {
        let mut w = window();
        assert_eq!(w.on_call(1_000 * MS, 1, true), Seen::Opened);
        assert_eq!(w.on_call(1_500 * MS, 2, true), Seen::Joined);
        assert_eq!(w.on_call(3_000 * MS, 3, true), Seen::Joined);
        // Past the cap of 3.
        assert_eq!(w.on_call(3_000 * MS, 4, true), Seen::Joined);
        // Ended after the window (1 s + 2 s).
        assert_eq!(w.on_call(3_001 * MS, 5, true), Seen::Joined);
        assert!(!w.due(2_999 * MS));
        assert!(w.due(3_000 * MS));
        let closed = w.close().unwrap();
        assert_eq!(closed.calls, vec![1, 2, 3]);
        assert_eq!((closed.not_kept, closed.after_window), (1, 1));
        assert_eq!(closed.missed_before, 0);
        assert_eq!(closed.end_ns, 3_000 * MS);
    }

    #[test]
    fn cooldown_counts_what_it_misses_and_the_next_capture_says_so() {
        let mut w = window();
        w.on_call(0, 1, true);
        w.on_call(2_500 * MS, 9, true); // after the window
        w.close().unwrap();
        assert_eq!(
            w.on_call(10_000 * MS, 2, true),
            Seen::Missed {
                first_of_cooldown: true
            }
        );
        assert_eq!(
            w.on_call(11_000 * MS, 3, true),
            Seen::Missed {
                first_of_cooldown: false
            }
        );
        assert!(!w.rearm_if_due(61_999 * MS));
        assert!(w.rearm_if_due(62_000 * MS));
        assert_eq!(w.on_call(70_000 * MS, 4, true), Seen::Opened);
        let closed = w.close().unwrap();
        // One after the first window, two in the cooldown.
        assert_eq!(closed.missed_before, 3);
    }

    #[test]
    fn a_refused_open_is_missed_and_cools_down() {
        let mut w = window();
        assert_eq!(
            w.on_call(5, 1, false),
            Seen::Missed {
                first_of_cooldown: true
            }
        );
        w.abandon(5);
        assert!(!w.is_armed());
        assert!(w.rearm_if_due(5 + 60_000 * MS));
        assert_eq!(w.on_call(70_000 * MS, 2, true), Seen::Opened);
        assert_eq!(w.close().unwrap().missed_before, 1);
    }

    #[test]
    fn an_abandoned_capture_counts_its_calls_as_missed() {
        let mut w = window();
        w.on_call(0, 1, true);
        w.on_call(1, 2, true);
        w.abandon(10);
        assert!(w.rearm_if_due(2_000 * MS + 60_000 * MS));
        w.on_call(100_000 * MS, 3, true);
        assert_eq!(w.close().unwrap().missed_before, 2);
    }

    #[test]
    fn storm_limit_allows_max_per_period() {
        let mut s = StormLimit::new(2, 100);
        assert!(s.try_open(0));
        assert!(s.try_open(10));
        assert!(!s.try_open(50));
        assert!(s.try_open(100));
        assert!(!s.try_open(105));
        assert!(s.try_open(110));
    }
}
