//! The host as netlat reads it: /proc and /sys parsers, kallsyms, host
//! identity, privileges, and the conditions recorded beside each run.

pub mod atomic_file;
pub mod conditions;
pub mod host;
pub mod journal;
pub mod kallsyms;
pub mod privileges;
pub mod procfs;
pub mod run_file;
pub mod stack_frames;
pub mod sysctl_change;
