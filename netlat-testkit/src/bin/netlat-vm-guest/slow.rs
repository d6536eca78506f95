//! `netlat slow` with real kprobes and fentry: one record per tcp_collapse
//! call under the pruning generator, each naming the generator's own socket
//! (getsockname/getpeername, getsockopt SO_RCVBUF) and, with --stack, the
//! callers that led to the collapse.

use std::time::Duration;

use netlat_testkit::{netlat::Netlat, netstat::Pruning};
use serde_json::Value;

use crate::{
    NETLAT, collapse,
    verdict::{Outcome, check, judge_collapse_calls},
};

/// Both function backends, as `--by rcvbuf` is tested.
pub fn slow_tcp_collapse() -> Result<Outcome, String> {
    collapse::with_argument_backends(with_backend)
}

/// `(calls timed, over the threshold, printed, lost)` from the summary line.
pub fn summary(stderr: &str) -> Result<[u64; 4], String> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("netlat: slow "))
        .ok_or_else(|| format!("no summary line: {stderr}"))?;
    let figures: Vec<u64> = line
        .splitn(3, ": ")
        .nth(2)
        .unwrap_or("")
        .split(", ")
        .filter_map(|p| p.split_whitespace().next()?.parse().ok())
        .collect();
    figures
        .try_into()
        .map_err(|_| format!("cannot read the summary: {line}"))
}

/// The NDJSON records of a threshold-0 run, checked against its summary:
/// every call timed is over the threshold and printed, none lost.
pub fn every_call_recorded(
    stdout: &str,
    [timed, over, printed, lost]: [u64; 4],
) -> Result<Vec<Value>, String> {
    let records: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("not JSON ({e}): {l}")))
        .collect::<Result<_, _>>()?;
    check(over == timed && printed + lost == timed, || {
        format!("timed {timed}, over {over}, printed {printed}, lost {lost}")
    })?;
    check(lost == 0 && records.len() as u64 == printed, || {
        format!("{} lines, {printed} printed, {lost} lost", records.len())
    })?;
    Ok(records)
}

