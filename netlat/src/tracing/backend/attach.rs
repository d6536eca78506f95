//! Loading netlat's eBPF object and attaching one backend's program pair.
//!
//! Every attachment is a file descriptor (perf event or BPF link) owned by
//! this process, so the kernel detaches everything when netlat exits, even
//! on SIGKILL. aya never falls back to tracefs kprobe_events on kernels
//! since 4.17, which would outlive the process.

use std::io;

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::Array,
    programs::{BtfTracePoint, FEntry, FExit, KProbe, ProgramError, RawTracePoint, TracePoint},
};

use netlat_common::{
    ARMED_MAP, ENTRY_FRAMES_MAP, EPOCHS, GROUPS, NO_OFFSET, NO_THRESHOLD, PENDING_MAP,
    SLOW_ENTRIES_MAP, SLOW_EVENTS_MAP, STACK_COUNTS_MAP, STACKS_MAP, STATS_MAP, SockOffsets,
    globals as global,
    net_rx::{NapiOffsets, globals as net_rx_global},
};

use super::{Backend, choice};
use crate::oneline::{errno_text, one_line};

pub(crate) static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/netlat-ebpf"));

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The backend cannot work on this kernel at all.
    #[error("{0}")]
    Unavailable(String),
    /// The backend works, but not on this function.
    #[error("{0}")]
    CannotProbe(String),
    #[error("{0}")]
    Other(String),
}

/// Load-time settings of the NET_RX programs
/// (`tracing::net_rx::NetRxSettings::for_this_host` finds them).
#[derive(Clone, Copy, Debug)]
pub struct NetRxSettings {
    /// `net.core.netdev_budget`.
    pub budget: u32,
    /// `net.core.netdev_budget_usecs` in jiffies.
    pub budget_jiffies: u64,
    pub napi: NapiOffsets,
    /// Slow-call records carry their call's figures.
    pub records: bool,
}

/// Load-time settings of the eBPF object (its read-only globals).
#[derive(Clone, Copy, Debug, Default)]
pub struct Globals {
    /// `netlat_common::sample_filter::*`.
    pub sample_filter: u32,
    /// Hold flame graph samples per call and keep only calls slower than this.
    pub slower_than_ns: u64,
    /// `--by rcvbuf`: offset of `sk_rcvbuf` in `struct sock`, from kernel BTF.
    pub rcvbuf_offset: Option<u32>,
    /// The flame graph sampler rides along: its stack maps get full size.
    pub sampling: bool,
    /// `netlat slow`: emit a record for each call at least this long.
    pub slow: Option<SlowSettings>,
    /// The NET_RX programs' settings, when they ride along.
    pub net_rx: Option<NetRxSettings>,
}

/// Load-time settings of `netlat slow`.
#[derive(Clone, Copy, Debug)]
pub struct SlowSettings {
    pub threshold_ns: u64,
    /// Take the kernel stack at each entry.
    pub stacks: bool,
    /// Where the first argument's `struct sock` fields lie, if it is one.
    pub sock: SockOffsets,
    /// Size of the record ring buffer in bytes (a power of two of pages).
    pub ring_bytes: u32,
    /// Records each CPU may write per second (0: no limit); beyond it the
    /// kernel counts the call in `SlowStats::limited`.
    pub records_per_second: u32,
}

impl Globals {
    /// Histogram groups the STATS map holds (see `netlat_common::GROUPS`).
    pub fn groups(&self) -> u32 {
        if self.rcvbuf_offset.is_some() {
            GROUPS
        } else {
            1
        }
    }
}

