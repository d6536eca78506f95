//! NET_RX seen whole on kernels with kprobes and fentry: `slow
//! net_rx_action` gives the packets the kernel processed through every
//! backend (the NET_RX tracepoints ride beside whichever times the call),
//! and a starved ksoftirqd raises the wait where the kernel defers to it.

use std::{path::Path, time::Duration};

use netlat_testkit::{loopback, netlat::Netlat, softirqs, softnet, starve};

use crate::{
    NETLAT, capabilities,
    verdict::{Outcome, check},
};

/// Per CPU: `(records, records with their call's figures, packets in them)`.
fn per_cpu(stdout: &str, cpus: usize) -> Result<Vec<(u64, u64, u64)>, String> {
    let mut out = vec![(0, 0, 0); cpus];
    for line in stdout.lines() {
        let r: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
        let cpu = r["cpu"].as_u64().unwrap_or(u64::MAX) as usize;
        let slot = out
            .get_mut(cpu)
            .ok_or_else(|| format!("CPU {cpu}: {line}"))?;
        slot.0 += 1;
        if let Some(n) = r.get("net_rx") {
            let packets = n["packets"].as_u64().unwrap_or(0);
            let devices: u64 = n["devices"]
                .as_array()
                .map_or(0, |d| d.iter().filter_map(|d| d["packets"].as_u64()).sum());
            check(devices == packets, || {
                format!("devices do not add up: {line}")
            })?;
            slot.1 += 1;
            slot.2 += packets;
        }
    }
    Ok(out)
}

fn with_backend(backend: &str) -> Result<String, String> {
    let (calls0, net0) = (softirqs::net_rx_per_cpu(), softnet::read());
    let netlat = Netlat::start(
        NETLAT,
        &[
            "slow",
            "--backend",
            backend,
            "net_rx_action",
            "0",
            "4",
            "--json",
        ],
    );
    let (calls1, net1) = (softirqs::net_rx_per_cpu(), softnet::read());
    let trips = loopback::run_paced(Duration::from_secs(2), 300);
    let (calls2, net2) = (softirqs::net_rx_per_cpu(), softnet::read());
    let out = netlat.wait(Duration::from_secs(120));
    let (calls3, net3) = (softirqs::net_rx_per_cpu(), softnet::read());
    check(out.success, || format!("{backend}: {}", out.stderr.trim()))?;
    let got = per_cpu(&out.stdout, calls0.len())?;
    let mut said = Vec::new();
    for (cpu, &(records, seen, packets)) in got.iter().enumerate() {
        let calls = (calls2[cpu] - calls1[cpu], calls3[cpu] - calls0[cpu]);
        let processed = (net2[cpu].0 - net1[cpu].0, net3[cpu].0 - net0[cpu].0);
        check(records >= calls.0 && records <= calls.1, || {
            format!("{backend} CPU {cpu}: {records} records outside {calls:?} (/proc/softirqs)")
        })?;
        check(records - seen <= 1, || {
            format!(
                "{backend} CPU {cpu}: {} of {records} records without their call's figures",
                records - seen
            )
        })?;
        check(packets >= processed.0 && packets <= processed.1, || {
            format!(
                "{backend} CPU {cpu}: {packets} packets outside {processed:?} (softnet processed)"
            )
        })?;
        said.push(format!(
            "cpu{cpu} {records} calls {packets} packets in {processed:?}"
        ));
    }
    check(got.iter().map(|c| c.2).sum::<u64>() >= trips, || {
        format!("{backend}: fewer packets than the {trips} round trips")
    })?;
    Ok(format!("{backend}: {}", said.join(", ")))
}

pub fn slow_net_rx_packets_on_every_backend() -> Result<Outcome, String> {
    let caps = capabilities::get();
    let mut said = vec![with_backend("tracepoint")?];
    if caps.kprobes {
        said.push(with_backend("kprobe")?);
    }
    if caps.fentry.yes() {
        said.push(with_backend("fentry")?);
    } else {
        said.push(format!("fentry not on this kernel ({})", caps.fentry));
    }
    Ok(Outcome::Pass(said.join("; ")))
}

pub fn starved_ksoftirqd_raises_the_wait() -> Result<Outcome, String> {
    Ok(match starve::compare(Path::new(NETLAT))? {
        Ok(figures) => Outcome::Pass(figures),
        Err(why) => Outcome::Skip(why),
    })
}
