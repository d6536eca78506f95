//! The flight recorder of `serve --capture`: when a call of a watched
//! function crosses its threshold, the evidence of the spike (every slow
//! call of a short window, the kernel stacks sampled inside them, the
//! minute of histograms before, the kernel's counters) is kept on disk,
//! unattended, for someone to read next morning.
//!
//! Data path: the kernel's slow-call records and in-call samples (`live`)
//! -> the per-function window state (`window`) -> one `document::Capture`
//! -> `store` (one file per capture, bounded) -> serve's HTTP pages and
//! `netlat captures`.

pub mod assemble;
pub mod document;
pub mod flame;
pub mod live;
pub mod store;
pub mod window;

#[cfg(test)]
pub(crate) mod fixture;
