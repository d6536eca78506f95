//! A sign of life during long runs: one line on stderr, redrawn every
//! second, with the time gone and the time left; only on a terminal, and
//! wiped before anything else is printed.

use std::{
    io::{IsTerminal as _, Write as _},
    time::{Duration, Instant},
};

use super::stop::{Stop, Woke};

/// How often the line is redrawn.
const TICK: Duration = Duration::from_secs(1);

pub struct Progress {
    started: Instant,
    total: Option<Duration>,
    enabled: bool,
    drawn: bool,
}

impl Progress {
    /// A run of `total` (None: until Ctrl-C) starting now; drawn only when
    /// stderr is a terminal.
    pub fn start(total: Option<Duration>) -> Progress {
        Progress {
            started: Instant::now(),
            total,
            enabled: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// Like [`Stop::until`], redrawing the line meanwhile; the line is
    /// gone when this returns.
    pub async fn until(&mut self, stop: &mut Stop, wake: Option<Instant>) -> Woke {
        if !self.enabled {
            return stop.until(wake).await;
        }
        loop {
            self.draw();
            let tick = Instant::now() + TICK;
            let next = wake.map_or(tick, |w| w.min(tick));
            match stop.until(Some(next)).await {
                Woke::Time if wake.is_none_or(|w| Instant::now() < w) => continue,
                woke => {
                    self.clear();
                    return woke;
                }
            }
        }
    }

    fn draw(&mut self) {
        let line = status_line(self.started.elapsed(), self.total);
        let mut err = std::io::stderr().lock();
        // \r and erase-to-end: the line overwrites itself.
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// "netlat: 12 s of 30 s, 18 s left (Ctrl-C ends it early)".
pub fn status_line(elapsed: Duration, total: Option<Duration>) -> String {
    let secs = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
    match total {
        Some(total) => format!(
            "netlat: {} of {}, {} left (Ctrl-C ends it early)",
            secs(elapsed),
            humantime::format_duration(Duration::from_millis(total.as_millis() as u64)),
            secs(total.saturating_sub(elapsed) + Duration::from_millis(999))
        ),
        None => format!("netlat: {} so far (Ctrl-C ends it)", secs(elapsed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_time_gone_and_left() {
        assert_eq!(
            status_line(Duration::from_millis(12_300), Some(Duration::from_secs(30))),
            "netlat: 12s of 30s, 18s left (Ctrl-C ends it early)"
        );
        assert_eq!(
            status_line(Duration::from_secs(125), Some(Duration::from_secs(300))),
            "netlat: 2m 5s of 5m, 2m 55s left (Ctrl-C ends it early)"
        );
        assert_eq!(
            status_line(
                Duration::from_millis(1_200),
                Some(Duration::from_millis(2_500))
            ),
            "netlat: 1s of 2s 500ms, 2s left (Ctrl-C ends it early)"
        );
        assert_eq!(
            status_line(Duration::from_secs(65), None),
            "netlat: 1m 5s so far (Ctrl-C ends it)"
        );
    }
}
