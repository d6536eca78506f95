//! Which frames of a kernel stack are tracing machinery rather than code
//! the kernel chose to run. `slow --stack` and the flame graph both ask
//! here, so the two show the same kernel frames for the same stack.

/// How a stack was taken, which decides what its innermost frames are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// By netlat's own program at a call's entry (`netlat slow --stack`):
    /// the innermost frames are that program and the tracepoint or
    /// trampoline that ran it, and are left out.
    OwnProgram,
    /// By the sampler (flame graphs): the leaf is where the CPU was, kept
    /// even inside a trampoline or a BPF program, so the sample is not lost.
    Sample,
}

/// Code the kernel returns through instead of the caller, when a return
/// is being traced: kretprobe's (before and since Linux 5.14), rethook's
/// (x86 since 5.19), and the function-graph tracer's.
pub fn is_return_trampoline(name: &str) -> bool {
    matches!(
        name,
        "kretprobe_trampoline"
            | "__kretprobe_trampoline"
            | "arch_rethook_trampoline"
            | "return_to_handler"
    )
}

/// A function's padding symbol (`__pfx_` + its name): the padding in front
/// of it (CONFIG_CALL_PADDING, for call-depth tracking and FineIBT), not a
/// function anyone reads a stack for.
pub fn is_padding(name: &str) -> bool {
    name.starts_with("__pfx_")
}

/// The program name of a JIT-ed eBPF program's kallsyms symbol
/// (`bpf_prog_<16 hex digits of tag>_<name>`, kernel/bpf/core.c,
/// bpf_get_prog_name).
pub fn bpf_program(symbol: &str) -> Option<&str> {
    let rest = symbol.strip_prefix("bpf_prog_")?;
    let (tag, name) = rest.split_at_checked(16)?;
    if !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(name.strip_prefix('_').unwrap_or(name))
}

/// netlat's programs, and the trampolines that only fentry (netlat's)
/// attached here.
pub fn is_own_probe(frame: &str) -> bool {
    frame.starts_with("bpf_trampoline_")
        || bpf_program(frame).is_some_and(|p| p.starts_with("netlat"))
}

/// A frame some tracer put between two kernel functions: an fentry/fexit
/// trampoline between a caller and the traced function, or a kretprobe's
/// in place of a return address. Kept, it splits a flame graph per tracer
/// and ties with the function it wraps at the top of the culprit ranking.
fn is_interposed(name: &str) -> bool {
    name.starts_with("bpf_trampoline_") || is_return_trampoline(name)
}

/// Frames that belong to the BPF and tracing code running netlat's program.
fn is_tracing_frame(name: &str) -> bool {
    const PREFIXES: [&str; 7] = [
        "bpf_trace_run",
        "__bpf_trace_",
        "bpf_prog_",
        "__bpf_prog_enter",
        "bpf_trampoline_",
        "perf_trace_",
        "trace_call_bpf",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The frames a reader sees, innermost first, from every frame's name
/// (innermost first): padding symbols and interposed trampolines out (a
/// sample's leaf inside a trampoline stays), and for a stack netlat's own
/// program took, the machinery it starts with. That machinery sits within
/// the first few frames; further out a `bpf_prog_` frame is another
/// tool's program the kernel really ran.
pub fn kernel_frames(names: Vec<String>, origin: Origin) -> Vec<String> {
    let names: Vec<String> = names
        .into_iter()
        .enumerate()
        .filter(|(i, name)| !is_padding(name) && (*i == 0 || !is_interposed(name)))
        .map(|(_, name)| name)
        .collect();
    match origin {
        Origin::Sample => names,
        Origin::OwnProgram => {
            let machinery = names
                .iter()
                .take(8)
                .rposition(|n| is_tracing_frame(n) || is_return_trampoline(n))
                .map_or(0, |i| i + 1);
            names[machinery..].to_vec()
        }
    }
}
