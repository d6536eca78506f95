//! Names by which userspace finds things in the eBPF object, each declared
//! once with the list it belongs to, so a test of the built object can check
//! every one (netlat's `tracing::object_names`).
//!
//! The eBPF side cannot take these constants everywhere: aya-ebpf's
//! `#[map(name = ...)]` wants a literal, and a program's or global's symbol
//! is its Rust item name. That test is what keeps the two sides equal.

/// Declares `pub const NAME: &str = "value";` for each entry and a
/// `pub const LIST: &[&str]` holding them all, in order.
#[macro_export]
macro_rules! names {
    ($(#[$list_doc:meta])* $list:ident { $($(#[$doc:meta])* $name:ident = $value:literal,)* }) => {
        $($(#[$doc])* pub const $name: &str = $value;)*
        $(#[$list_doc])*
        pub const $list: &[&str] = &[$($name),*];
    };
}

/// Program names (the `#[kprobe]`, `#[raw_tracepoint]`... functions of
/// netlat-ebpf), found with `Ebpf::program_mut`.
pub mod programs {
    crate::names! {
        /// Every program userspace attaches.
        ALL {
            /// Timing: fentry/fexit on the traced function.
            FENTRY = "netlat_fentry",
            FEXIT = "netlat_fexit",
            /// Timing: kprobe/kretprobe on the traced function.
            KPROBE = "netlat_kprobe",
            KRETPROBE = "netlat_kretprobe",
            /// Timing of net_rx_action by irq:softirq_entry/exit, three ways.
            TP_BTF_SOFTIRQ_ENTRY = "netlat_tp_btf_softirq_entry",
            TP_BTF_SOFTIRQ_EXIT = "netlat_tp_btf_softirq_exit",
            RAW_SOFTIRQ_ENTRY = "netlat_raw_softirq_entry",
            RAW_SOFTIRQ_EXIT = "netlat_raw_softirq_exit",
            TP_SOFTIRQ_ENTRY = "netlat_tp_softirq_entry",
            TP_SOFTIRQ_EXIT = "netlat_tp_softirq_exit",
            /// Which interrupt context each CPU is in (`netlat slow` on a
            /// function backend).
            CTX_SOFTIRQ_ENTRY = "netlat_ctx_softirq_entry",
            CTX_SOFTIRQ_EXIT = "netlat_ctx_softirq_exit",
            CTX_IRQ_ENTRY = "netlat_ctx_irq_entry",
            CTX_IRQ_EXIT = "netlat_ctx_irq_exit",
            /// NET_RX seen whole (`netlat softirq`).
            NETRX_RAISE = "netlat_netrx_raise",
            NETRX_ENTRY = "netlat_netrx_entry",
            NETRX_POLL = "netlat_netrx_poll",
            NETRX_EXIT = "netlat_netrx_exit",
            /// The flame graph's stack sampler (perf_event).
            SAMPLE = "netlat_sample",
        }
    }
}
