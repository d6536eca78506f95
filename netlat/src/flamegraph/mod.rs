//! `netlat flamegraph`: sample kernel stacks on every CPU, optionally only
//! inside (slow) calls of one function, and draw them.
//!
//! Data path: `sampler` (perf events -> stack map + counts) -> `fold`
//! (symbolize, collapse to "a;b;c N" lines) -> `svg` (inferno); for the
//! command, `collect` (attach, detach, read the maps) -> `draw` (fold,
//! write the files) -> `culprit` (rank under `--during`).

pub mod collect;
pub mod culprit;
pub mod draw;
pub mod fold;
pub mod sampler;
pub mod summary;
pub mod svg;
