//! netlat's kernel side: entry and exit programs that time calls of one kernel
//! function into per-CPU log2 histograms. One pair per backend; userspace
//! loads and attaches exactly one pair.
#![no_std]
#![no_main]

mod group;
mod net_rx;
mod sampling;
mod slow;
mod starts;
mod stats;
mod timing;

use aya_ebpf::{
    EbpfContext,
    macros::{btf_tracepoint, fentry, fexit, kprobe, kretprobe, raw_tracepoint, tracepoint},
    programs::{
        BtfTracePointContext, FEntryContext, FExitContext, ProbeContext, RawTracePointContext,
        RetProbeContext, TracePointContext,
    },
};
use netlat_common::NET_RX_SOFTIRQ;

// kprobe/kretprobe: any traceable function. Process-context functions may
// sleep and migrate, so start times are kept per thread (see timing.rs).

#[kprobe]
pub fn netlat_kprobe(ctx: ProbeContext) -> u32 {
    let first_arg = || ctx.arg::<*const u8>(0).unwrap_or(core::ptr::null());
    if let Some((key, depth, start)) = timing::function_entry(group::of_socket(first_arg), 0) {
        slow::function_entry(&ctx, key, depth, start, first_arg);
    }
    0
}

#[kretprobe]
pub fn netlat_kretprobe(_ctx: RetProbeContext) -> u32 {
    // A kprobe and its kretprobe run on different frames, so there is no
    // shared tag: pairing is by position (a kprobe hit inside another
    // kprobe handler is missed whole, kretprobe included).
    timing::function_exit(0);
    0
}

// fentry/fexit: same timing, lower cost; the target is chosen at load time.
// The kernel skips each program separately when it is already running on
// the CPU, so a nested call may have its exit seen and not its entry:
// each start is tagged with the call's context pointer, which the
// trampoline passes to both programs of one call (the same argument block
// on its stack frame; arch/x86/net/bpf_jit_comp.c, invoke_bpf_prog), so an
// exit pops its own start or nothing. Turning the pointer into a number
// needs CAP_PERFMON (the verifier's pointer-leak rule), which netlat's
// loads have anyway.

#[inline(always)]
fn call_frame<C: EbpfContext>(ctx: &C) -> u64 {
    ctx.as_ptr() as u64
}

#[fentry]
pub fn netlat_fentry(ctx: FEntryContext) -> u32 {
    let first_arg = || ctx.arg::<*const u8>(0);
    if let Some((key, depth, start)) =
        timing::function_entry(group::of_socket(first_arg), call_frame(&ctx))
    {
        slow::function_entry(&ctx, key, depth, start, first_arg);
    }
    0
}

#[fexit]
pub fn netlat_fexit(ctx: FExitContext) -> u32 {
    timing::function_exit(call_frame(&ctx));
    0
}

// net_rx_action without kprobes: irq:softirq_entry/exit with vec == NET_RX
// bracket exactly one net_rx_action call (kernel/softirq.c, handle_softirqs),
// in three flavours, cheapest first.

#[btf_tracepoint(function = "softirq_entry")]
pub fn netlat_tp_btf_softirq_entry(ctx: BtfTracePointContext) -> i32 {
    if ctx.arg::<u32>(0) == NET_RX_SOFTIRQ {
        timing::softirq_entry(&ctx);
    }
    0
}

#[btf_tracepoint(function = "softirq_exit")]
pub fn netlat_tp_btf_softirq_exit(ctx: BtfTracePointContext) -> i32 {
    if ctx.arg::<u32>(0) == NET_RX_SOFTIRQ {
        timing::softirq_exit();
    }
    0
}

#[raw_tracepoint(tracepoint = "softirq_entry")]
pub fn netlat_raw_softirq_entry(ctx: RawTracePointContext) -> i32 {
    if ctx.arg::<u32>(0) == NET_RX_SOFTIRQ {
        timing::softirq_entry(&ctx);
    }
    0
}