/// Loads netlat's eBPF object: maps created, no program loaded yet.
///
/// `kernel_btf` is passed in rather than read by the loader: parsing
/// vmlinux BTF costs ~100 ms and ~10 MB, so it is done once, and only for
/// backends that need it (the object itself has no CO-RE relocations).
pub fn load_object(globals: &Globals, kernel_btf: Option<&Btf>) -> Result<Ebpf, AttachError> {
    raise_memlock_limit();
    let vec_offset = softirq_vec_offset().unwrap_or(8);
    let rcvbuf_offset = globals.rcvbuf_offset.unwrap_or(NO_OFFSET);
    let slow = globals.slow;
    let threshold = slow.map_or(NO_THRESHOLD, |s| s.threshold_ns);
    let slow_stacks = u32::from(slow.is_some_and(|s| s.stacks));
    let sock = slow.map_or(SockOffsets::NONE, |s| s.sock);
    let record_cost_ns: u64 = match slow.map_or(0, |s| s.records_per_second) {
        0 => 0,
        rate => 1_000_000_000 / u64::from(rate),
    };
    let net_rx = globals.net_rx;
    let budget = net_rx.map_or(300, |n| n.budget);
    let budget_jiffies = net_rx.map_or(2, |n| n.budget_jiffies);
    let napi = net_rx.map_or(NapiOffsets::NONE, |n| n.napi);
    let net_rx_records = u32::from(net_rx.is_some_and(|n| n.records));
    EbpfLoader::new()
        .btf(kernel_btf)
        .override_global(net_rx_global::NETDEV_BUDGET, &budget, true)
        .override_global(net_rx_global::NETDEV_BUDGET_JIFFIES, &budget_jiffies, true)
        .override_global(net_rx_global::NAPI_OFFSETS, &napi, true)
        .override_global(net_rx_global::NET_RX_RECORDS, &net_rx_records, true)
        .override_global(global::SOFTIRQ_VEC_OFFSET, &vec_offset, true)
        .override_global(global::SAMPLE_FILTER, &globals.sample_filter, true)
        .override_global(global::SLOWER_THAN_NS, &globals.slower_than_ns, true)
        .override_global(global::RCVBUF_OFFSET, &rcvbuf_offset, true)
        // Ungrouped runs need group 0 only: 1/32 of the locked memory.
        .map_max_entries(STATS_MAP, globals.groups() * EPOCHS)
        // Without the sampler its maps stay empty; at full size they are
        // ~20 MB of kernel memory (charged to netlat's cgroup since 5.11).
        .map_max_entries(STACKS_MAP, sampler_entries(globals, 16384))
        .map_max_entries(STACK_COUNTS_MAP, sampler_entries(globals, 16384))
        .map_max_entries(PENDING_MAP, sampler_entries(globals, 4096))
        .override_global(global::SLOW_THRESHOLD_NS, &threshold, true)
        .override_global(global::SLOW_STACKS, &slow_stacks, true)
        .override_global(global::SOCK_OFFSETS, &sock, true)
        .override_global(global::SLOW_RECORD_COST_NS, &record_cost_ns, true)
        // Outside `netlat slow` these stay empty: smallest sizes the kernel
        // accepts (a ring buffer is at least one page).
        .map_max_entries(
            SLOW_EVENTS_MAP,
            slow.map_or_else(page_size, |s| s.ring_bytes),
        )
        .map_max_entries(SLOW_ENTRIES_MAP, if slow.is_some() { 8192 } else { 64 })
        // ~1 KB a call in progress: 4096 threads inside the function at
        // once before an entry stack has no slot (counted as lost).
        .map_max_entries(ENTRY_FRAMES_MAP, if slow_stacks != 0 { 4096 } else { 1 })
        .load(OBJECT)
        .map_err(|e| AttachError::Other(format!("cannot load netlat's eBPF object: {e}")))
}

/// The kernel's page size, the smallest ring buffer.
pub fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(size).unwrap_or(4096)
}

/// A sampler map's size: as declared in netlat-ebpf, or 1 when unused.
fn sampler_entries(globals: &Globals, declared: u32) -> u32 {
    if globals.sampling { declared } else { 1 }
}

/// The loaded object with one backend's programs loaded (and, after
/// [`Tracer::attach`], attached). Dropping it detaches everything.
pub struct Tracer {
    /// Private to `tracing`: programs attach through `session`'s methods
    /// and maps are read by `tracing`'s readers or through [`Tracer::ebpf`].
    pub(in crate::tracing) ebpf: Ebpf,
    backend: Backend,
    function: String,
    /// Why the backend cannot work on this kernel, worked out once at load
    /// (kprobes load without their PMU; their attach then says this).
    unavailable: Option<String>,
}

