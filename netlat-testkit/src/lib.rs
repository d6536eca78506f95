//! Test support shared by the host integration tests and the VM guest runner:
//! real traffic generators and independent readers of the kernel's own
//! counters (ground truth; deliberately not netlat's parsers).

pub mod loopback;
pub mod softirqs;
