//! netlat: kernel function latency histograms, flame graphs and network
//! health checks, built on eBPF.
//!
//! Data path, top to bottom: `backend` attaches the eBPF timing programs ->
//! `collect` reads the per-CPU maps -> `histogram` merges them into the
//! model -> `report` is the result as plain data -> `render` turns it into
//! text or JSON. `commands` wires one subcommand each; `cli` parses.

pub mod backend;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod compare;
pub mod conditions;
pub mod doctor;
pub mod duration;
pub mod flamegraph;
pub mod group_by;
pub mod histogram;
pub mod host;
pub mod kallsyms;
pub mod kernel_btf;
pub mod oneline;
pub mod privileges;
pub mod procfs;
pub mod render;
pub mod report;
pub mod serve;
pub mod unit;
