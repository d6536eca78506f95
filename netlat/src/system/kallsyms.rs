//! Kernel symbol lookup in /proc/kallsyms: does a function exist, and if
//! not, which names did the user probably mean.

use std::{collections::HashMap, io::BufRead};

use super::stack_frames::{self, is_return_trampoline};

/// KSYM_NAME_LEN: the kernel keeps no symbol name longer than this,
/// terminating NUL included.
pub const KSYM_NAME_LEN: usize = 512;

/// A name the kernel could have as a function, checked before anything is
/// looked up (a 20,000-character name would take a minute to compare with
/// every symbol for suggestions).
pub fn function_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err(
            "the function name is empty: name a kernel function, e.g. net_rx_action".into(),
        );
    }
    if s.len() >= KSYM_NAME_LEN {
        return Err(format!(
            "a {}-byte function name cannot be a kernel symbol: the kernel's limit is {} bytes (KSYM_NAME_LEN)",
            s.len(),
            KSYM_NAME_LEN - 1
        ));
    }
    Ok(s.to_owned())
}

/// What /proc/kallsyms says about a name.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A text (code) symbol.
    Function,
    /// A symbol that is not code (kallsyms type letter, e.g. 'D' for data).
    NotAFunction(char),
    /// No such symbol; the closest function names, best first.
    Unknown { suggestions: Vec<String> },
}

/// Looks `name` up in /proc/kallsyms, streaming: one pass, one line in
/// memory at a time; the full table (for suggestions) is built only on a miss.
pub fn lookup(mut reader: impl BufRead, name: &str) -> Lookup {
    let mut found = None;
    let mut text = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        let mut fields = line.split_ascii_whitespace();
        if let (Some(_), Some(ty), Some(sym)) = (fields.next(), fields.next(), fields.next())
            && sym == name
        {
            let ty = ty.chars().next().unwrap_or('?');
            if is_text(ty) {
                return Lookup::Function;
            }
            found.get_or_insert(ty);
        }
        if found.is_none() {
            // Kept only while the name is still missing: the miss needs it all.
            text.push_str(&line);
        }
        line.clear();
    }
    match found {
        Some(ty) => Lookup::NotAFunction(ty),
        None => Symbols::parse(&text).lookup(name),
    }
}

/// Whether kallsyms shows every address as 0 (kernel.kptr_restrict hides
/// them from this reader). Stops at the first nonzero address: on SMP
/// x86_64 the table opens with per-CPU symbols that really are at 0
/// (`0000000000000000 A fixed_percpu_data`), so one line cannot tell.
pub fn hides_addresses(mut reader: impl BufRead) -> bool {
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if let Some(address) = line.split_ascii_whitespace().next()
            && address.bytes().any(|b| b != b'0')
        {
            return false;
        }
        line.clear();
    }
    true
}

pub struct Symbols {
    /// name -> kallsyms type letter of the first occurrence.
    types: HashMap<String, char>,
    /// Code symbols by start address, sorted, for symbolizing stacks.
    addresses: Vec<(u64, String)>,
}

