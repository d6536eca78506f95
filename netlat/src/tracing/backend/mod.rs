//! Which eBPF programs time a function on this kernel, and attaching them.
//!
//! `choice` decides, in one table, which backends may serve a request and in
//! what order; `attach` loads and attaches one, turning kernel refusals into
//! reasons a user can act on.

pub mod attach;
pub mod choice;

use std::fmt;

use netlat_common::names::programs;

/// A way of timing a function, each an entry/exit program pair in netlat-ebpf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Fentry,
    Kprobe,
    /// The NET_RX softirq tracepoints, BTF-typed.
    TpBtf,
    /// The NET_RX softirq tracepoints, raw.
    RawTp,
    /// The NET_RX softirq tracepoints, classic perf tracepoints.
    Tracepoint,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Fentry => "fentry",
            Backend::Kprobe => "kprobe",
            Backend::TpBtf => "tp_btf",
            Backend::RawTp => "raw_tp",
            Backend::Tracepoint => "tracepoint",
        }
    }

    /// Whether the backend probes the function itself, and so can read its
    /// arguments (`--by`, `slow`'s socket fields) but not tell softirq from
    /// task without the context programs.
    pub fn reads_arguments(self) -> bool {
        match self {
            Backend::Fentry | Backend::Kprobe => true,
            Backend::TpBtf | Backend::RawTp | Backend::Tracepoint => false,
        }
    }

    /// Whether the backend times the NET_RX softirq through its tracepoints,
    /// so every call it sees runs in softirq context.
    pub fn times_softirq(self) -> bool {
        !self.reads_arguments()
    }

    /// What is attached, for the first line and the report footer.
    pub fn detail(self, function: &str) -> String {
        match self {
            Backend::Fentry => format!("fentry/fexit on {function}"),
            Backend::Kprobe => format!("kprobe/kretprobe on {function}"),
            Backend::TpBtf | Backend::RawTp | Backend::Tracepoint => format!(
                "{} irq:softirq_entry/exit (vec NET_RX, exactly one {function} call each)",
                self.name()
            ),
        }
    }

    /// The (entry, exit) program names in the eBPF object.
    pub(crate) fn programs(self) -> (&'static str, &'static str) {
        match self {
            Backend::Fentry => (programs::FENTRY, programs::FEXIT),
            Backend::Kprobe => (programs::KPROBE, programs::KRETPROBE),
            Backend::TpBtf => (
                programs::TP_BTF_SOFTIRQ_ENTRY,
                programs::TP_BTF_SOFTIRQ_EXIT,
            ),
            Backend::RawTp => (programs::RAW_SOFTIRQ_ENTRY, programs::RAW_SOFTIRQ_EXIT),
            Backend::Tracepoint => (programs::TP_SOFTIRQ_ENTRY, programs::TP_SOFTIRQ_EXIT),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