impl Tracer {
    /// Loads the backend's two programs through the verifier, without
    /// attaching them.
    pub fn load(function: &str, backend: Backend) -> Result<Tracer, AttachError> {
        Tracer::load_with(function, backend, &Globals::default())
    }

    pub fn load_with(
        function: &str,
        backend: Backend,
        globals: &Globals,
    ) -> Result<Tracer, AttachError> {
        let unavailable = choice::unavailable_reason(backend, function);
        if let Some(reason) = &unavailable {
            // fentry's load itself needs BTF; kprobes load fine without the
            // PMU, which lets the verifier be exercised anyway.
            if backend != Backend::Kprobe {
                return Err(AttachError::Unavailable(reason.clone()));
            }
        }
        let btf = match backend {
            Backend::Fentry | Backend::TpBtf => Some(Btf::from_sys_fs().map_err(|e| {
                AttachError::Unavailable(format!("cannot read kernel BTF for {backend}: {e}"))
            })?),
            _ => None,
        };
        let mut ebpf = load_object(globals, btf.as_ref())?;
        let kernel_btf = || {
            btf.as_ref()
                .ok_or_else(|| AttachError::Other(format!("{backend} needs kernel BTF")))
        };
        let (entry, exit) = backend.programs();
        for name in [entry, exit] {
            let program = ebpf.program_mut(name).ok_or_else(|| {
                AttachError::Other(format!("program {name} missing from the eBPF object"))
            })?;
            let loaded = match backend {
                Backend::Kprobe => program_as::<KProbe>(program)?.load(),
                Backend::Fentry if name == entry => {
                    program_as::<FEntry>(program)?.load(function, kernel_btf()?)
                }
                Backend::Fentry => program_as::<FExit>(program)?.load(function, kernel_btf()?),
                Backend::TpBtf => {
                    let tp = if name == entry {
                        "softirq_entry"
                    } else {
                        "softirq_exit"
                    };
                    program_as::<BtfTracePoint>(program)?.load(tp, kernel_btf()?)
                }
                Backend::RawTp => program_as::<RawTracePoint>(program)?.load(),
                Backend::Tracepoint => program_as::<TracePoint>(program)?.load(),
            };
            loaded.map_err(|e| load_error(backend, function, e))?;
        }
        Ok(Tracer {
            ebpf,
            backend,
            function: function.to_owned(),
            unavailable,
        })
    }

    pub fn attach(&mut self) -> Result<(), AttachError> {
        let (backend, function) = (self.backend, self.function.as_str());
        if let Some(reason) = &self.unavailable {
            return Err(AttachError::Unavailable(reason.clone()));
        }
        let entry = backend.programs().0;
        for name in attach_order(backend) {
            let program = self
                .ebpf
                .program_mut(name)
                .ok_or_else(|| AttachError::Other(format!("program {name} missing")))?;
            let attached = match backend {
                Backend::Kprobe => program_as::<KProbe>(program)?.attach(function, 0).map(drop),
                Backend::Fentry if name == entry => {
                    program_as::<FEntry>(program)?.attach().map(drop)
                }
                Backend::Fentry => program_as::<FExit>(program)?.attach().map(drop),
                Backend::TpBtf => program_as::<BtfTracePoint>(program)?.attach().map(drop),
                Backend::RawTp => {
                    let tp = if name == entry {
                        "softirq_entry"
                    } else {
                        "softirq_exit"
                    };
                    program_as::<RawTracePoint>(program)?.attach(tp).map(drop)
                }
                Backend::Tracepoint => {
                    let tp = if name == entry {
                        "softirq_entry"
                    } else {
                        "softirq_exit"
                    };
                    program_as::<TracePoint>(program)?
                        .attach("irq", tp)
                        .map(drop)
                }
            };
            attached.map_err(|e| attach_error(backend, function, e))?;
        }
        self.arm(true)
    }

