//! Kernel stacks to collapsed-stack lines ("root;...;leaf count"), the
//! format of FlameGraph's stackcollapse scripts and inferno.

use std::collections::BTreeMap;

use crate::kallsyms::Symbols;

/// One sampled stack, leaf first as the kernel records it, and its count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    pub frames: Vec<u64>,
    pub count: u64,
}

/// Symbolizes and merges stacks; identical symbol paths from different
/// addresses (two offsets inside one function) add up. Sorted, so output is
/// stable.
pub fn fold(stacks: &[Stack], symbols: &Symbols) -> BTreeMap<String, u64> {
    let mut folded = BTreeMap::new();
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
        *folded.entry(path.join(";")).or_insert(0) += stack.count;
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
        let folded = fold(&stacks, &symbols);
        assert_eq!(
            to_text(&folded),
            "0x10;tcp_v4_rcv 1\n__do_softirq;net_rx_action;tcp_collapse 5\n"
        );
    }
}
