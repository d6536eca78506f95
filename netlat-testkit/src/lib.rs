//! Test support shared by the host integration tests and the VM guest runner:
//! real traffic generators, independent readers of the kernel's own counters
//! (ground truth; deliberately not netlat's parsers), and running netlat.

pub mod autotuned;
pub mod collapse;
pub mod kernel_facts;
pub mod loopback;
pub mod netlat;
pub mod netstat;
pub mod scrape;
pub mod scratch;
pub mod softirqs;
pub mod softnet;
pub mod starve;
