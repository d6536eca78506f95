//! `netlat flamegraph`: sample kernel stacks on every CPU, optionally only
//! inside (slow) calls of one function, and draw them.
//!
//! Data path: `sampler` (perf events -> stack map + counts) -> `fold`
//! (symbolize, collapse to "a;b;c N" lines) -> `svg` (inferno).

pub mod culprit;
pub mod fold;
pub mod sampler;
pub mod summary;
pub mod svg;
