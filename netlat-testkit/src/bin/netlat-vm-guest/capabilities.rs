//! What the running kernel offers, probed once before the tests, so each
//! test that depends on the kernel says which behaviour it expects from
//! evidence rather than from version numbers. The probes attach minimal
//! programs of their own through the bpf syscall, never through netlat: a
//! netlat bug must not change what the tests expect of netlat.
//!
//! Known behaviour, for reading the matrix (the probes decide, not this):
//! - fentry/fexit on net_rx_action: x86_64 kernels with BTF attach; arm64
//!   attaches only once its ftrace has direct calls (Linux 6.4?), so 6.1
//!   on arm64 refuses.
//! - fentry on tcp_collapse (7 arguments): x86_64 trampolines took at most
//!   6 arguments before Linux 6.5 (ENOTSUPP at attach); from 6.5 they
//!   take up to 12.

use std::{
    ffi::CString,
    os::fd::{FromRawFd as _, OwnedFd},
    path::Path,
    sync::OnceLock,
};

use aya_obj::btf::{Btf, BtfKind};

/// One probe's answer: attached, or the kernel's refusal.
#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    Yes,
    No(String),
}

impl Probe {
    pub fn yes(&self) -> bool {
        *self == Probe::Yes
    }
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Yes => f.write_str("yes"),
            Probe::No(why) => write!(f, "no({why})"),
        }
    }
}

pub struct Capabilities {
    /// The kprobe PMU: perf-event kprobes, what netlat's kprobe backend uses.
    pub kprobes: bool,
    /// An fentry program attached to net_rx_action.
    pub fentry: Probe,
    /// An fentry program attached to tcp_collapse, which has 7 arguments.
    pub fentry_7_args: Probe,
}

impl std::fmt::Display for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kprobes={} fentry={} fentry_7_args={}",
            if self.kprobes { "yes" } else { "no" },
            self.fentry,
            self.fentry_7_args
        )
    }
}

pub fn get() -> &'static Capabilities {
    static CAPS: OnceLock<Capabilities> = OnceLock::new();
    CAPS.get_or_init(probe)
}

fn probe() -> Capabilities {
    let btf = Btf::from_sys_fs().map_err(|e| format!("no kernel BTF: {e}"));
    let fentry_on = |function: &str| match &btf {
        Ok(btf) => fentry_attaches(btf, function),
        Err(e) => Probe::No(e.clone()),
    };
    Capabilities {
        kprobes: Path::new("/sys/bus/event_source/devices/kprobe/type").exists(),
        fentry: fentry_on("net_rx_action"),
        fentry_7_args: fentry_on("tcp_collapse"),
    }
}

// From include/uapi/linux/bpf.h.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_FENTRY: u32 = 24;
/// The kernel-internal errno trampolines refuse with (not in libc).
const ENOTSUPP: i32 = 524;

/// Loads `r0 = 0; exit` as fentry on `function` and attaches it (then
/// closes both): the same two steps, and so the same refusals, as any
/// fentry program.
fn fentry_attaches(btf: &Btf, function: &str) -> Probe {
    let Ok(btf_id) = btf.id_by_type_name_kind(function, BtfKind::Func) else {
        return Probe::No(format!("{function} not in BTF"));
    };
    // mov64 r0, 0; exit
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = CString::new("GPL").expect("no NUL inside");
    // union bpf_attr for BPF_PROG_LOAD, by offset; the rest stays zero.
    let mut attr = [0u8; 128];
    let mut put = |offset: usize, bytes: &[u8]| {
        attr[offset..offset + bytes.len()].copy_from_slice(bytes);
    };
    put(0, &BPF_PROG_TYPE_TRACING.to_ne_bytes());
    put(4, &(insns.len() as u32).to_ne_bytes());
    put(8, &(insns.as_ptr() as u64).to_ne_bytes());
    put(16, &(license.as_ptr() as u64).to_ne_bytes());
    put(68, &BPF_TRACE_FENTRY.to_ne_bytes());
    put(108, &btf_id.to_ne_bytes());
    let prog = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => fd,
        Err(errno) => return Probe::No(format!("load: {}", errno_name(errno))),
    };
    // BPF_RAW_TRACEPOINT_OPEN with no name attaches a tracing program to
    // its BTF target (Linux 5.5+).
    let mut attr = [0u8; 128];
    attr[8..12].copy_from_slice(&(std::os::fd::AsRawFd::as_raw_fd(&prog) as u32).to_ne_bytes());
    match bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr) {
        Ok(_link) => Probe::Yes,
        Err(errno) => Probe::No(format!("attach: {}", errno_name(errno))),
    }
}

fn bpf(cmd: libc::c_long, attr: &mut [u8; 128]) -> Result<OwnedFd, i32> {
    // SAFETY: the attr buffer outlives the call and is as large as we say;
    // the pointers inside it point at live buffers of the caller.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    // SAFETY: a new descriptor the kernel just returned, owned here alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn errno_name(errno: i32) -> String {
    match errno {
        ENOTSUPP => "ENOTSUPP".into(),
        libc::EPERM => "EPERM".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::EOPNOTSUPP => "EOPNOTSUPP".into(),
        libc::ENOENT => "ENOENT".into(),
        libc::EBUSY => "EBUSY".into(),
        e => format!("errno {e}"),
    }
}
