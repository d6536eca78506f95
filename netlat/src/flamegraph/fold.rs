//! Kernel stacks to collapsed-stack lines ("root;...;leaf count"), the
//! format of FlameGraph's stackcollapse scripts and inferno.

use std::collections::BTreeMap;

use crate::system::kallsyms::Symbols;

/// One sampled stack, leaf first as the kernel records it, and its count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    pub frames: Vec<u64>,
    pub count: u64,
}

/// Frame under which `--during` puts stacks the kernel could not unwind
/// down to the traced function.
pub const INCOMPLETE: &str = "[incomplete stack]";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Folded {
    /// "root;...;leaf" -> samples, sorted so output is stable.
    pub stacks: BTreeMap<String, u64>,
    /// Samples re-rooted under `anchor;[incomplete stack]`.
    pub incomplete: u64,
}

/// Symbolizes and merges stacks; identical symbol paths from different
/// addresses (two offsets inside one function) add up.
///
/// With `anchor` (the `--during` function) every sample was taken inside
/// that function, but the unwinder sometimes stops early (e.g. in a
/// retpoline thunk or at an interrupt boundary). Those stacks are placed
/// under `anchor;[incomplete stack]` so the graph stays rooted at the
/// function and the gap is visible instead of silently dropped.
pub fn fold(stacks: &[Stack], symbols: &Symbols, anchor: Option<&str>) -> Folded {
    let mut folded = Folded::default();
    for stack in stacks {
        let path: Vec<String> = stack
            .frames
            .iter()
            .rev()
            .map(|&ip| match symbols.symbolize(ip) {
                Some(name) => name.to_owned(),
                None => format!("{ip:#x}"),
            })
            .collect();
        if path.is_empty() {
            continue;
        }
        let mut line = path.join(";");
        if let Some(anchor) = anchor
            && !path.iter().any(|f| f == anchor)
        {
            line = format!("{anchor};{INCOMPLETE};{line}");
            folded.incomplete += stack.count;
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

    #[test]
    fn folds_root_first_and_merges_offsets_of_one_function() {
        let symbols = Symbols::parse(KALLSYMS);
        let stacks = [
            Stack {
                frames: vec![0xffffffff81000310, 0xffffffff81000210, 0xffffffff81000110],
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

        let during = fold(&stacks, &symbols, Some("net_rx_action"));
        assert_eq!(
            to_text(&during.stacks),
            "__do_softirq;net_rx_action;tcp_collapse 5\nnet_rx_action;[incomplete stack];0x10;tcp_v4_rcv 1\n"
        );
        assert_eq!(during.incomplete, 1);
    }
}
