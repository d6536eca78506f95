//! `--by` groups: which histogram a call is counted in, decided at its entry
//! (a kretprobe cannot see the arguments any more).

use aya_ebpf::helpers::bpf_probe_read_kernel;
use netlat_common::{NO_OFFSET, rcvbuf_group};

/// Byte offset of `sk_rcvbuf` in `struct sock` on the running kernel, found
/// by userspace in its BTF; `NO_OFFSET` when not grouping.
#[unsafe(no_mangle)]
static RCVBUF_OFFSET: u32 = NO_OFFSET;

/// The group of a call whose first argument is a `struct sock *`, fetched
/// by `first_arg` only when grouping: the global is a load-time constant,
/// so the verifier drops the read otherwise. That matters for fentry, where
/// reading an argument the function does not have (net_rx_action(void) on
/// newer kernels) fails verification.
#[inline(always)]
pub fn of_socket(first_arg: impl FnOnce() -> *const u8) -> u8 {
    // SAFETY: a read of a global that userspace sets before loading.
    let offset = unsafe { core::ptr::read_volatile(&RCVBUF_OFFSET) };
    if offset == NO_OFFSET {
        return 0;
    }
    let sk = first_arg();
    if sk.is_null() {
        return 0;
    }
    // SAFETY: probe_read checks the address; a bad one reads as group 0.
    let rcvbuf = unsafe { bpf_probe_read_kernel(sk.wrapping_add(offset as usize).cast::<i32>()) }
        .unwrap_or(0);
    rcvbuf_group(rcvbuf) as u8
}