    /// While armed, an exit without a seen entry is counted: both programs
    /// are in, so it is a call that was already running, or one whose
    /// entry the kernel skipped. Disarmed before the entry program comes
    /// off, or every call that starts in the gap before the exit program
    /// follows would be counted too (10 at ~190k NET_RX calls/s here).
    fn arm(&mut self, armed: bool) -> Result<(), AttachError> {
        let map = self
            .ebpf
            .map_mut(ARMED_MAP)
            .ok_or_else(|| AttachError::Other(format!("{ARMED_MAP} map missing")))?;
        let mut flag: Array<_, u32> = Array::try_from(map)
            .map_err(|e| AttachError::Other(format!("{ARMED_MAP} map: {e}")))?;
        flag.set(0, u32::from(armed), 0)
            .map_err(|e| AttachError::Other(format!("cannot set {ARMED_MAP}: {e}")))
    }

    /// The object, read-only: for reading the maps of programs that ride
    /// along (programs attach through `tracing::session`).
    pub fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    /// One map, writable: maps only, so no program comes or goes behind
    /// `tracing::session`'s back (tests plant values through it).
    pub fn map_mut(&mut self, name: &str) -> Option<&mut aya::maps::Map> {
        self.ebpf.map_mut(name)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Detaches and unloads both programs; the maps stay readable. Reading
    /// after this gives a consistent snapshot: nothing writes any more.
    pub fn detach(&mut self) -> Result<(), AttachError> {
        self.arm(false)?;
        for name in detach_order(self.backend) {
            if let Some(program) = self.ebpf.program_mut(name) {
                let unloaded = match program {
                    aya::programs::Program::KProbe(p) => p.unload(),
                    aya::programs::Program::FEntry(p) => p.unload(),
                    aya::programs::Program::FExit(p) => p.unload(),
                    aya::programs::Program::BtfTracePoint(p) => p.unload(),
                    aya::programs::Program::RawTracePoint(p) => p.unload(),
                    aya::programs::Program::TracePoint(p) => p.unload(),
                    _ => Ok(()),
                };
                unloaded.map_err(|e| AttachError::Other(format!("cannot detach {name}: {e}")))?;
            }
        }
        Ok(())
    }
}

/// Exit program first: a call that starts in the gap before the entry
/// program attaches is then an exit without a seen entry (never timed),
/// rather than an entry whose exit nobody watched, left behind to pair
/// with a later exit of the same thread. Such exits are counted only once
/// [`Tracer::arm`] has run: before that they say nothing but how long the
/// gap was.
fn attach_order(backend: Backend) -> [&'static str; 2] {
    let (entry, exit) = backend.programs();
    [exit, entry]
}

/// The reverse of [`attach_order`]: calls under way when the entry program
/// comes off still have their exit seen.
fn detach_order(backend: Backend) -> [&'static str; 2] {
    let [first, second] = attach_order(backend);
    [second, first]
}

/// Tries the candidates in order; returns the first that attaches and why
/// each earlier one was skipped. If none attaches, one line with every reason.
pub fn attach_first(
    function: &str,
    candidates: &[Backend],
    globals: &Globals,
) -> Result<(Tracer, Vec<(Backend, String)>), AttachError> {
    let mut skipped = Vec::new();
    let mut last = None;
    for &backend in candidates {
        let attempt =
            Tracer::load_with(function, backend, globals).and_then(|mut t| t.attach().map(|()| t));
        match attempt {
            Ok(t) => return Ok((t, skipped)),
            Err(e) => {
                skipped.push((backend, e.to_string()));
                last = Some(e);
            }
        }
    }
    match (skipped.len(), last) {
        (1, Some(e)) => Err(e),
        (_, Some(e)) => {
            let reasons: Vec<String> = skipped
                .iter()
                .map(|(b, why)| format!("{b}: {why}"))
                .collect();
            let all = format!(
                "cannot trace {function} on this kernel: {}",
                reasons.join("; ")
            );
            Err(match e {
                AttachError::CannotProbe(_) => AttachError::CannotProbe(all),
                AttachError::Unavailable(_) => AttachError::Unavailable(all),
                AttachError::Other(_) => AttachError::Other(all),
            })
        }
        (_, None) => Err(AttachError::Other(format!(
            "no backend can trace {function}"
        ))),
    }
}

/// Why neither kprobes nor fentry can time `function` on this kernel,
/// found without attaching anything (kprobes: is their PMU there; fentry:
/// does a load get through). None when either may work, or when the
/// answer is not known. Needs root: unprivileged, every load is refused.
pub fn function_probes_refused(function: &str) -> Option<String> {
    let kprobe = choice::unavailable_reason(Backend::Kprobe, function)?;
    let fentry = match Tracer::load(function, Backend::Fentry) {
        Ok(_) => return None,
        Err(e @ (AttachError::Unavailable(_) | AttachError::CannotProbe(_))) => e.to_string(),
        Err(AttachError::Other(_)) => return None,
    };
    Some(format!("{kprobe}; {fentry}"))
}

fn program_as<'a, P>(program: &'a mut aya::programs::Program) -> Result<&'a mut P, AttachError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program>,
{
    program
        .try_into()
        .map_err(|_| AttachError::Other("eBPF program of an unexpected type".into()))
}

