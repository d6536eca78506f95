//! tcp_collapse under the pruning generator: counted, drawn, grouped by
//! receive buffer, and timed around a tcp_rmem change.

use std::{path::Path, time::Duration};

use netlat_testkit::{
    autotuned, collapse,
    netlat::{Netlat, bucket_total, run},
    netstat::Pruning,
};
use serde_json::Value;

use crate::{
    NETLAT, capabilities, sysctl,
    verdict::{Outcome, check, json, judge_collapse_calls},
};

pub fn tcp_collapse() -> Result<Outcome, String> {
    // Quiet run first: no generator, no calls.
    let quiet = run(
        Path::new(NETLAT),
        &["histogram", "--json", "tcp_collapse", "1"],
    );
    check(quiet.success, || format!("netlat failed: {}", quiet.stderr))?;
    let q = json(&quiet.stdout)?;
    let quiet_count = q["count"].as_u64().unwrap_or(u64::MAX);
    check(quiet_count == 0, || {
        format!("{quiet_count} tcp_collapse calls without the generator")
    })?;

    let pruning0 = Pruning::now();
    let netlat = Netlat::start(NETLAT, &["histogram", "--json", "tcp_collapse"]);
    let backend = netlat.first_line.clone();
    collapse::run_for(Duration::from_secs(4));
    let out = netlat.interrupt();
    let pruning = pruning0.since();
    check(out.success, || format!("netlat failed: {}", out.stderr))?;
    let r = json(&out.stdout)?;
    let count = r["count"].as_u64().unwrap_or(0);
    // Auto prefers fentry, where the kernel attaches it to tcp_collapse.
    let expected = if capabilities::get().fentry_7_args.yes() {
        "fentry"
    } else {
        "kprobe"
    };
    check(r["backend"] == expected, || {
        format!(
            "auto picked {} where {expected} was expected ({})",
            backend.trim(),
            capabilities::get()
        )
    })?;
    check(bucket_total(&r) == count, || {
        "buckets do not sum to count".into()
    })?;
    if let Some(skip) = judge_collapse_calls(count, pruning, || {
        format!(
            "backend={}, 0 calls with and without the generator",
            r["backend"]
        )
    })? {
        return Ok(skip);
    }
    Ok(Outcome::Pass(format!(
        "backend={} count={count} {pruning} max_ns={} quiet_count={quiet_count}",
        r["backend"], r["max_ns"]
    )))
}

/// Samples landing in tcp_collapse itself. The locked-buffer generator's
/// collapses last a few ms in all (seen: 6 calls, 0 samples at 4999 Hz), so
/// this runs the story's autotuned generator under its large tcp_rmem: the
/// queue is filled to 90% of tcp_rmem[2] first, the sampler attaches, and
/// the cycle ends in one collapse of ~60-110 ms under TCG.
pub fn flamegraph_tcp_collapse() -> Result<Outcome, String> {
    let folded = "/tmp/collapse.folded";
    let restore = sysctl::large_rmem()?;
    let generator = autotuned::spawn_held(sysctl::sampling_knobs(), 0.9);
    let held = generator.held(Duration::from_secs(30));
    let pruning0 = Pruning::now();
    let netlat = Netlat::start(
        NETLAT,
        &[
            "flamegraph",
            "--during",
            "tcp_collapse",
            "--duration",
            "8",
            "--frequency",
            "4999",
            "-o",
            "/tmp/collapse.svg",
            "--folded",
            folded,
        ],
    );
    generator.release();
    let out = netlat.wait(Duration::from_secs(60));
    let generated = generator.stop();
    let pruning = pruning0.since();
    drop(restore);
    let cycles = format!(
        "{} cycles, {} collapsed, queue held at 90%: {held}",
        generated.cycles, generated.collapsed_cycles
    );
    if !out.success {
        check(
            out.stderr.lines().count() == 2 && out.stderr.contains("no samples were kept"),
            || format!("unexpected failure: {}", out.stderr),
        )?;
        // TCG delivers far fewer samples in a long call than its length
        // predicts, but a collapse of this size has always had some.
        check(pruning.collapsed == 0, || {
            format!(
                "the kernel collapsed ({pruning}; {cycles}) but no sample was kept: {}",
                out.stderr.lines().last().unwrap_or("").trim()
            )
        })?;
        return Ok(Outcome::Skip(format!(
            "the kernel collapsed nothing while sampling ({pruning}; {cycles}); checked instead: {}",
            out.stderr.lines().last().unwrap_or("").trim()
        )));
    }
    let text = std::fs::read_to_string(folded).map_err(|e| e.to_string())?;
    let stacks = text.lines().count();
    check(stacks > 0, || "no stacks".into())?;
    check(text.lines().all(|l| l.contains("tcp_collapse")), || {
        format!("a stack without tcp_collapse: {text}")
    })?;
    Ok(Outcome::Pass(format!(
        "{stacks} distinct stacks, {pruning}, {cycles}; {}",
        out.stderr.lines().last().unwrap_or("").trim()
    )))
}

