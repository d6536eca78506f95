//! netlat: kernel function latency histograms, flame graphs and network
//! health checks, built on eBPF.
//!
//! Data path, top to bottom: `tracing::backend` attaches the eBPF timing
//! programs -> `tracing::collect` reads the per-CPU maps ->
//! `model::histogram` merges them -> `model::report` is the result as plain
//! data -> `render` turns it into text or JSON. `system` reads the host
//! (/proc, /sys, kallsyms). `commands` has one module per subcommand, each
//! owning its arguments and its run; `cli` only dispatches.

/// `netlat --version`: what a bug report needs to name the build.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("NETLAT_COMMIT"),
    ", aya ",
    env!("NETLAT_AYA_VERSION"),
    ")"
);

pub mod cli;
pub mod commands;
pub mod docs;
pub mod doctor;
pub mod flamegraph;
#[cfg(test)]
mod layering;
pub mod model;
pub mod oneline;
pub mod recorder;
pub mod render;
pub mod serve;
pub mod system;
pub mod timeline;
pub mod tracing;