impl Symbols {
    /// Parses `/proc/kallsyms` text: `ADDRESS TYPE NAME [\[MODULE\]]`.
    pub fn parse(text: &str) -> Symbols {
        let mut types = HashMap::new();
        let mut addresses = Vec::new();
        for line in text.lines() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(addr), Some(ty), Some(name)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Some(ty) = ty.chars().next() else {
                continue;
            };
            // Unprivileged readers see every address as 0: useless for stacks.
            match u64::from_str_radix(addr, 16) {
                Ok(a) if a != 0 && is_text(ty) => addresses.push((a, name.to_owned())),
                _ => {}
            }
            // A name can appear as both a local and a global; code wins.
            let entry = types.entry(name.to_owned()).or_insert(ty);
            if is_text(ty) {
                *entry = ty;
            }
        }
        addresses.sort_unstable();
        Symbols { types, addresses }
    }

    /// The function containing `address`, or None if it is outside every
    /// known symbol (then callers print the address in hex). kallsyms has
    /// no sizes: an address past the end of a section would be named
    /// after its end marker (e.g. an eBPF program unloaded before the table
    /// was read shows as `_einittext`), so markers name nothing.
    pub fn symbolize(&self, address: u64) -> Option<&str> {
        let i = self.addresses.partition_point(|(a, _)| *a <= address);
        let (_, name) = self.addresses.get(i.checked_sub(1)?)?;
        if END_MARKERS.contains(&name.as_str()) {
            return None;
        }
        Some(name)
    }

    /// The function a return address returns into. A return address
    /// points after its call, so it is looked up at address-1: a call as
    /// one function's last instruction (to a noreturn function) is not
    /// named after the next. Except where the kernel wrote a trampoline's
    /// address over the real return address (kretprobes, rethook, the
    /// function-graph tracer): that points at the trampoline's first byte,
    /// and address-1 would name whatever precedes it (seen on 5.10:
    /// `elfcorehdr_read` for `kretprobe_trampoline`).
    pub fn symbolize_return(&self, address: u64) -> Option<&str> {
        match self.symbolize(address) {
            Some(name) if is_return_trampoline(name) => Some(name),
            _ => self.symbolize(address.saturating_sub(1)),
        }
    }

    /// A stack frame's function: the innermost frame (`leaf`) is the
    /// instruction itself, every other one a return address.
    pub fn symbolize_frame(&self, address: u64, leaf: bool) -> Option<&str> {
        if leaf {
            self.symbolize(address)
        } else {
            self.symbolize_return(address)
        }
    }

    /// No code addresses: kallsyms hid them (kernel.kptr_restrict).
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    pub fn read() -> std::io::Result<Symbols> {
        std::fs::read_to_string("/proc/kallsyms").map(|t| Symbols::parse(&t))
    }

    pub fn lookup(&self, name: &str) -> Lookup {
        match self.types.get(name) {
            Some(&ty) if is_text(ty) => Lookup::Function,
            Some(&ty) => Lookup::NotAFunction(ty),
            None => Lookup::Unknown {
                suggestions: self.closest_functions(name, 3),
            },
        }
    }

    fn closest_functions(&self, name: &str, n: usize) -> Vec<String> {
        let mut scored: Vec<(f64, &str)> = self
            .types
            .iter()
            .filter(|(_, ty)| is_text(**ty))
            .map(|(candidate, _)| {
                // The compiler's clones (foo.isra.0, foo.constprop.0) are
                // what to suggest when the plain name was inlined away.
                let base = candidate.split('.').next().unwrap_or(candidate);
                let score = if base == name {
                    2.0
                } else {
                    strsim::jaro_winkler(name, candidate)
                };
                (score, candidate.as_str())
            })
            .filter(|(score, _)| *score >= 0.85)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        scored
            .into_iter()
            .take(n)
            .map(|(_, s)| s.to_owned())
            .collect()
    }
}

/// Linker symbols that end a text section (vmlinux.lds.S): no code follows.
const END_MARKERS: &[&str] = &["_etext", "_einittext", "__irqentry_text_end", "_end"];

fn is_text(ty: char) -> bool {
    matches!(ty, 't' | 'T' | 'w' | 'W')
}