/// Both argument-reading backends: kprobes read the socket from pt_regs,
/// fentry from the BTF-typed context.
pub fn by_rcvbuf() -> Result<Outcome, String> {
    with_argument_backends(by_rcvbuf_with)
}

/// Runs `test` with the kprobe and the fentry backend: a pass if both
/// passed, else a skip naming what each found.
pub fn with_argument_backends(
    test: impl Fn(&str) -> Result<Outcome, String>,
) -> Result<Outcome, String> {
    let mut passed = Vec::new();
    let mut skipped = Vec::new();
    for backend in ["kprobe", "fentry"] {
        match test(backend).map_err(|e| format!("{backend}: {e}"))? {
            Outcome::Pass(f) => passed.push(format!("{backend}: {f}")),
            Outcome::Skip(f) => skipped.push(format!("{backend}: {f}")),
        }
    }
    let all: Vec<String> = passed.iter().chain(&skipped).cloned().collect();
    Ok(if skipped.is_empty() {
        Outcome::Pass(all.join("; "))
    } else {
        Outcome::Skip(all.join("; "))
    })
}

/// tcp_collapse has 7 arguments: x86_64 trampolines took at most 6 before
/// Linux 6.5. Where the kernel's own probe refused fentry on it, netlat's
/// `probe` run must have refused in one line that says why, not failed
/// some other way: that is the whole verdict (Some). None: test on.
fn fentry_refusal(
    backend: &str,
    probe: &netlat_testkit::netlat::Output,
) -> Option<Result<Outcome, String>> {
    let refused = &capabilities::get().fentry_7_args;
    if backend != "fentry" || refused.yes() {
        return None;
    }
    let judged = (|| {
        check(!probe.success, || {
            format!("the kernel refused fentry on tcp_collapse ({refused}), yet netlat attached")
        })?;
        let expected = if refused.to_string().contains("ENOTSUPP") {
            "cannot be traced with fentry on this kernel (ENOTSUPP"
        } else {
            "fentry"
        };
        check(
            probe.stderr.lines().count() == 1 && probe.stderr.contains(expected),
            || format!("not the one-line refusal: {}", probe.stderr.trim()),
        )?;
        Ok(Outcome::Pass(format!(
            "refused as the kernel does ({refused}): {}",
            probe.stderr.trim()
        )))
    })();
    Some(judged)
}

/// A short `netlat SUBCOMMAND --backend BACKEND tcp_collapse REST` first:
/// where the kernel refuses fentry on tcp_collapse, the one-line refusal
/// is the verdict (Some); everywhere else netlat must attach (None).
pub fn try_backend(
    subcommand: &str,
    rest: &[&str],
    backend: &str,
) -> Result<Option<Outcome>, String> {
    let mut args = vec![subcommand, "--backend", backend, "tcp_collapse"];
    args.extend(rest);
    let probe = run(Path::new(NETLAT), &args);
    if let Some(verdict) = fentry_refusal(backend, &probe) {
        return verdict.map(Some);
    }
    check(probe.success, || {
        format!("cannot attach: {}", probe.stderr.trim())
    })?;
    Ok(None)
}

fn by_rcvbuf_with(backend: &str) -> Result<Outcome, String> {
    if let Some(verdict) = try_backend("histogram", &["0.1"], backend)? {
        return Ok(verdict);
    }
    let pruning0 = Pruning::now();
    let netlat = Netlat::start(
        NETLAT,
        &[
            "histogram",
            "--json",
            "--by",
            "rcvbuf",
            "--backend",
            backend,
            "tcp_collapse",
        ],
    );
    // The receiver shrinks its buffer to 16 KiB, so sk_rcvbuf is 32 KiB:
    // band 32K, two below the default tcp_rmem's 128K, so a read that
    // missed the shrink (or hit the wrong field) lands elsewhere.
    let generated = collapse::run_recipe(Duration::from_secs(4), collapse::Recipe::default());
    let out = netlat.interrupt();
    let pruning = pruning0.since();
    check(out.success, || format!("netlat failed: {}", out.stderr))?;
    let r = json(&out.stdout)?;
    let count = r["count"].as_u64().unwrap_or(0);
    let groups = r["by"]["groups"]
        .as_array()
        .ok_or_else(|| format!("no by.groups in {}", out.stdout))?;
    let grouped: u64 = groups
        .iter()
        .map(|g| g["count"].as_u64().unwrap_or(0))
        .sum();
    check(grouped == count, || {
        format!("groups hold {grouped} calls, the run {count}")
    })?;
    check(r["by"]["key"] == "rcvbuf", || {
        format!("key {}", r["by"]["key"])
    })?;
    let rcvbuf = generated.rcvbuf as u64;
    let band = groups.iter().find(|g| {
        g["low"].as_u64().is_some_and(|l| l <= rcvbuf)
            && g["high"].as_u64().is_some_and(|h| rcvbuf <= h)
    });
    let in_band = band.map_or(0, |g| g["count"].as_u64().unwrap_or(0));
    let labels: Vec<String> = groups
        .iter()
        .map(|g| format!("{}:{}", g["label"], g["count"]))
        .collect();
    if let Some(skip) = judge_collapse_calls(count, pruning, || {
        format!("0 calls, 0 in groups ({})", r["by"]["source"])
    })? {
        return Ok(skip);
    }
    // The generator's socket is the only one pruning in the guest.
    check(in_band == count, || {
        format!(
            "sk_rcvbuf was {rcvbuf} (getsockopt), but only {in_band} of {count} calls are in its band: {}",
            labels.join(" ")
        )
    })?;
    Ok(Outcome::Pass(format!(
        "sk_rcvbuf={rcvbuf}: {in_band}/{count} calls in band {} ({pruning}; {})",
        band.map_or("?".into(), |g| g["label"].to_string()),
        r["by"]["source"]
    )))
}

