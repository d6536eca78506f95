//! The checklist of Linkerd's network-performance notes (and the
//! receive-buffer story of "The story of one latency spike") as pure
//! functions from two samples to verdicts, each with the numbers behind it.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use super::sample::{Fact, Sample};
use crate::system::procfs::netstat::NetCounters;

mod connections;
mod interfaces;
mod irq_spread;
mod listen_queues;
mod receive_buffers;
mod retransmits;
mod softnet;
mod softnet_wait;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Warn,
    Problem,
    /// The inputs could not be read; the summary says why.
    Unavailable,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When the window ended (RFC 3339), set by the command, not by
    /// [`evaluate`], which stays a pure function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    pub window_secs: f64,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == verdict).count()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name for machines: softnet, listen_queues, receive_buffers,
    /// retransmits, irq_spread, connections, interfaces.
    pub id: String,
    pub title: String,
    pub verdict: Verdict,
    /// What was found, in plain words ("unavailable: why" when unreadable).
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// Tuning or next steps, as the published checklists suggest them.
    pub suggestions: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub name: String,
    #[serde(flatten)]
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Value {
    /// Growth of a counter over the window.
    Rate {
        delta: u64,
        per_sec: f64,
    },
    /// A number read at the end of the window.
    Count {
        value: u64,
    },
    /// A sysctl; `None` when this kernel does not have it.
    Setting {
        value: Option<String>,
    },
    Percent {
        value: f64,
    },
    /// How long raised softirqs waited over the window.
    Wait {
        p99_ns: u64,
        max_ns: u64,
        count: u64,
        /// The waits summed.
        total_ns: u64,
    },
    /// A counter this kernel does not have, or a source that failed.
    Absent {
        why: String,
    },
}

/// Budget squeezes per second below which a CPU is merely busy.
pub const SQUEEZE_WARN_PER_SEC: f64 = 1.0;
/// Retransmitted share of sent segments that is a problem, once at least
/// [`RETRANS_MIN_SEGMENTS`] were sent (fewer say little).
pub const RETRANS_PROBLEM_RATIO: f64 = 0.01;
pub const RETRANS_MIN_SEGMENTS: u64 = 1000;
/// TIME_WAIT sockets on one port that point at missing connection reuse.
pub const TIME_WAIT_WARN: u64 = 1000;
/// Share of a device's interrupts on one CPU that counts as "all on one".
pub const IRQ_ONE_CPU_SHARE: f64 = 0.9;
/// Interrupts over the window below which their spread means nothing.
pub const IRQ_MIN_COUNT: u64 = 100;

/// Compares `before` and `after`, taken `window` apart.
pub fn evaluate(before: &Sample, after: &Sample, window: Duration) -> Report {
    let secs = window.as_secs_f64().max(1e-9);
    let ctx = Ctx {
        before,
        after,
        secs,
    };
    let mut checks = vec![
        ctx.softnet(),
        ctx.listen_queues(),
        ctx.receive_buffers(),
        ctx.retransmits(),
        ctx.irq_spread(),
        ctx.connections(),
        ctx.interfaces(),
    ];
    tie_time_wait_to_syn_drops(&mut checks);
    Report {
        at: None,
        window_secs: window.as_secs_f64(),
        checks,
    }
}

struct Ctx<'a> {
    before: &'a Sample,
    after: &'a Sample,
    secs: f64,
}

fn rate(name: impl Into<String>, delta: u64, secs: f64) -> Evidence {
    Evidence {
        name: name.into(),
        value: Value::Rate {
            delta,
            per_sec: delta as f64 / secs,
        },
    }
}

fn count(name: impl Into<String>, value: u64) -> Evidence {
    Evidence {
        name: name.into(),
        value: Value::Count { value },
    }
}

fn absent(name: impl Into<String>, why: impl Into<String>) -> Evidence {
    Evidence {
        name: name.into(),
        value: Value::Absent { why: why.into() },
    }
}

fn unavailable(id: &str, title: &str, why: &str) -> Check {
    Check {
        id: id.into(),
        title: title.into(),
        verdict: Verdict::Unavailable,
        summary: format!("unavailable: {why}"),
        evidence: Vec::new(),
        suggestions: Vec::new(),
    }
}

/// Counter growth from two readings of the same file.
fn counter_delta(
    before: &Fact<NetCounters>,
    after: &Fact<NetCounters>,
) -> Result<NetCounters, String> {
    match (before, after) {
        (Ok(b), Ok(a)) => Ok(b.delta(a)),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    }
}

impl Ctx<'_> {
    fn setting(&self, key: &str) -> Evidence {
        let value = match self.after.sysctls.get(key) {
            Some(Ok(v)) => Value::Setting { value: v.clone() },
            Some(Err(why)) => Value::Absent { why: why.clone() },
            None => Value::Absent {
                why: "not read".into(),
            },
        };
        Evidence {
            name: key.into(),
            value,
        }
    }

    fn setting_u64(&self, key: &str) -> Option<u64> {
        self.after
            .sysctls
            .get(key)?
            .as_ref()
            .ok()?
            .as_ref()?
            .parse()
            .ok()
    }

    /// Growth of `names` in `group`, with evidence; counters this kernel
    /// lacks are shown as absent and count as 0.
    fn counters(
        &self,
        delta: &NetCounters,
        group: &str,
        names: &[&str],
        evidence: &mut Vec<Evidence>,
    ) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for &name in names {
            match delta.get(group, name) {
                Some(d) => {
                    evidence.push(rate(name, d, self.secs));
                    out.insert(name.to_owned(), d);
                }
                None => evidence.push(absent(name, format!("no {group} {name} on this kernel"))),
            }
        }
        out
    }
}

/// The suggestions that run netlat on `function`, for a kernel where it
/// cannot be timed: what that would need instead, and the tuning to try by
/// hand.
pub fn without_tracing(report: &mut Report, function: &str, why: &str) {
    let histogram = format!("netlat histogram {function}");
    let experiment = format!("netlat experiment {function}");
    for check in &mut report.checks {
        for s in &mut check.suggestions {
            if s.contains(&histogram) {
                *s = format!(
                    "netlat cannot time {function} on this kernel ({why}): that needs a kernel with kprobes (CONFIG_KPROBES=y) or fentry (BTF and BPF trampolines, CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y, as Debian's cloud kernels have); the counters above still show how often it ran"
                );
            } else if let Some(at) = s.find(&experiment) {
                let sysctl = s[at..]
                    .split_once("--sysctl ")
                    .map(|(_, kv)| kv.to_owned())
                    .unwrap_or_default();
                *s = format!(
                    "{}by hand, since netlat cannot time {function} here: sysctl -w {sysctl}, then netlat doctor --watch 5 to see whether the counters calm down",
                    &s[..at]
                );
            }
        }
    }
}

fn plural_s(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Linkerd's network-performance notes: many TIME_WAIT sockets together with dropped SYNs tell that
/// connection pooling is not used.
fn tie_time_wait_to_syn_drops(checks: &mut [Check]) {
    let drops = checks
        .iter()
        .any(|c| c.id == "listen_queues" && c.verdict == Verdict::Problem);
    if let Some(c) = checks.iter_mut().find(|c| c.id == "connections")
        && drops
        && c.verdict == Verdict::Warn
    {
        c.verdict = Verdict::Problem;
        c.summary.push_str(
            "; together with the SYN/accept-queue drops, connections are not being pooled",
        );
    }
}

#[cfg(test)]
mod tests;