fn io_of(e: &ProgramError) -> Option<&io::Error> {
    match e {
        ProgramError::LoadError { io_error, .. } => Some(io_error),
        ProgramError::SyscallError(s) => Some(&s.io_error),
        ProgramError::KProbeError(aya::programs::kprobe::KProbeError::FileError {
            io_error,
            ..
        }) => Some(io_error),
        _ => None,
    }
}

/// ENOTSUPP, the kernel-internal errno some BPF paths leak to userspace.
const ENOTSUPP: i32 = 524;

fn load_error(backend: Backend, function: &str, e: ProgramError) -> AttachError {
    let errno = io_of(&e).and_then(io::Error::raw_os_error);
    match (&e, backend) {
        (ProgramError::Btf(_), Backend::Fentry) => AttachError::CannotProbe(format!(
            "{function} has no entry in the kernel's BTF, so fentry cannot attach to it (inlined, or not a vmlinux function)"
        )),
        (ProgramError::LoadError { .. }, Backend::Fentry)
            if matches!(errno, Some(libc::EPERM | libc::EOPNOTSUPP | ENOTSUPP)) =>
        {
            AttachError::Unavailable(format!(
                "fentry/fexit are refused by this kernel (BPF_PROG_LOAD: {})",
                errno_text(errno.unwrap_or(libc::EPERM))
            ))
        }
        (ProgramError::LoadError { .. }, Backend::Fentry) if errno == Some(libc::EINVAL) => {
            AttachError::CannotProbe(format!(
                "{function} cannot be traced with fentry (the kernel refuses it: notrace or not attachable)"
            ))
        }
        (
            ProgramError::LoadError {
                io_error,
                verifier_log,
            },
            _,
        ) => {
            let log = verifier_log.to_string();
            if std::env::var_os("NETLAT_VERIFIER_LOG").is_some() {
                eprintln!("netlat: {backend} verifier log:\n{log}");
            }
            // The kernel ends a rejection with statistics lines
            // ("processed N insns ...", "stack depth N"); the reason is
            // the line before them.
            let last = log
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| {
                    !l.is_empty()
                        && !l.starts_with("processed ")
                        && !l.starts_with("verification time")
                        && !l.starts_with("stack depth")
                })
                .unwrap_or("");
            AttachError::Other(format!(
                "the kernel refused netlat's {backend} programs ({io_error}); verifier: {last}"
            ))
        }
        _ => AttachError::Other(format!(
            "cannot load the {backend} programs: {}",
            one_line(&e)
        )),
    }
}

