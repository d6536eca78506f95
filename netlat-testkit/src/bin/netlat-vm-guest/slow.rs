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
