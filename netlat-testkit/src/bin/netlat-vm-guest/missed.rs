//! The kernel's counts of what it skipped reach the report: kretprobes
//! that found no free return instance, under more concurrent sleepers than
//! a kretprobe has instances (by default max(10, 2 x CPUs)).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use btfparse::{Readable, TypeInformation, TypeVariant};
use netlat_testkit::netlat::Netlat;

use crate::{
    NETLAT,
    verdict::{Outcome, check, json},
};

/// Every Rust sleep ends up here (nanosleep and clock_nanosleep both).
const FUNCTION: &str = "hrtimer_nanosleep";

/// More threads asleep in FUNCTION at once than a kretprobe has instances.
const SLEEPERS: usize = 48;

struct Bytes(Vec<u8>);

impl Readable for Bytes {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let start = offset as usize;
        let bytes = self
            .0
            .get(start..start + buffer.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buffer.copy_from_slice(bytes);
        Ok(())
    }
}

/// The capability probe, independent of netlat's own: whether this
/// kernel's BTF gives `struct strukt` the member `path`
/// (`bpf_link_info.perf_event.kprobe.missed`, Linux 6.7+;
/// `bpf_prog_info.recursion_misses`, 5.12+).
pub fn kernel_has_member(
    types: &TypeInformation,
    strukt: &str,
    path: &str,
) -> Result<bool, String> {
    let id = types
        .get()
        .iter()
        .find_map(|(id, t)| match t {
            TypeVariant::Struct(s) if s.name().as_deref() == Some(strukt) => Some(*id),
            _ => None,
        })
        .ok_or_else(|| format!("no struct {strukt} in BTF"))?;
    Ok(types.offset_of(id, path).is_ok())
}

/// The running kernel's BTF types.
pub fn kernel_types() -> Result<TypeInformation, String> {
    let bytes = std::fs::read("/sys/kernel/btf/vmlinux").map_err(|e| format!("no BTF: {e}"))?;
    TypeInformation::new(&Bytes(bytes)).map_err(|e| format!("bad BTF: {e:?}"))
}

fn sleepers(run_for: Duration) -> u64 {
    let deadline = Instant::now() + run_for;
    let threads: Vec<_> = (0..SLEEPERS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut sleeps = 0u64;
                while Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(200));
                    sleeps += 1;
                }
                sleeps
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap_or(0)).sum()
}

pub fn kretprobe_misses_reported() -> Result<Outcome, String> {
    let types = kernel_types()?;
    let expect_count = kernel_has_member(&types, "bpf_link_info", "perf_event.kprobe.missed")?;
    let expect_runs = kernel_has_member(&types, "bpf_prog_info", "recursion_misses")?;
    let netlat = Netlat::start(
        NETLAT,
        &["histogram", "--backend", "kprobe", FUNCTION, "--json"],
    );
    let sleeps = sleepers(Duration::from_secs(2));
    let out = netlat.interrupt();
    check(out.success, || format!("netlat failed: {}", out.stderr))?;
    let r = json(&out.stdout)?;
    let missed = &r["missed"];
    let runs = &missed["program_runs"];
    check(
        if expect_runs {
            runs.is_u64()
        } else {
            runs == "not reported by this kernel"
        },
        || format!("recursion_misses in this kernel's BTF: {expect_runs}; netlat says {runs}"),
    )?;
    let hits = &missed["kprobe_hits"];
    let figures = format!(
        "sleeps={sleeps} count={} unfinished={} kprobe_hits={hits} link_missed_in_btf={expect_count}",
        r["count"], r["unfinished_calls"]
    );
    if expect_count {
        let n = hits
            .as_u64()
            .ok_or_else(|| format!("the kernel counts misses but netlat says {hits}: {figures}"))?;
        check(n > 0, || {
            format!("{SLEEPERS} concurrent sleepers but no missed kretprobe: {figures}")
        })?;
    } else {
        check(hits == "not reported by this kernel", || {
            format!("this kernel has no link missed count, but netlat says {hits}: {figures}")
        })?;
    }
    // The text report says the same.
    let text = netlat_testkit::netlat::run(
        Path::new(NETLAT),
        &["histogram", "--backend", "kprobe", FUNCTION, "0.5"],
    );
    check(
        text.success && text.stdout.contains("kprobe hits missed"),
        || {
            format!(
                "text report without kprobe misses: {}{}",
                text.stdout, text.stderr
            )
        },
    )?;
    Ok(Outcome::Pass(figures))
}
