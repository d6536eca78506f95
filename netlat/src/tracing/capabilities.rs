//! What this kernel offers netlat, in one table of checks (the way kunai
//! decides which programs run where). Each check is a real probe: netlat's
//! own programs loaded and attached to a harmless target, a map created, a
//! file read; never a guess from the version number. Backend choice uses
//! the cheap file checks (`backend::choice::kprobe_pmu`,
//! `kernel_btf::kernel_btf_file`) before it
//! tries to load anything.

use std::path::Path;

use aya::{
    maps::MapType,
    sys::{Stats, enable_stats, is_map_supported},
};

use crate::{
    oneline::one_line,
    system::privileges,
    tracing::{
        backend::{
            Backend,
            attach::{self, Globals, Tracer},
            choice::kprobe_pmu,
        },
        kernel_btf::{KernelBtf, VMLINUX, kernel_btf_file},
    },
};

/// A function every kernel with BPF and networking has and nothing calls
/// outside BPF_PROG_TEST_RUN (net/bpf/test_run.c): probing it disturbs
/// nothing. aya's own fentry probe uses it too.
pub const HARMLESS_TARGET: &str = "bpf_fentry_test1";

// The answers are plain data of `netlat info`'s report; how each is
// found is this module's.
pub use crate::model::info::{Answer, Status};

impl Answer {
    fn yes(detail: impl Into<String>) -> Answer {
        Answer {
            status: Status::Yes,
            detail: detail.into(),
        }
    }

    fn no(detail: impl Into<String>) -> Answer {
        Answer {
            status: Status::No,
            detail: detail.into(),
        }
    }

    fn unknown(detail: impl Into<String>) -> Answer {
        Answer {
            status: Status::Unknown,
            detail: detail.into(),
        }
    }

    fn needs_root(what: &str) -> Answer {
        Answer {
            status: Status::NeedsRoot,
            detail: format!("{what} needs root (CAP_BPF and CAP_PERFMON)"),
        }
    }
}

/// A row of the table.
pub struct Check {
    /// Key in `netlat info --json`.
    pub key: &'static str,
    pub name: &'static str,
    probe: fn(&Probed) -> Answer,
}

