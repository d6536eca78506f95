//! The data netlat computes with: histograms, reports, units and durations,
//! and the comparison of recorded runs. Pure: no kernel, no files.

pub mod compare;
pub mod duration;
pub mod experiment_change;
pub mod histogram;
pub mod info;
pub mod net_rx;
pub mod recording;
pub mod report;
pub mod size_band;
pub mod slow_call;
pub mod softnet;
pub mod unit;
