//! Waiting for the end of a window: a deadline, Ctrl-C, SIGTERM or SIGHUP
//! (the terminal or SSH session went away: end as cleanly as on SIGTERM).

use std::{future, time::Instant};

use anyhow::{Context as _, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Stop {
    sigint: Signal,
    sigterm: Signal,
    sighup: Signal,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Woke {
    /// The wake-up time passed.
    Time,
    /// SIGINT, SIGTERM or SIGHUP: print what was collected and exit 0.
    Signal,
}

impl Stop {
    /// Install before attaching, so a signal right after attaching is handled
    /// rather than fatal.
    pub fn install() -> Result<Stop> {
        Ok(Stop {
            sigint: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            sigterm: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            sighup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
        })
    }

    /// Sleeps until `wake` (forever if None) or a signal.
    pub async fn until(&mut self, wake: Option<Instant>) -> Woke {
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => Woke::Time,
            _ = self.sigint.recv() => Woke::Signal,
            _ = self.sigterm.recv() => Woke::Signal,
            _ = self.sighup.recv() => Woke::Signal,
        }
    }
}

impl Stop {
    /// Whether a stop is due right now, without waiting: for a loop that
    /// has work queued and must still notice Ctrl-C between two pieces.
    pub async fn due(&mut self, wake: Option<Instant>) -> Option<Woke> {
        if wake.is_some_and(|t| Instant::now() >= t) {
            return Some(Woke::Time);
        }
        // A busy current-thread runtime only reads signals when a task
        // yields: let it turn once before asking.
        tokio::task::yield_now().await;
        tokio::select! {
            biased;
            _ = self.sigint.recv() => Some(Woke::Signal),
            _ = self.sigterm.recv() => Some(Woke::Signal),
            _ = self.sighup.recv() => Some(Woke::Signal),
            () = future::ready(()) => None,
        }
    }
}

/// A current-thread runtime: netlat does no parallel async work.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
