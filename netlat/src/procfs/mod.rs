//! Parsers of /proc and /sys files. Each takes text, so fixtures test them;
//! the live readers are thin wrappers. (The `procfs` crate covers
//! /proc/net/snmp and /proc/net/dev but not these two files.)

pub mod netstat;
pub mod softnet;
pub mod sysctl;