/// The before/after of "The story of one latency spike", end to end: two recorded runs around a tcp_rmem
/// change, the counters beside each, the setting put back.
pub fn experiment_tcp_rmem() -> Result<Outcome, String> {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    const KEY: &str = "net.ipv4.tcp_rmem";
    const TRIED: &str = "4096 65536 1048576";
    let original = sysctl::read(KEY);
    check(!original.is_empty() && original != TRIED, || {
        format!("{KEY} reads {original:?}")
    })?;
    let dir = "/tmp/experiment";
    let pruning0 = Pruning::now();
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                collapse::run_for(Duration::from_secs(4));
            }
        })
    };
    let assignment = format!("{KEY}={TRIED}");
    let out = run(
        Path::new(NETLAT),
        &[
            "experiment",
            "tcp_collapse",
            "--sysctl",
            &assignment,
            "--duration",
            "5",
            "--output-dir",
            dir,
            "--json",
        ],
    );
    stop.store(true, Ordering::Relaxed);
    generator
        .join()
        .map_err(|_| "generator panicked".to_string())?;
    let pruned_total = pruning0.since().pruned;
    check(out.success, || format!("experiment failed: {}", out.stderr))?;
    check(sysctl::read(KEY) == original, || {
        format!(
            "{KEY} is {:?} after the experiment, was {original:?}",
            sysctl::read(KEY)
        )
    })?;
    let read = |name: &str| -> Result<Value, String> {
        let path = format!("{dir}/{name}.json");
        json(&std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?)
    };
    let (before, after) = (read("before")?, read("after")?);
    let rmem = |r: &Value| {
        r["conditions"]["sysctls_start"][KEY]
            .as_str()
            .map(str::to_owned)
    };
    check(rmem(&before).as_deref() == Some(original.as_str()), || {
        format!("before.json records {KEY}={:?}", rmem(&before))
    })?;
    check(rmem(&after).as_deref() == Some(TRIED), || {
        format!("after.json records {KEY}={:?}", rmem(&after))
    })?;
    let mut figures = Vec::new();
    let mut pruned_in_runs = 0;
    for (name, r) in [("before", &before), ("after", &after)] {
        let delta = &r["conditions"]["netstat_delta"];
        let pruned = delta["PruneCalled"]
            .as_u64()
            .ok_or_else(|| format!("{name}.json has no PruneCalled delta: {delta}"))?;
        check(delta["TCPRcvCollapsed"].is_u64(), || {
            format!("{name}.json has no TCPRcvCollapsed delta")
        })?;
        let count = r["count"].as_u64().unwrap_or(0);
        // tcp_collapse runs only from tcp_prune_queue.
        check(pruned > 0 || count == 0, || {
            format!("{name}: {count} calls without a prune")
        })?;
        check(bucket_total(r) == count, || {
            format!("{name}: buckets != count")
        })?;
        pruned_in_runs += pruned;
        figures.push(format!("{name}: count={count} PruneCalled+={pruned}"));
    }
    check(pruned_in_runs <= pruned_total, || {
        format!(
            "the runs' PruneCalled deltas sum to {pruned_in_runs}, more than the {pruned_total} seen around the experiment"
        )
    })?;
    let table: Value = json(&out.stdout)?;
    check(table.to_string().contains(TRIED), || {
        format!(
            "the comparison does not show the tried {KEY}: {}",
            out.stdout
        )
    })?;
    Ok(Outcome::Pass(format!(
        "{}; {KEY} restored to {original:?}; PruneCalled+={pruned_total} overall",
        figures.join("; ")
    )))
}