/// Earlier answers, for checks that build on them (kretprobes on kprobes).
pub struct Probed {
    pub root: bool,
    answers: Vec<(&'static str, Answer)>,
}

impl Probed {
    fn get(&self, key: &str) -> Option<&Answer> {
        self.answers.iter().find(|(k, _)| *k == key).map(|(_, a)| a)
    }
}

/// The checks, in the order they run and print.
pub const CHECKS: &[Check] = &[
    Check {
        key: "btf",
        name: "BTF",
        probe: btf,
    },
    Check {
        key: "kprobes",
        name: "kprobes",
        probe: kprobes,
    },
    Check {
        key: "kretprobe_maxactive",
        name: "kretprobe maxactive",
        probe: kretprobe_maxactive,
    },
    Check {
        key: "fentry",
        name: "fentry/fexit",
        probe: fentry,
    },
    Check {
        key: "tp_btf",
        name: "tp_btf",
        probe: |p| softirq_tracepoints(p, Backend::TpBtf),
    },
    Check {
        key: "raw_tp",
        name: "raw_tp",
        probe: |p| softirq_tracepoints(p, Backend::RawTp),
    },
    Check {
        key: "perf_events",
        name: "perf events",
        probe: perf_events,
    },
    Check {
        key: "ring_buffer",
        name: "ring buffer",
        probe: ring_buffer,
    },
    Check {
        key: "bpf_stats",
        name: "bpf_stats",
        probe: bpf_stats,
    },
    Check {
        key: "link_missed",
        name: "link missed counts",
        probe: link_missed,
    },
];

/// Runs every check on this kernel. Without root, the probes that load
/// programs or create maps answer [`Status::NeedsRoot`], unless a file
/// already settles them.
pub fn probe_all() -> Vec<(&'static Check, Answer)> {
    let mut probed = Probed {
        root: privileges::check().is_ok(),
        answers: Vec::new(),
    };
    let mut out = Vec::new();
    for check in CHECKS {
        let answer = (check.probe)(&probed);
        probed.answers.push((check.key, answer.clone()));
        out.push((check, answer));
    }
    out
}

fn btf(_: &Probed) -> Answer {
    // The magic number is all a probe needs; parsing is the loaders' job.
    match std::fs::read(VMLINUX) {
        Ok(bytes) if bytes.starts_with(&0xeb9f_u16.to_le_bytes()) => {
            Answer::yes(format!("{VMLINUX}, {} KiB", bytes.len() / 1024))
        }
        Ok(_) => Answer::no(format!("{VMLINUX} is not BTF (bad magic)")),
        Err(_) => Answer::no(
            kernel_btf_file()
                .err()
                .unwrap_or_else(|| format!("{VMLINUX} exists but cannot be read")),
        ),
    }
}

/// Loads netlat's own programs for `backend` and attaches them to
/// `function`; dropping the tracer detaches them at once.
fn load_and_attach(function: &str, backend: Backend) -> Result<(), String> {
    Tracer::load_with(function, backend, &Globals::default())
        .and_then(|mut t| t.attach())
        .map_err(|e| e.to_string())
}

fn kprobes(p: &Probed) -> Answer {
    if let Err(why) = kprobe_pmu() {
        return Answer::no(why);
    }
    if !p.root {
        return Answer::needs_root("attaching a kprobe");
    }
    match load_and_attach(HARMLESS_TARGET, Backend::Kprobe) {
        Ok(()) => Answer::yes(format!(
            "netlat's kprobe and kretprobe attached to {HARMLESS_TARGET}"
        )),
        Err(why) => Answer::no(why),
    }
}

fn kretprobe_maxactive(p: &Probed) -> Answer {
    match p.get("kprobes").map(|a| a.status) {
        Some(Status::Yes) => {}
        Some(Status::NeedsRoot) => return Answer::needs_root("attaching a kretprobe"),
        _ => return Answer::no("needs kprobes"),
    }
    // netlat's kretprobes are perf links, which always get the kernel's
    // default maxactive (create_local_trace_kprobe passes 0); a larger one
    // can be set only through tracefs kprobe_events, whose README says so.
    let readme = [
        "/sys/kernel/tracing/README",
        "/sys/kernel/debug/tracing/README",
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok());
    match readme {
        Some(text) if text.contains("r[maxactive]") => Answer::yes(
            "kprobe_events accepts r[MAXACTIVE] (tracefs README); netlat's kretprobes are perf links and get the kernel's default, so returns beyond it go unseen",
        ),
        Some(_) => Answer::no(
            "kprobe_events takes no maxactive here (tracefs README); kretprobes get the kernel's default",
        ),
        None => Answer::unknown(
            "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing), so its README cannot say",
        ),
    }
}

fn fentry(p: &Probed) -> Answer {
    if let Err(why) = kernel_btf_file() {
        return Answer::no(why);
    }
    if !p.root {
        return Answer::needs_root("loading an fentry program");
    }
    match load_and_attach(HARMLESS_TARGET, Backend::Fentry) {
        Ok(()) => Answer::yes(format!(
            "netlat's fentry and fexit attached to {HARMLESS_TARGET}"
        )),
        Err(why) => Answer::no(why),
    }
}

fn softirq_tracepoints(p: &Probed, backend: Backend) -> Answer {
    if backend == Backend::TpBtf
        && let Err(why) = kernel_btf_file()
    {
        return Answer::no(why);
    }
    if !p.root {
        return Answer::needs_root(&format!("loading a {backend} program"));
    }
    match load_and_attach("net_rx_action", backend) {
        Ok(()) => Answer::yes(format!(
            "netlat's {backend} programs attached to irq:softirq_entry/exit"
        )),
        Err(why) => Answer::no(why),
    }
}

fn perf_events(p: &Probed) -> Answer {
    if !p.root {
        return Answer::needs_root("opening a sampling perf event");
    }
    let cpu = match aya::util::online_cpus() {
        Ok(cpus) => cpus.first().copied().unwrap_or(0),
        Err((path, e)) => return Answer::unknown(format!("cannot read {path}: {e}")),
    };
    let sampled = attach::load_object(&Globals::default(), None)
        .map_err(|e| e.to_string())
        .and_then(|mut ebpf| {
            super::session::attach_sampler(&mut ebpf, 1, &[cpu]).map_err(|e| format!("{e:#}"))
        });
    match sampled {
        Ok(()) => Answer::yes(format!(
            "netlat's stack sampler attached to a software cpu-clock event on CPU {cpu}"
        )),
        Err(why) => Answer::no(why),
    }
}

fn ring_buffer(p: &Probed) -> Answer {
    if !p.root {
        return Answer::needs_root("creating a BPF map");
    }
    match is_map_supported(MapType::RingBuf) {
        Ok(true) => Answer::yes("a BPF_MAP_TYPE_RINGBUF map was created"),
        Ok(false) => Answer::no("the kernel does not know BPF_MAP_TYPE_RINGBUF"),
        Err(e) => Answer::no(format!("creating a ring buffer failed: {}", one_line(&e))),
    }
}

fn bpf_stats(p: &Probed) -> Answer {
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .map(|s| format!("kernel.bpf_stats_enabled = {}", s.trim()))
        .unwrap_or_else(|_| "no kernel.bpf_stats_enabled sysctl".to_owned());
    if !p.root {
        return Answer::needs_root("BPF_ENABLE_STATS");
    }
    // The returned descriptor keeps run-time stats on until it is closed,
    // here at once (and by the kernel if netlat dies first).
    match enable_stats(Stats::RunTime) {
        Ok(_fd) => Answer::yes(format!(
            "BPF_ENABLE_STATS accepted (per-program run time and count); {sysctl}"
        )),
        Err(e) => Answer::no(format!(
            "BPF_ENABLE_STATS refused: {}; {sysctl}",
            one_line(&e)
        )),
    }
}

/// Since Linux 6.7 a kprobe perf link reports how many hits its program
/// missed (`bpf_link_info.perf_event.kprobe.missed`); the running kernel's
/// own BTF says whether its `struct bpf_link_info` has that field.
fn link_missed(p: &Probed) -> Answer {
    let field = "perf_event.kprobe.missed";
    let has_field = KernelBtf::open(Path::new(VMLINUX))
        .and_then(|btf| btf.member("bpf_link_info", field).map(drop));
    match (has_field, p.get("kprobes").map(|a| a.status)) {
        (Err(why), _) => Answer::no(format!(
            "this kernel's struct bpf_link_info has no {field} ({why})"
        )),
        (Ok(()), Some(Status::Yes)) => Answer::yes(format!(
            "struct bpf_link_info has {field} (kernel BTF), and kprobes attach"
        )),
        (Ok(()), Some(Status::NeedsRoot)) => Answer::needs_root("attaching a kprobe"),
        (Ok(()), _) => Answer::no(format!(
            "struct bpf_link_info has {field} (kernel BTF), but this kernel has no kprobes"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_capability_netlat_reports() {
        let keys: Vec<&str> = CHECKS.iter().map(|c| c.key).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
        for key in [
            "kprobes",
            "kretprobe_maxactive",
            "fentry",
            "tp_btf",
            "raw_tp",
            "perf_events",
            "btf",
            "ring_buffer",
            "bpf_stats",
            "link_missed",
        ] {
            assert!(keys.contains(&key), "no check {key}");
        }
        // Checks that build on kprobes' answer run after it.
        let at = |k: &str| keys.iter().position(|x| *x == k).unwrap();
        assert!(at("kprobes") < at("kretprobe_maxactive"));
        assert!(at("kprobes") < at("link_missed"));
    }

    #[test]
    fn kretprobes_follow_the_kprobe_answer() {
        let probed = |status| Probed {
            root: true,
            answers: vec![(
                "kprobes",
                Answer {
                    status,
                    detail: String::new(),
                },
            )],
        };
        let no = kretprobe_maxactive(&probed(Status::No));
        assert_eq!(
            (no.status, no.detail.as_str()),
            (Status::No, "needs kprobes")
        );
        assert_eq!(
            kretprobe_maxactive(&probed(Status::NeedsRoot)).status,
            Status::NeedsRoot
        );
    }
}
