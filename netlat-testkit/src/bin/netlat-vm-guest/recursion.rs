//! fentry/fexit under the kernel's per-program recursion guard, for real:
//! netlat times `htab_map_update_elem`, which its own fentry program calls
//! (inserting the thread's start-time stack). That nested call's entry is
//! skipped (the entry program is running on the CPU), its exit is not
//! (the exit program is not). Paired by position, that exit would pop the
//! outer call's start: the nested call timed from the outer call's entry,
//! the outer call's own exit then "without a seen entry". Kernels without
//! that guard (before 5.12) skip: there the nesting never ends.

use std::os::fd::{FromRawFd as _, OwnedFd};

use netlat_testkit::netlat::Netlat;

use crate::{
    NETLAT, capabilities, missed,
    verdict::{Outcome, check, json},
};

const FUNCTION: &str = "htab_map_update_elem";
/// Updates of a hash map from this thread: each one outer call.
const UPDATES: u64 = 2000;

/// `union bpf_attr` for BPF_MAP_CREATE, as far as used.
#[repr(C)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// `union bpf_attr` for BPF_MAP_UPDATE_ELEM.
#[repr(C)]
struct MapUpdate {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

const BPF_MAP_CREATE: i32 = 0;
const BPF_MAP_UPDATE_ELEM: i32 = 2;
const BPF_MAP_TYPE_HASH: u32 = 1;

fn bpf<T>(cmd: i32, attr: &mut T) -> Result<i64, String> {
    // SAFETY: `attr` is a live bpf_attr prefix of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr),
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error().to_string())
    } else {
        Ok(ret)
    }
}

fn hash_map() -> Result<OwnedFd, String> {
    let mut attr = MapCreate {
        map_type: BPF_MAP_TYPE_HASH,
        key_size: 4,
        value_size: 8,
        max_entries: 64,
        map_flags: 0,
    };
    let fd = bpf(BPF_MAP_CREATE, &mut attr).map_err(|e| format!("BPF_MAP_CREATE: {e}"))?;
    // SAFETY: a new fd the kernel just gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn update(map: &OwnedFd, key: u32, value: u64) -> Result<(), String> {
    use std::os::fd::AsRawFd as _;
    let mut attr = MapUpdate {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: std::ptr::from_ref(&key) as u64,
        value: std::ptr::from_ref(&value) as u64,
        flags: 0,
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr)
        .map(drop)
        .map_err(|e| format!("BPF_MAP_UPDATE_ELEM: {e}"))
}

pub fn nested_skip_not_mistimed() -> Result<Outcome, String> {
    let fentry = &capabilities::get().fentry;
    if !fentry.yes() {
        return Ok(Outcome::Skip(format!("no fentry on this kernel: {fentry}")));
    }
    // Before the per-program guard (Linux 5.12, which also added the
    // recursion_misses count), nothing stops the nested call's entry
    // program: it calls the traced function again, without end, and 5.10
    // panics ("Fatal exception in interrupt").
    if !missed::kernel_has_member(
        &missed::kernel_types()?,
        "bpf_prog_info",
        "recursion_misses",
    )? {
        return Ok(Outcome::Skip(
            "this kernel has no recursion guard for fentry programs (bpf_prog_info.recursion_misses, Linux 5.12+): tracing a function netlat's own programs call would recurse without end".into(),
        ));
    }
    let map = hash_map()?;
    let netlat = Netlat::start(
        NETLAT,
        &["histogram", "--backend", "fentry", FUNCTION, "--json"],
    );
    for i in 0..UPDATES {
        update(&map, (i % 64) as u32, i)?;
    }
    let out = netlat.interrupt();
    check(out.success, || format!("netlat failed: {}", out.stderr))?;
    let r = json(&out.stdout)?;
    let field = |name: &str| r[name].as_u64();
    let (count, unmatched, mismatched) = (
        field("count").unwrap_or(0),
        field("unmatched_exits").unwrap_or(u64::MAX),
        field("mismatched_exits"),
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let figures = format!(
        "updates={UPDATES} count={count} mismatched_exits={mismatched:?} unmatched_exits={unmatched} program_runs_missed={} max_ns={}",
        r["missed"]["program_runs"], r["max_ns"]
    );
    // Every outer call is timed; only this thread updates hash maps here
    // (netlat's own maps that userspace writes are arrays).
    check((UPDATES..=UPDATES + UPDATES / 10).contains(&count), || {
        format!("{UPDATES} updates but {count} calls timed: {figures}")
    })?;
    // Each outer call's entry inserts the thread's stack: one nested call
    // seen only at its exit per timed call, each recognised.
    check(mismatched == Some(count), || {
        format!("every timed call had one nested call seen only at its exit: {figures}")
    })?;
    check(unmatched <= cpus, || {
        format!("outer calls' exits reported without a seen entry: {figures}")
    })?;
    if let Some(skipped) = r["missed"]["program_runs"].as_u64() {
        check(skipped >= count, || {
            format!("the kernel counted fewer skipped runs than nested calls: {figures}")
        })?;
    }
    Ok(Outcome::Pass(figures))
}