/// Frame names of a stack netlat's own program took, innermost first;
/// return addresses are named as [`Symbols::symbolize_return`] says, and
/// only the kernel's own frames are kept ([`stack_frames::kernel_frames`]).
pub fn name_stack(ips: &[u64], symbols: &Symbols) -> Vec<String> {
    let names = ips
        .iter()
        .enumerate()
        .map(|(i, &ip)| {
            symbols
                .symbolize_frame(ip, i == 0)
                .map_or_else(|| format!("{ip:#x}"), str::to_owned)
        })
        .collect();
    stack_frames::kernel_frames(names, stack_frames::Origin::OwnProgram)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_within_the_kernel_limit() {
        assert_eq!(function_name("tcp_collapse").as_deref(), Ok("tcp_collapse"));
        assert!(function_name(&"a".repeat(511)).is_ok());
        let err = function_name(&"a".repeat(512)).unwrap_err();
        assert!(
            err.contains("the kernel's limit is 511 bytes (KSYM_NAME_LEN)"),
            "{err}"
        );
        assert!(
            function_name("")
                .unwrap_err()
                .starts_with("the function name is empty")
        );
    }

    const FIXTURE: &str = "\
ffffffff81a00000 T net_rx_action
ffffffff81a00100 t tcp_collapse
ffffffff81a00200 t tcp_prune_queue.isra.0
ffffffff81a00300 T net_tx_action
ffffffff82000000 D netdev_budget
ffffffffc0000000 t nf_hook_slow\t[nf_tables]
ffffffff81a00400 t tcp_collapse
";

    #[test]
    fn finds_functions_and_rejects_data() {
        let s = Symbols::parse(FIXTURE);
        assert_eq!(s.lookup("net_rx_action"), Lookup::Function);
        assert_eq!(s.lookup("tcp_collapse"), Lookup::Function);
        assert_eq!(s.lookup("nf_hook_slow"), Lookup::Function);
        assert_eq!(s.lookup("netdev_budget"), Lookup::NotAFunction('D'));
    }

    #[test]
    fn streaming_lookup_agrees_with_the_table() {
        let table = Symbols::parse(FIXTURE);
        for name in [
            "net_rx_action",
            "tcp_collapse",
            "netdev_budget",
            "net_rx_actoin",
            "nf_hook_slow",
        ] {
            assert_eq!(
                lookup(FIXTURE.as_bytes(), name),
                table.lookup(name),
                "{name}"
            );
        }
    }

    #[test]
    fn hidden_addresses_are_told_from_per_cpu_symbols_at_zero() {
        // Debian's x86_64 kernels open the table with per-CPU symbols at 0.
        let shown = "0000000000000000 A fixed_percpu_data\n0000000000000000 A __per_cpu_start\nffffffff81000000 T _stext\n";
        assert!(!hides_addresses(shown.as_bytes()));
        let hidden = "0000000000000000 A fixed_percpu_data\n0000000000000000 T _stext\n0000000000000000 t tcp_collapse\n";
        assert!(hides_addresses(hidden.as_bytes()));
    }

    #[test]
    fn a_return_address_at_a_return_trampoline_names_the_trampoline() {
        // 5.10's layout: kretprobe_trampoline right after elfcorehdr_read.
        let symbols = Symbols::parse(
            "ffffffff8145d2b0 T elfcorehdr_read\nffffffff8145d2f0 T kretprobe_trampoline\nffffffff8145d340 T synthesize_reljump\n",
        );
        assert_eq!(
            symbols.symbolize_return(0xffffffff8145d2f0),
            Some("kretprobe_trampoline")
        );
        // Any other function's first byte as a return address is a call at
        // the very end of the function before it.
        assert_eq!(
            symbols.symbolize_return(0xffffffff8145d340),
            Some("kretprobe_trampoline")
        );
        assert_eq!(
            symbols.symbolize_return(0xffffffff8145d2c0),
            Some("elfcorehdr_read")
        );
    }

    #[test]
    fn symbolizes_addresses_to_the_enclosing_function() {
        let s = Symbols::parse(FIXTURE);
        assert_eq!(s.symbolize(0xffffffff81a00000), Some("net_rx_action"));
        assert_eq!(s.symbolize(0xffffffff81a000ff), Some("net_rx_action"));
        assert_eq!(s.symbolize(0xffffffff81a00150), Some("tcp_collapse"));
        assert_eq!(s.symbolize(0xffffffffc0000010), Some("nf_hook_slow"));
        assert_eq!(s.symbolize(0x1000), None);
    }

    #[test]
    fn names_jit_frames_from_their_bpf_entries_and_nothing_after_a_section_end() {
        // As /proc/kallsyms lists them: after the modules, type 't', module
        // column `[bpf]`, addresses in the module area.
        let text = format!(
            "ffffffff81000000 T _stext\nffffffff82276988 T _etext\nffffffff837f5870 T _einittext\n{FIXTURE}\
             ffffffffc0400000 t bpf_prog_6deef7357e7b4530_netlat_sample\t[bpf]\n\
             ffffffffc0402000 t bpf_trampoline_6442484394\t[bpf]\n"
        );
        let s = Symbols::parse(&text);
        assert_eq!(
            s.symbolize(0xffffffffc0400123),
            Some("bpf_prog_6deef7357e7b4530_netlat_sample")
        );
        assert_eq!(
            s.symbolize(0xffffffffc0402010),
            Some("bpf_trampoline_6442484394")
        );
        // Past the kernel's text and init text, before any module: nothing.
        assert_eq!(s.symbolize(0xffffffff82300000), None);
        assert_eq!(s.symbolize(0xffffffff83800000), None);
        assert_eq!(
            s.lookup("bpf_prog_6deef7357e7b4530_netlat_sample"),
            Lookup::Function
        );
    }

    #[test]
    fn suggests_close_names_and_compiler_clones() {
        let s = Symbols::parse(FIXTURE);
        let Lookup::Unknown { suggestions } = s.lookup("net_rx_actoin") else {
            panic!("typo must be unknown");
        };
        assert_eq!(
            suggestions.first().map(String::as_str),
            Some("net_rx_action")
        );
        let Lookup::Unknown { suggestions } = s.lookup("tcp_prune_queue") else {
            panic!("only the clone exists");
        };
        assert_eq!(suggestions, ["tcp_prune_queue.isra.0"]);
        let Lookup::Unknown { suggestions } = s.lookup("zzzzzz") else {
            panic!("unknown");
        };
        assert!(suggestions.is_empty());
    }

    #[test]
    fn entry_stacks_start_below_the_tracing_machinery() {
        let symbols = Symbols::parse(
            "ffffffff81000100 T bpf_trace_run1\nffffffff81000200 T handle_softirqs\nffffffff81000300 T do_softirq\nffffffff81000400 T tcp_collapse\nffffffff81000500 T tcp_prune_queue\n",
        );
        // A raw tracepoint's stack: the program (unnamed JIT), the runner,
        // then the kernel. Return addresses at a function's very end name
        // that function, not the next one (address-1).
        let raw_tp = [
            0xffffffffa0001234,
            0xffffffff81000110,
            0xffffffff81000210,
            0xffffffff81000300,
        ];
        assert_eq!(
            name_stack(&raw_tp, &symbols),
            ["handle_softirqs", "handle_softirqs"]
        );
        // A kprobe's stack starts at the probed function itself.
        let kprobe = [0xffffffff81000400, 0xffffffff81000510];
        assert_eq!(
            name_stack(&kprobe, &symbols),
            ["tcp_collapse", "tcp_prune_queue"]
        );
    }
}
