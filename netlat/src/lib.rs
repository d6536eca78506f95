//! netlat: kernel function latency histograms, flame graphs and network
//! health checks, built on eBPF.
//!
//! Data path, top to bottom: `backend` attaches the eBPF timing programs ->
//! `collect` reads and merges the per-CPU maps -> `histogram` is the model ->
//! `render` turns it into text or JSON.

pub mod doctor;
pub mod procfs;
