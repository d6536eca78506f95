//! Kernel stacks to collapsed-stack lines ("root;...;leaf count"), the
//! format of FlameGraph's stackcollapse scripts and inferno.

use std::collections::BTreeMap;

use crate::system::{
    kallsyms::Symbols,
    stack_frames::{self, Origin, bpf_program, is_own_probe},
};

/// One sampled stack, leaf first as the kernel records it, and its count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    pub frames: Vec<u64>,
    pub count: u64,
}

/// Frame under which `--during` puts stacks the kernel could not unwind
/// down to the traced function.
pub const INCOMPLETE: &str = "[incomplete stack]";
/// Frame under which `--during` puts samples taken in netlat's own eBPF
/// programs (or their trampolines) while the function was being timed.
pub const OWN_PROBES: &str = "[netlat's own probes]";
/// Frame under which the softirq tracepoint backends put samples taken in
/// the NET_RX softirq but outside net_rx_action (the softirq loop between
/// the tracepoint and the handler call).
pub const SOFTIRQ_OUTSIDE: &str = "[NET_RX softirq, outside net_rx_action]";

/// The `--during` function the stacks were taken in.
#[derive(Clone, Copy, Debug)]
pub struct Anchor<'a> {
    pub function: &'a str,
    /// Timed by the NET_RX softirq tracepoints, which also bracket the
    /// softirq's own code around the handler.
    pub softirq: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Folded {
    /// "root;...;leaf" -> samples, sorted so output is stable.
    pub stacks: BTreeMap<String, u64>,
    /// Samples re-rooted under `anchor;[incomplete stack]`.
    pub incomplete: u64,
    /// Samples re-rooted under `anchor;[netlat's own probes]`.
    pub own_probes: u64,
    /// Samples re-rooted under `anchor;[NET_RX softirq, outside ...]`.
    pub softirq_outside: u64,
}

/// A frame's name. The leaf is the sampled instruction; every other frame
/// is a return address ([`Symbols::symbolize_return`]).
fn frame_name(symbols: &Symbols, ip: u64, leaf: bool) -> String {
    match symbols.symbolize_frame(ip, leaf) {
        Some(name) => match bpf_program(name) {
            Some(program) => format!("{program} [bpf]"),
            None => name.to_owned(),
        },
        None => format!("{ip:#x}"),
    }
}

/// Symbolizes and merges stacks; identical symbol paths from different
/// addresses (two offsets inside one function) add up.
///
/// With `anchor` (the `--during` function) every sample was taken inside
/// that function, but not every stack shows it: the sample may have
/// landed in netlat's own timing program (its stack ends in the probe),
/// or, with the softirq tracepoints, in the softirq loop around the
/// handler; and the unwinder sometimes stops early (e.g. in a retpoline
/// thunk or at an interrupt boundary). Those go under `anchor;[label]` so
/// the graph stays rooted at the function and each gap says what it is.
pub fn fold(stacks: &[Stack], symbols: &Symbols, anchor: Option<Anchor>) -> Folded {
    let mut folded = Folded::default();
    for stack in stacks {
        // Leaf first as taken; the machinery between kernel frames out
        // (stack_frames, the same rule as `slow --stack`), then root first.
        let names = stack
            .frames
            .iter()
            .enumerate()
            .map(|(i, &ip)| frame_name(symbols, ip, i == 0))
            .collect();
        let mut path = stack_frames::kernel_frames(names, Origin::Sample);
        path.reverse();
        if path.is_empty() {
            continue;
        }
        let mut line = path.join(";");
        if let Some(anchor) = anchor
            && !path.iter().any(|f| f == anchor.function)
        {
            let raw: Vec<&str> = stack
                .frames
                .iter()
                .filter_map(|&ip| symbols.symbolize(ip))
                .collect();
            let label = if raw.iter().any(|f| is_own_probe(f)) {
                folded.own_probes += stack.count;
                OWN_PROBES
            } else if anchor.softirq
                && raw
                    .iter()
                    .any(|f| matches!(*f, "__do_softirq" | "handle_softirqs"))
            {
                folded.softirq_outside += stack.count;
                SOFTIRQ_OUTSIDE
            } else {
                folded.incomplete += stack.count;
                INCOMPLETE
            };
            line = format!("{};{label};{line}", anchor.function);
        }
        *folded.stacks.entry(line).or_insert(0) += stack.count;
    }
    folded
}

