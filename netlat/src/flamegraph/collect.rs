//! `netlat flamegraph`'s sampling: the sampler attached alone, or beside
//! the timing programs of `--during`, and what both left in their maps.
//! Waiting for the window's end is the command's (Ctrl-C, progress).

use std::time::Duration;

use anyhow::{Context as _, Result};
use aya::Ebpf;
use netlat_common::sample_filter;

use super::sampler::{self, Samples};
use crate::{
    model::histogram::Histogram,
    system::kallsyms::Symbols,
    tracing::backend::attach::{self, Globals, Tracer},
    tracing::backend::choice::BackendChoice,
    tracing::collect::Collector,
    tracing::session,
};

/// What to sample.
pub struct Plan<'a> {
    /// `--during`: keep only samples taken while it runs.
    pub during: Option<&'a str>,
    /// `--slower-than`: of those, only the slow calls' are drawn.
    pub slower_than: Option<Duration>,
    /// How to time `during`.
    pub backend: BackendChoice,
    /// Samples per second on each CPU.
    pub hz: u64,
}

/// The object the sampler lives in: alone, or beside the timing programs.
enum Probes {
    Plain(Ebpf),
    During(Tracer),
}

/// The sampler, attached and sampling.
pub struct Sampling {
    probes: Probes,
    symbols: Symbols,
}

/// What the window left, read after everything detached.
pub struct Collected {
    pub samples: Samples,
    /// `--during`'s calls, merged over CPUs.
    pub calls: Option<Histogram>,
    /// Whether the backend times `--during` as the NET_RX softirq (the
    /// fold then re-roots softirq samples outside it).
    pub softirq: bool,
    /// The kernel's symbols as they were while netlat's programs ran.
    pub symbols: Symbols,
}

impl Sampling {
    pub fn attach(plan: &Plan, cpus: &[u32]) -> Result<Sampling> {
        let mut probes = load(plan)?;
        match &mut probes {
            Probes::Plain(e) => session::attach_sampler(e, plan.hz, cpus)?,
            Probes::During(t) => t.attach_sampler(plan.hz, cpus)?,
        }
        // Read while netlat's programs are loaded, so their JIT-ed frames
        // have names (kallsyms drops them at unload).
        let symbols =
            Symbols::read().context("cannot read /proc/kallsyms to name the stack frames")?;
        Ok(Sampling { probes, symbols })
    }

    /// How `function` is timed, for `--during`.
    pub fn timed_with(&self, function: &str) -> Option<String> {
        match &self.probes {
            Probes::During(t) => Some(t.backend().detail(function)),
            Probes::Plain(_) => None,
        }
    }

    /// Detaches everything before reading: the maps are then final.
    pub fn finish(mut self) -> Result<Collected> {
        match &mut self.probes {
            Probes::Plain(e) => session::detach_sampler(e)?,
            Probes::During(t) => t.detach_sampler()?,
        }
        let (calls, softirq) = match &mut self.probes {
            Probes::During(t) => {
                t.detach()?;
                let softirq = t.backend().times_softirq();
                (
                    Some(Histogram::merged(&Collector::new().read(t)?.per_cpu)),
                    softirq,
                )
            }
            Probes::Plain(_) => (None, false),
        };
        let ebpf = match &self.probes {
            Probes::Plain(e) => e,
            Probes::During(t) => t.ebpf(),
        };
        Ok(Collected {
            samples: sampler::read(ebpf)?,
            calls,
            softirq,
            symbols: self.symbols,
        })
    }
}

fn load(plan: &Plan) -> Result<Probes> {
    let Some(function) = plan.during else {
        let globals = Globals {
            sampling: true,
            ..Globals::default()
        };
        return Ok(Probes::Plain(attach::load_object(&globals, None)?));
    };
    let globals = Globals {
        sample_filter: sample_filter::DURING,
        slower_than_ns: plan.slower_than.map_or(0, |d| d.as_nanos() as u64),
        sampling: true,
        ..Globals::default()
    };
    let (tracer, _skipped) = session::attach_traced(function, plan.backend, &globals)?;
    Ok(Probes::During(tracer))
}