#[raw_tracepoint(tracepoint = "softirq_exit")]
pub fn netlat_raw_softirq_exit(ctx: RawTracePointContext) -> i32 {
    if ctx.arg::<u32>(0) == NET_RX_SOFTIRQ {
        timing::softirq_exit();
    }
    0
}

/// Offset of `vec` in the classic irq:softirq_* record. Userspace reads it
/// from the tracepoint's format file; 8 (after the common header) is what
/// every kernel since 4.x prints.
#[unsafe(no_mangle)]
static SOFTIRQ_VEC_OFFSET: u32 = 8;

fn classic_vec(ctx: &TracePointContext) -> u32 {
    // SAFETY: a bounded read from the tracepoint record; a bad offset fails
    // the helper and reads as "not NET_RX".
    let offset = unsafe { core::ptr::read_volatile(&SOFTIRQ_VEC_OFFSET) } as usize;
    unsafe { ctx.read_at::<u32>(offset) }.unwrap_or(u32::MAX)
}

#[tracepoint(category = "irq", name = "softirq_entry")]
pub fn netlat_tp_softirq_entry(ctx: TracePointContext) -> u32 {
    if classic_vec(&ctx) == NET_RX_SOFTIRQ {
        timing::softirq_entry(&ctx);
    }
    0
}

#[tracepoint(category = "irq", name = "softirq_exit")]
pub fn netlat_tp_softirq_exit(ctx: TracePointContext) -> u32 {
    if classic_vec(&ctx) == NET_RX_SOFTIRQ {
        timing::softirq_exit();
    }
    0
}

// Context programs for `netlat slow` with a function backend: which
// interrupt context each CPU is in, so a record can say softirq, hardirq
// or task (kernel/softirq.c and kernel/irq/handle.c fire these around
// every softirq vector and device interrupt handler).

#[raw_tracepoint(tracepoint = "softirq_entry")]
pub fn netlat_ctx_softirq_entry(ctx: RawTracePointContext) -> i32 {
    slow::softirq_started(ctx.arg::<u32>(0));
    0
}

#[raw_tracepoint(tracepoint = "softirq_exit")]
pub fn netlat_ctx_softirq_exit(_ctx: RawTracePointContext) -> i32 {
    slow::softirq_ended();
    0
}

#[raw_tracepoint(tracepoint = "irq_handler_entry")]
pub fn netlat_ctx_irq_entry(_ctx: RawTracePointContext) -> i32 {
    slow::hardirq_started();
    0
}

#[raw_tracepoint(tracepoint = "irq_handler_exit")]
pub fn netlat_ctx_irq_exit(_ctx: RawTracePointContext) -> i32 {
    slow::hardirq_ended();
    0
}

// NET_RX seen whole (see net_rx.rs). Attached exit first and entry last,
// beside whichever backend times net_rx_action.

#[raw_tracepoint(tracepoint = "softirq_raise")]
pub fn netlat_netrx_raise(ctx: RawTracePointContext) -> i32 {
    if ctx.arg::<u32>(0) == NET_RX_SOFTIRQ {
        net_rx::raised();
    }
    0
}

#[raw_tracepoint(tracepoint = "softirq_entry")]
pub fn netlat_netrx_entry(ctx: RawTracePointContext) -> i32 {
    if ctx.arg::<u32>(0) == NET_RX_SOFTIRQ {
        net_rx::entry();
    }
    0
}

#[raw_tracepoint(tracepoint = "napi_poll")]
pub fn netlat_netrx_poll(ctx: RawTracePointContext) -> i32 {
    // TP_PROTO(struct napi_struct *napi, int work, int budget)
    net_rx::polled(ctx.arg::<*const u8>(0), ctx.arg::<u64>(1) as i32);
    0
}

#[raw_tracepoint(tracepoint = "softirq_exit")]
pub fn netlat_netrx_exit(ctx: RawTracePointContext) -> i32 {
    if ctx.arg::<u32>(0) == NET_RX_SOFTIRQ {
        net_rx::exit();
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any program that could reach a panic.
    unsafe { core::hint::unreachable_unchecked() }
}
