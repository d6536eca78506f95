//! What the kernel skipped while netlat's programs were attached, as the
//! kernel itself counts it:
//!
//! - `bpf_prog_info.recursion_misses` (Linux 5.12+): runs of a program the
//!   kernel did not make because the program was already running on that
//!   CPU (fentry/fexit trampolines; kprobe and raw tracepoint programs too
//!   since 6.7).
//! - the kprobe perf link's `missed` count (`bpf_link_info.perf_event.kprobe`,
//!   Linux 6.7+): probe hits the kprobe machinery dropped, above all
//!   kretprobes that found no free return instance, so the exit was never
//!   seen.
//!
//! aya 0.14 exposes neither (its `ProgramInfo` and `LinkInfo` keep the
//! kernel structs private), so this module asks `BPF_OBJ_GET_INFO_BY_FD`
//! itself. Whether a field exists is decided by what the kernel answers,
//! not by its version: the kernel writes back how many bytes of the info
//! struct it knows, and a field past that length is one it does not have.

use std::{
    io,
    os::fd::{AsFd, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
};

use aya_obj::generated::{
    bpf_cmd, bpf_link_info, bpf_link_type, bpf_perf_event_type, bpf_prog_info,
};

use crate::{
    model::report::{KernelCount, Missed},
    tracing::backend::{Backend, attach::Tracer},
};

/// The kernel's counts of skipped work for a tracer's two programs. Read
/// while attached: the links, and their counts, go with detaching.
pub fn read(tracer: &Tracer) -> io::Result<Missed> {
    let (entry, exit) = tracer.backend().programs();
    let mut runs = Some(0);
    let mut probe_hits = Some(0);
    for name in [entry, exit] {
        let program = tracer
            .ebpf
            .program(name)
            .ok_or_else(|| io::Error::other(format!("program {name} missing")))?;
        let fd = program
            .fd()
            .map_err(|e| io::Error::other(format!("program {name} not loaded: {e}")))?;
        let (id, misses) = program_misses(fd)?;
        runs = runs.zip(misses).map(|(a, b)| a + b);
        if tracer.backend() == Backend::Kprobe {
            let hits = kprobe_link_misses(id)?;
            probe_hits = probe_hits.zip(hits).map(|(a, b)| a + b);
        }
    }
    Ok(Missed {
        program_runs: KernelCount::from_option(runs),
        kprobe_hits: (tracer.backend() == Backend::Kprobe)
            .then(|| KernelCount::from_option(probe_hits)),
    })
}

/// `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `union bpf_attr` for BPF_LINK_GET_NEXT_ID and BPF_LINK_GET_FD_BY_ID.
#[repr(C)]
struct IdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: bpf_cmd, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live, initialised bpf_attr prefix of the size
    // passed; the kernel zero-extends shorter attrs.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_int,
            std::ptr::from_mut(attr),
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Fills `info` for the object behind `fd`; returns how many bytes of it
/// the kernel knows.
fn object_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> io::Result<usize> {
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<T>() as u32,
        info: std::ptr::from_mut(info) as u64,
    };
    bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(attr.info_len as usize)
}

fn zeroed<T>() -> T {
    // SAFETY: only used for the kernel's plain-integer info structs, for
    // which all-zero is valid (and what the kernel expects in unused tails).
    unsafe { std::mem::zeroed() }
}

/// A program's id and recursion misses (None: the kernel does not count
/// them, before Linux 5.12).
pub fn program_misses(fd: impl AsFd) -> io::Result<(u32, Option<u64>)> {
    let mut info: bpf_prog_info = zeroed();
    let known = object_info(fd.as_fd(), &mut info)?;
    let end = std::mem::offset_of!(bpf_prog_info, recursion_misses) + size_of::<u64>();
    Ok((info.id, (known >= end).then_some(info.recursion_misses)))
}

/// Where `perf_event.kprobe.missed` ends in `struct bpf_link_info`.
fn kprobe_missed_end() -> usize {
    std::mem::offset_of!(
        bpf_link_info,
        __bindgen_anon_1.perf_event.__bindgen_anon_1.kprobe.missed
    ) + size_of::<u64>()
}

/// What one link's info says about missed kprobe hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMisses {
    /// A kprobe or kretprobe perf link that reports its misses.
    Counted(u64),
    /// A kprobe perf link on a kernel without the count (before 6.7: the
    /// kernel describes perf links only since 6.6, their misses since 6.7).
    NotReported,
    /// Not a kprobe perf link.
    NotKprobe,
}

