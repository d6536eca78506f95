//! `netlat info` in a kernel that has kprobes: it must say so, and its
//! backend pick for each function must be the one `histogram` then makes
//! (tcp_collapse: fentry from Linux 6.5, kprobe before, where the
//! trampoline refuses its 7 arguments).

use std::path::Path;

use netlat_testkit::netlat::run;

use crate::{
    NETLAT,
    verdict::{Outcome, check, json},
};

pub fn info_agrees_with_histogram() -> Result<Outcome, String> {
    let out = run(Path::new(NETLAT), &["info", "--json"]);
    check(out.success, || {
        format!("netlat info failed: {}", out.stderr)
    })?;
    let info = json(&out.stdout)?;
    let status = |key: &str| {
        info["capabilities"][key]["status"]
            .as_str()
            .unwrap_or("?")
            .to_owned()
    };
    check(status("kprobes") == "yes", || {
        format!("kprobes: {}", info["capabilities"]["kprobes"])
    })?;
    check(status("btf") == "yes", || {
        format!("btf: {}", info["capabilities"]["btf"])
    })?;
    let mut figures = Vec::new();
    for function in ["net_rx_action", "tcp_collapse"] {
        let picked = &info["backends"][function];
        check(picked["status"] == "yes", || {
            format!("{function}: {picked}")
        })?;
        let traced = run(Path::new(NETLAT), &["histogram", function, "0.3", "--json"]);
        check(traced.success, || {
            format!("histogram {function} failed: {}", traced.stderr)
        })?;
        let report = json(&traced.stdout)?;
        check(picked["backend"] == report["backend"], || {
            format!(
                "info picked {} for {function}, histogram used {}",
                picked["backend"], report["backend"]
            )
        })?;
        figures.push(format!("{function}={}", report["backend"]));
    }
    for key in [
        "fentry",
        "kretprobe_maxactive",
        "link_missed",
        "ring_buffer",
        "bpf_stats",
    ] {
        figures.push(format!("{key}={}", status(key)));
    }
    Ok(Outcome::Pass(figures.join(" ")))
}