/// The text of a `--folded` file.
pub fn to_text(folded: &BTreeMap<String, u64>) -> String {
    folded
        .iter()
        .map(|(path, n)| format!("{path} {n}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "\
ffffffff81000100 T __do_softirq
ffffffff81000200 T net_rx_action
ffffffff81000300 t tcp_collapse
ffffffff81000400 T tcp_v4_rcv
";

    const ANCHOR: Anchor = Anchor {
        function: "net_rx_action",
        softirq: false,
    };

    #[test]
    fn padding_symbols_are_left_out() {
        let symbols = Symbols::parse(
            "ffffffff810001f0 T __pfx_net_rx_action\nffffffff81000200 T net_rx_action\nffffffff810002f0 t __pfx_tcp_collapse\nffffffff81000300 t tcp_collapse\n",
        );
        let stacks = [
            // A sample in tcp_collapse's padding, under net_rx_action.
            Stack {
                frames: vec![0xffffffff810002f4, 0xffffffff81000211],
                count: 2,
            },
            Stack {
                frames: vec![0xffffffff81000310, 0xffffffff81000211],
                count: 1,
            },
        ];
        let folded = fold(&stacks, &symbols, None);
        assert_eq!(
            to_text(&folded.stacks),
            "net_rx_action 2\nnet_rx_action;tcp_collapse 1\n"
        );
    }

    #[test]
    fn folds_root_first_and_merges_offsets_of_one_function() {
        let symbols = Symbols::parse(KALLSYMS);
        let stacks = [
            Stack {
                frames: vec![0xffffffff81000310, 0xffffffff81000211, 0xffffffff81000110],
                count: 3,
            },
            Stack {
                frames: vec![0xffffffff81000399, 0xffffffff81000280, 0xffffffff81000120],
                count: 2,
            },
            Stack {
                frames: vec![0xffffffff81000410, 0x10],
                count: 1,
            },
        ];
        let folded = fold(&stacks, &symbols, None);
        assert_eq!(
            to_text(&folded.stacks),
            "0x10;tcp_v4_rcv 1\n__do_softirq;net_rx_action;tcp_collapse 5\n"
        );
        assert_eq!(folded.incomplete, 0);

        let during = fold(&stacks, &symbols, Some(ANCHOR));
        assert_eq!(
            to_text(&during.stacks),
            "__do_softirq;net_rx_action;tcp_collapse 5\nnet_rx_action;[incomplete stack];0x10;tcp_v4_rcv 1\n"
        );
        assert_eq!(during.incomplete, 1);
    }

    #[test]
    fn return_addresses_are_looked_up_one_byte_back_the_leaf_is_not() {
        let symbols = Symbols::parse(KALLSYMS);
        // net_rx_action's last instruction calls a noreturn function: the
        // return address is the first byte of tcp_collapse.
        let stacks = [Stack {
            frames: vec![0xffffffff81000300, 0xffffffff81000300, 0xffffffff81000110],
            count: 1,
        }];
        assert_eq!(
            to_text(&fold(&stacks, &symbols, None).stacks),
            "__do_softirq;net_rx_action;tcp_collapse 1\n"
        );
    }

    #[test]
    fn trampolines_between_caller_and_traced_function_are_left_out() {
        let kallsyms = format!(
            "{KALLSYMS}ffffffff81000500 T kretprobe_trampoline\nffffffffc0004000 t bpf_trampoline_6442549471\t[bpf]\n"
        );
        let symbols = Symbols::parse(&kallsyms);
        let stacks = [
            // tcp_collapse called through another tool's fexit trampoline.
            Stack {
                frames: vec![0xffffffff81000310, 0xffffffffc0004010, 0xffffffff81000220],
                count: 4,
            },
            // A sample in the trampoline itself.
            Stack {
                frames: vec![0xffffffffc0004020, 0xffffffff81000220],
                count: 1,
            },
            // tcp_collapse under a kretprobe: its return address is the
            // trampoline's first byte (not tcp_v4_rcv's last, at -1).
            Stack {
                frames: vec![0xffffffff81000310, 0xffffffff81000500, 0xffffffff81000220],
                count: 2,
            },
        ];
        assert_eq!(
            to_text(&fold(&stacks, &symbols, None).stacks),
            "net_rx_action;bpf_trampoline_6442549471 1\nnet_rx_action;tcp_collapse 6\n"
        );
    }

    #[test]
    fn names_jit_frames_and_labels_samples_outside_the_function() {
        let kallsyms = format!(
            "{KALLSYMS}ffffffffc0001000 t bpf_prog_6deef7357e7b4530_netlat_sample\t[bpf]\n\
             ffffffffc0002000 t bpf_prog_0123456789abcdef_netlat_softirq_\t[bpf]\n\
             ffffffffc0003000 t bpf_prog_0123456789abcdef_other\t[bpf]\n"
        );
        let symbols = Symbols::parse(&kallsyms);
        let stacks = [
            // In netlat's softirq_exit program, called from __do_softirq.
            Stack {
                frames: vec![0xffffffffc0002010, 0xffffffff81000120],
                count: 2,
            },
            // In __do_softirq itself, before it called net_rx_action.
            Stack {
                frames: vec![0xffffffff81000130],
                count: 3,
            },
            // Someone else's program inside net_rx_action.
            Stack {
                frames: vec![0xffffffffc0003010, 0xffffffff81000220],
                count: 1,
            },
        ];
        let softirq = Anchor {
            function: "net_rx_action",
            softirq: true,
        };
        let folded = fold(&stacks, &symbols, Some(softirq));
        assert_eq!(
            to_text(&folded.stacks),
            "net_rx_action;[NET_RX softirq, outside net_rx_action];__do_softirq 3\n\
             net_rx_action;[netlat's own probes];__do_softirq;netlat_softirq_ [bpf] 2\n\
             net_rx_action;other [bpf] 1\n"
        );
        assert_eq!(
            (folded.own_probes, folded.softirq_outside, folded.incomplete),
            (2, 3, 0)
        );
        // With a function backend, the softirq loop is an incomplete stack.
        let folded = fold(&stacks, &symbols, Some(ANCHOR));
        assert_eq!((folded.own_probes, folded.incomplete), (2, 3));
        assert_eq!(
            bpf_program("bpf_prog_6deef7357e7b4530_netlat_sample"),
            Some("netlat_sample")
        );
        assert_eq!(bpf_program("bpf_prog_short"), None);
        assert_eq!(bpf_program("bpf_prog_zzzzzzzzzzzzzzzz_x"), None);
    }

    /// `slow --stack` (a stack netlat's program took at the call's entry)
    /// and the flame graph (a sample) leave out the same machinery frames:
    /// another tracer's fentry trampoline, a kretprobe trampoline in place
    /// of a return address, padding symbols.
    #[test]
    fn slow_stacks_and_flame_graphs_drop_the_same_frames() {
        let symbols = Symbols::parse(
            "ffffffff81000100 T bpf_trace_run1\n\
             ffffffff81000200 T net_rx_action\n\
             ffffffff810002f0 t __pfx_tcp_collapse\n\
             ffffffff81000300 t tcp_collapse\n\
             ffffffff81000400 t tcp_prune_queue\n\
             ffffffff81000500 T kretprobe_trampoline\n\
             ffffffff81000600 T tcp_data_queue\n\
             ffffffffc0001000 t bpf_prog_0123456789abcdef_netlat_kprobe\t[bpf]\n\
             ffffffffc0004000 t bpf_trampoline_6442549471\t[bpf]\n",
        );
        // Outward from tcp_collapse: another tool's fexit trampoline, the
        // caller, a padding symbol, a kretprobe trampoline standing in for
        // a return address, then the callers the kernel really ran.
        let outer = [
            0xffffffffc0004010,
            0xffffffff81000410,
            0xffffffff810002f8,
            0xffffffff81000500,
            0xffffffff81000610,
            0xffffffff81000210,
        ];
        let own_program: Vec<u64> = [0xffffffffc0001010, 0xffffffff81000110, 0xffffffff81000310]
            .into_iter()
            .chain(outer)
            .collect();
        let sampled: Vec<u64> = [0xffffffff81000310].into_iter().chain(outer).collect();
        let kernel = [
            "tcp_collapse",
            "tcp_prune_queue",
            "tcp_data_queue",
            "net_rx_action",
        ];
        assert_eq!(
            crate::system::kallsyms::name_stack(&own_program, &symbols),
            kernel
        );
        let folded = fold(
            &[Stack {
                frames: sampled,
                count: 1,
            }],
            &symbols,
            None,
        );
        let mut root_first = kernel;
        root_first.reverse();
        assert_eq!(
            to_text(&folded.stacks),
            format!("{} 1\n", root_first.join(";"))
        );
    }
}