/// Decides from a link's info and how much of it the kernel filled.
fn link_misses(info: &bpf_link_info, known: usize) -> LinkMisses {
    if info.type_ != bpf_link_type::BPF_LINK_TYPE_PERF_EVENT as u32 {
        return LinkMisses::NotKprobe;
    }
    // SAFETY: perf_event is the union member for perf links; all-integer.
    let perf = unsafe { info.__bindgen_anon_1.perf_event };
    let kprobe = [
        bpf_perf_event_type::BPF_PERF_EVENT_KPROBE as u32,
        bpf_perf_event_type::BPF_PERF_EVENT_KRETPROBE as u32,
    ];
    // A kernel that leaves the perf event type 0 does not describe perf
    // links at all; one whose info stops short of `missed` lacks the count.
    if perf.type_ == bpf_perf_event_type::BPF_PERF_EVENT_UNSPEC as u32
        || known < kprobe_missed_end()
    {
        return LinkMisses::NotReported;
    }
    if !kprobe.contains(&perf.type_) {
        return LinkMisses::NotKprobe;
    }
    // SAFETY: kprobe is the member for kprobe/kretprobe perf events.
    LinkMisses::Counted(unsafe { perf.__bindgen_anon_1.kprobe.missed })
}

/// Missed hits summed over the kprobe links of the program `prog_id`:
/// Some(n) when every such link reports them, None when the kernel does
/// not (or no link of the program was found). Walks the system's links by
/// id, as `bpftool link` does: aya does not hand out a link's fd.
pub fn kprobe_link_misses(prog_id: u32) -> io::Result<Option<u64>> {
    let mut total = 0;
    let mut found = false;
    let mut id = 0;
    loop {
        let mut next = IdAttr {
            id,
            next_id: 0,
            open_flags: 0,
        };
        match bpf(bpf_cmd::BPF_LINK_GET_NEXT_ID, &mut next) {
            Ok(_) => id = next.next_id,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            // Before 5.8 there are no links to walk.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut by_id = IdAttr {
            id,
            next_id: 0,
            open_flags: 0,
        };
        let fd = match bpf(bpf_cmd::BPF_LINK_GET_FD_BY_ID, &mut by_id) {
            // SAFETY: a new fd the kernel just gave us.
            Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd as i32) },
            // Gone since GET_NEXT_ID: another process's link.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let mut info: bpf_link_info = zeroed();
        let known = object_info(fd.as_fd(), &mut info)?;
        if info.prog_id != prog_id {
            continue;
        }
        match link_misses(&info, known) {
            LinkMisses::Counted(n) => {
                total += n;
                found = true;
            }
            LinkMisses::NotReported => return Ok(None),
            LinkMisses::NotKprobe => {}
        }
    }
    Ok(found.then_some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perf_link(perf_type: bpf_perf_event_type, missed: u64) -> bpf_link_info {
        let mut info: bpf_link_info = zeroed();
        info.type_ = bpf_link_type::BPF_LINK_TYPE_PERF_EVENT as u32;
        // Writing a union field is safe; reading it back is not.
        info.__bindgen_anon_1.perf_event.type_ = perf_type as u32;
        info.__bindgen_anon_1
            .perf_event
            .__bindgen_anon_1
            .kprobe
            .missed = missed;
        info
    }

    #[test]
    fn a_kretprobe_link_reports_misses_only_when_the_kernel_knows_the_field() {
        let full = size_of::<bpf_link_info>();
        let kret = perf_link(bpf_perf_event_type::BPF_PERF_EVENT_KRETPROBE, 7);
        assert_eq!(link_misses(&kret, full), LinkMisses::Counted(7));
        // A kernel whose bpf_link_info ends before `missed` (6.6).
        assert_eq!(
            link_misses(&kret, kprobe_missed_end() - 8),
            LinkMisses::NotReported
        );
        // A kernel that does not describe perf links (6.1): type left 0.
        let blank = perf_link(bpf_perf_event_type::BPF_PERF_EVENT_UNSPEC, 0);
        assert_eq!(link_misses(&blank, full), LinkMisses::NotReported);
        let tp = perf_link(bpf_perf_event_type::BPF_PERF_EVENT_TRACEPOINT, 0);
        assert_eq!(link_misses(&tp, full), LinkMisses::NotKprobe);
        let mut raw: bpf_link_info = zeroed();
        raw.type_ = bpf_link_type::BPF_LINK_TYPE_RAW_TRACEPOINT as u32;
        assert_eq!(link_misses(&raw, full), LinkMisses::NotKprobe);
    }

    #[test]
    fn missed_lies_where_the_kernel_abi_puts_it() {
        // type, id, prog_id, pad; perf_event.type, pad; func_name, name_len,
        // offset, addr; then missed (include/uapi/linux/bpf.h).
        assert_eq!(kprobe_missed_end(), 16 + 8 + 24 + 8);
    }
}
