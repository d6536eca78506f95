//! The one table that decides which backends may time a function, best
//! first. Capability checks that need no loading live here too, so every
//! fallback has a reason the user can read.

use super::Backend;
use crate::tracing::kernel_btf::kernel_btf_file;

/// The perf PMU through which kprobes attach; the kernel creates it only
/// with CONFIG_KPROBES (and netlat never falls back to tracefs).
pub const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";

/// Why kprobes cannot attach here, from the PMU's absence.
pub fn kprobe_pmu() -> Result<(), String> {
    if std::path::Path::new(KPROBE_PMU).exists() {
        Ok(())
    } else {
        Err("kprobes are not available in this kernel (CONFIG_KPROBES)".to_owned())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The best backend that works on this kernel.
    Auto,
    /// kprobe/kretprobe: any traceable kernel function.
    Kprobe,
    /// fentry/fexit: lower overhead, needs BTF and trampoline support.
    Fentry,
    /// An exact tracepoint equivalent (net_rx_action: the NET_RX softirq tracepoints).
    Tracepoint,
}

/// Functions that a pair of tracepoints brackets exactly.
fn has_tracepoint_equivalent(function: &str) -> bool {
    function == "net_rx_action"
}

/// raw_tp before tp_btf: per run they cost the same within a few ns (empty
/// programs measured here: raw_tp 50+55 ns, tp_btf 48+40 ns), but tp_btf
/// makes netlat parse the kernel's whole BTF at start: ~100 ms and ~25 MB
/// more for a typical vmlinux.
const TRACEPOINT_FLAVOURS: [Backend; 3] = [Backend::RawTp, Backend::TpBtf, Backend::Tracepoint];

/// Backends to try, in order. Tracepoints come first where they exist: they
/// time the function exactly, are a stable ABI and cost least; then fentry,
/// cheaper than kprobes where the kernel allows it.
pub fn candidates(choice: BackendChoice, function: &str) -> Result<Vec<Backend>, String> {
    let tracepoints = has_tracepoint_equivalent(function);
    Ok(match choice {
        BackendChoice::Auto if tracepoints => {
            let mut all = TRACEPOINT_FLAVOURS.to_vec();
            all.extend([Backend::Fentry, Backend::Kprobe]);
            all
        }
        BackendChoice::Auto => vec![Backend::Fentry, Backend::Kprobe],
        BackendChoice::Kprobe => vec![Backend::Kprobe],
        BackendChoice::Fentry => vec![Backend::Fentry],
        BackendChoice::Tracepoint if tracepoints => TRACEPOINT_FLAVOURS.to_vec(),
        BackendChoice::Tracepoint => {
            return Err(format!(
                "{function} has no exact tracepoint equivalent (only net_rx_action has one): use --backend kprobe or fentry"
            ));
        }
    })
}

/// Why a backend cannot work here without trying to load it, if known
/// (file checks only).
pub fn unavailable_reason(backend: Backend, function: &str) -> Option<String> {
    match backend {
        Backend::Kprobe => kprobe_pmu().err().map(|why| {
            if has_tracepoint_equivalent(function) {
                format!("{why}; {function} can use --backend tracepoint")
            } else {
                why
            }
        }),
        Backend::Fentry | Backend::TpBtf if kernel_btf_file().is_err() => Some(format!(
            "{backend} needs kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_rx_action_prefers_tracepoints_then_fentry_then_kprobe() {
        let all = candidates(BackendChoice::Auto, "net_rx_action").unwrap();
        assert_eq!(
            all,
            [
                Backend::RawTp,
                Backend::TpBtf,
                Backend::Tracepoint,
                Backend::Fentry,
                Backend::Kprobe
            ]
        );
    }

    #[test]
    fn other_functions_use_function_probes() {
        assert_eq!(
            candidates(BackendChoice::Auto, "tcp_collapse").unwrap(),
            [Backend::Fentry, Backend::Kprobe]
        );
        assert_eq!(
            candidates(BackendChoice::Kprobe, "net_rx_action").unwrap(),
            [Backend::Kprobe]
        );
        let err = candidates(BackendChoice::Tracepoint, "tcp_collapse").unwrap_err();
        assert!(err.contains("no exact tracepoint equivalent"), "{err}");
    }
}