fn attach_error(backend: Backend, function: &str, e: ProgramError) -> AttachError {
    let errno = io_of(&e).and_then(io::Error::raw_os_error);
    match backend {
        // No reason at load (the PMU was there), so the kernel's own words.
        Backend::Kprobe if matches!(e, ProgramError::KProbeError(_)) => {
            AttachError::Unavailable(format!("kprobes are not usable here: {}", one_line(&e)))
        }
        Backend::Kprobe
            if matches!(
                errno,
                Some(libc::ENOENT | libc::EINVAL | libc::EADDRNOTAVAIL)
            ) =>
        {
            AttachError::CannotProbe(format!(
                "{function} exists but cannot be probed with kprobes ({}): it is blacklisted (see /sys/kernel/debug/kprobes/blacklist), notrace, or inlined",
                errno_text(errno.unwrap_or(libc::EINVAL))
            ))
        }
        // The programs loaded against this function's BTF; ENOTSUPP here is
        // the trampoline refusing: x86_64 before 6.5 takes at most 6
        // arguments (tcp_collapse has 7); arm64 before 6.4 has no ftrace
        // direct calls, so no trampoline on any kernel function.
        Backend::Fentry if errno == Some(ENOTSUPP) => AttachError::CannotProbe(format!(
            "{function} cannot be traced with fentry on this kernel (ENOTSUPP: its BPF trampoline refuses the function: {}); kprobes can",
            if cfg!(target_arch = "aarch64") {
                "arm64 kernels before Linux 6.4 attach fentry to no kernel function"
            } else {
                "e.g. more than 6 arguments before Linux 6.5"
            }
        )),
        Backend::Fentry if matches!(errno, Some(libc::EPERM | libc::EOPNOTSUPP)) => {
            AttachError::Unavailable(format!(
                "fentry/fexit cannot attach on this kernel ({})",
                errno_text(errno.unwrap_or(libc::EPERM))
            ))
        }
        Backend::Fentry if errno.is_some() => AttachError::CannotProbe(format!(
            "{function} cannot be traced with fentry ({})",
            errno_text(errno.unwrap_or(libc::EINVAL))
        )),
        Backend::Tracepoint if matches!(e, ProgramError::TracePointError(_)) => {
            AttachError::Unavailable(format!(
                "classic tracepoints need tracefs (mount -t tracefs nodev /sys/kernel/tracing): {}",
                one_line(&e)
            ))
        }
        _ => AttachError::Other(format!(
            "cannot attach the {backend} programs: {}",
            one_line(&e)
        )),
    }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; later ones to the
/// memory cgroup. Raising it may be refused (no CAP_SYS_RESOURCE), and on a
/// new kernel that is harmless, so failure is ignored.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid struct.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

/// Offset of `vec` in the classic irq:softirq_entry record, from the
/// tracepoint's format file.
fn softirq_vec_offset() -> Option<u32> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .find_map(|root| {
            std::fs::read_to_string(format!("{root}/events/irq/softirq_entry/format")).ok()
        })
        .and_then(|f| field_offset(&f, "vec"))
}

/// Parses `field:unsigned int vec;\toffset:8;\tsize:4;...` lines.
pub fn field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let mut parts = line.trim().split(';');
        let decl = parts.next()?.trim().strip_prefix("field:")?;
        if decl.rsplit(' ').next()? != field {
            return None;
        }
        parts
            .find_map(|p| p.trim().strip_prefix("offset:"))
            .and_then(|o| o.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_programs_attach_first_and_come_off_last() {
        for backend in [
            Backend::Fentry,
            Backend::Kprobe,
            Backend::TpBtf,
            Backend::RawTp,
            Backend::Tracepoint,
        ] {
            let (entry, exit) = backend.programs();
            assert_eq!(attach_order(backend), [exit, entry], "{backend}");
            assert_eq!(detach_order(backend), [entry, exit], "{backend}");
        }
    }

    #[test]
    fn reads_vec_offset_from_a_tracepoint_format() {
        let format = "name: softirq_entry\nID: 141\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned int vec;\toffset:8;\tsize:4;\tsigned:0;\n";
        assert_eq!(field_offset(format, "vec"), Some(8));
        assert_eq!(field_offset(format, "nope"), None);
    }
}