fn with_backend(backend: &str) -> Result<Outcome, String> {
    if let Some(verdict) = collapse::try_backend("slow", &["0", "0.1"], backend)? {
        return Ok(verdict);
    }
    let pruning0 = Pruning::now();
    let netlat = Netlat::start(
        NETLAT,
        &[
            "slow",
            "--json",
            "--stack",
            "--backend",
            backend,
            "tcp_collapse",
            "0",
        ],
    );
    let generated = netlat_testkit::collapse::run_recipe(
        Duration::from_secs(4),
        netlat_testkit::collapse::Recipe::default(),
    );
    let out = netlat.interrupt();
    let pruning = pruning0.since();
    check(out.success, || format!("netlat failed: {}", out.stderr))?;
    let [timed, over, printed, lost] = summary(&out.stderr)?;
    let records = every_call_recorded(&out.stdout, [timed, over, printed, lost])?;
    if let Some(skip) = judge_collapse_calls(timed, pruning, || {
        format!("0 records and 0 calls timed with {backend}")
    })? {
        return Ok(skip);
    }
    let (local, peer) = (generated.local.to_string(), generated.peer.to_string());
    for r in &records {
        let s = &r["socket"];
        check(
            s["local"] == local.as_str()
                && s["remote"] == peer.as_str()
                && s["rcvbuf"].as_i64() == Some(generated.rcvbuf as i64),
            || {
                format!(
                    "record {s} is not the generator's socket {local} <- {peer} (rcvbuf {})",
                    generated.rcvbuf
                )
            },
        )?;
        check(s["rmem_alloc"].as_i64().is_some_and(|m| m > 0), || {
            format!("a collapse with no receive memory in use: {s}")
        })?;
        let stack = r["stack"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        // tcp_collapse's caller, tcp_prune_queue, or what that is inlined
        // into: tcp_try_rmem_schedule (x86_64 6.12), tcp_data_queue (arm64
        // 6.1). A kprobe's stack starts at tcp_collapse itself; fentry's
        // trampoline runs before the function's frame exists, so there the
        // stack starts at the caller.
        check(
            stack.iter().any(|f| {
                ["tcp_prune_queue", "tcp_try_rmem_schedule", "tcp_data_queue"]
                    .iter()
                    .any(|c| f == c)
            }),
            || format!("no tcp_collapse caller from the receive path in the stack: {stack:?}"),
        )?;
    }
    let max = records
        .iter()
        .filter_map(|r| r["duration_ns"].as_u64())
        .max()
        .unwrap_or(0);
    Ok(Outcome::Pass(format!(
        "{printed} records = {timed} calls ({pruning}), all on {local} <- {peer} rcvbuf {}, max {max} ns; first stack: {}",
        generated.rcvbuf, records[0]["stack"]
    )))
}

/// `slow --stack` over a run with thousands of distinct stacks: every
/// record carries its own entry stack. kfree is called from nearly every
/// path in the kernel; a threshold few of its calls reach leaves most
/// entries' stacks unread, which a shared stack map kept (and filled,
/// and lost later stacks to its collisions).
pub fn slow_stacks_kept() -> Result<Outcome, String> {
    collapse::with_argument_backends(stacks_with_backend)
}

/// Kernel paths for kfree to be called from: loopback TCP, file and
/// procfs churn, socket pairs, thread creation.
fn many_paths(duration: Duration) -> u64 {
    use std::io::{Read as _, Write as _};
    let end = std::time::Instant::now() + duration;
    let workers: Vec<std::thread::JoinHandle<u64>> = (0..3)
        .map(|kind| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                while std::time::Instant::now() < end {
                    match kind {
                        0 => {
                            let mut c = std::net::TcpStream::connect(addr).unwrap();
                            let (mut s, _) = listener.accept().unwrap();
                            let _ = c.write_all(&[7; 3000]);
                            let mut buf = [0; 4096];
                            let _ = s.read(&mut buf);
                        }
                        1 => {
                            for f in ["/proc/self/status", "/proc/meminfo", "/proc/self/maps"] {
                                let _ = std::fs::read_to_string(f);
                            }
                            let path = format!("/tmp/netlat-paths-{n}");
                            let _ = std::fs::write(&path, [1u8; 5000]);
                            let _ = std::fs::remove_file(&path);
                        }
                        _ => {
                            let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
                            let _ = a.write_all(b"x");
                            let mut one = [0; 1];
                            let _ = b.read(&mut one);
                            let _ = std::thread::spawn(|| ()).join();
                        }
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
}

fn stacks_with_backend(backend: &str) -> Result<Outcome, String> {
    let probe = netlat_testkit::netlat::run(
        std::path::Path::new(NETLAT),
        &["slow", "--backend", backend, "kfree", "50us", "0.1"],
    );
    if !probe.success {
        // arm64 before 6.4 has no fentry at all: the one line says so.
        check(probe.stderr.lines().count() == 1, || {
            format!("{backend}: not one line: {}", probe.stderr)
        })?;
        return Ok(Outcome::Skip(format!(
            "{backend} cannot time kfree here: {}",
            probe.stderr.trim()
        )));
    }
    let netlat = Netlat::start(
        NETLAT,
        &[
            "slow",
            "--json",
            "--stack",
            "--backend",
            backend,
            "kfree",
            "50us",
        ],
    );
    let rounds = many_paths(Duration::from_secs(6));
    let out = netlat.interrupt();
    check(out.success, || format!("netlat failed: {}", out.stderr))?;
    let [timed, over, printed, lost] = summary(&out.stderr)?;
    let records: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("not JSON ({e}): {l}")))
        .collect::<Result<_, _>>()?;
    let with_stack = records
        .iter()
        .filter(|r| r["stack"].as_array().is_some_and(|s| !s.is_empty()))
        .count() as u64;
    let n = records.len() as u64;
    let not_taken: u64 = out
        .stderr
        .split("; ")
        .find_map(|p| p.strip_suffix(" stacks could not be taken")?.parse().ok())
        .unwrap_or(0);
    let figures = format!(
        "{timed} kfree calls timed over {rounds} rounds of many paths, {over} >= 50us, {printed} printed ({lost} lost), {with_stack} with their stack, {not_taken} stacks not taken"
    );
    check(n == printed && n >= 50, || {
        format!("too few records to judge: {figures}")
    })?;
    // kprobe handlers run with preemption off: every record has its own
    // stack (a shared stack map lost ~1 in 1000 there to collisions).
    // fentry programs can be preempted, so a second task's program on the
    // same CPU may find the kernel's per-CPU callchain buffer in use and
    // bpf_get_stack fail (6.1: 11 in 2647, 6.12: 41 in 2248): the kernel
    // counts each, and that is all that may be missing. On 5.10 an fentry
    // stack now and then unwinds no further than netlat's own trampoline
    // frames, which naming drops (1 in ~2000 records).
    let (allowed_taken, allowed_empty) = match backend {
        "fentry" if crate::kernel_release().starts_with("5.10") => (n / 20, n / 200),
        "fentry" => (n / 20, 0),
        _ => (0, 0),
    };
    check(not_taken <= allowed_taken, || {
        format!("entry stacks the kernel could not take: {figures}")
    })?;
    check(n - with_stack <= not_taken + allowed_empty, || {
        format!("a record without its stack that the kernel did not count: {figures}")
    })?;
    // What a shared stack map did: more and more lost as it filled. The
    // second half of the run must lose no more than twice the first (with
    // slack for a handful either way).
    let stackless = |rs: &[Value]| {
        rs.iter()
            .filter(|r| r["stack"].as_array().is_none_or(|s| s.is_empty()))
            .count()
    };
    let (first, second) = records.split_at(records.len() / 2);
    let (a, b) = (stackless(first), stackless(second));
    check(b <= 2 * a + 5, || {
        format!("stacks lost more in the second half ({b}) than the first ({a}): {figures}")
    })?;
    Ok(Outcome::Pass(figures))
}
