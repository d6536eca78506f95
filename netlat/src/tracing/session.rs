//! Attaching, in one place: which backend times a function (and why the
//! better ones were skipped), the first line that says so, and the programs
//! that ride beside the timing pair (interrupt context, NET_RX, the stack
//! sampler). Commands go through these `Tracer` methods, so the loaded
//! object stays private to `tracing`.

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf,
    programs::{
        PerfEvent, RawTracePoint,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};

use super::{
    backend::{
        Backend,
        attach::{self, Globals, Tracer},
        choice::{self, BackendChoice},
    },
    group_by::{self, GroupBy},
    net_rx,
};
use crate::system::kallsyms::{self, Lookup};

/// The flame graph sampler's perf_event program.
const SAMPLER: &str = netlat_common::names::programs::SAMPLE;

/// Attaches the best backend the user allows for `function`. kallsyms is
/// consulted only when that fails: it turns "the kernel refused" into
/// "no such function, did you mean ..." and keeps it (a 10 MB read) off the
/// start-up path of every successful run.
pub fn attach_traced(
    function: &str,
    choice: BackendChoice,
    globals: &Globals,
) -> Result<(Tracer, Vec<(Backend, String)>)> {
    kallsyms::function_name(function).map_err(anyhow::Error::msg)?;
    let mut candidates = choice::candidates(choice, function).map_err(anyhow::Error::msg)?;
    if globals.rcvbuf_offset.is_some() {
        candidates = group_by::argument_backends(GroupBy::Rcvbuf, &candidates)
            .map_err(anyhow::Error::msg)?;
    }
    match attach::attach_first(function, &candidates, globals) {
        Ok(attached) => Ok(attached),
        Err(e) => {
            check_function(function)?;
            Err(e.into())
        }
    }
}

/// The first line on stderr: what is traced, how, for how long, and why
/// any better backend was skipped.
pub fn announce(
    what: &str,
    function: &str,
    tracer: &Tracer,
    skipped: &[(Backend, String)],
    seconds: Option<std::time::Duration>,
) {
    let how_long = match seconds {
        Some(d) => format!("for {}", humantime::format_duration(d)),
        None => "until Ctrl-C".to_owned(),
    };
    let fallback = if skipped.is_empty() {
        String::new()
    } else {
        let why: Vec<String> = skipped.iter().map(|(b, w)| format!("{b}: {w}")).collect();
        format!(" (skipped {})", why.join("; "))
    };
    // Not eprintln: with stderr on a full device it panics, and a run that
    // cannot say it started can still trace.
    let _ = writeln!(
        std::io::stderr(),
        "netlat: tracing {what} with {}{fallback} {how_long}",
        tracer.backend().detail(function)
    );
}

/// Fails with a one-line reason unless kallsyms knows `function` as code.
fn check_function(function: &str) -> Result<()> {
    // Without kallsyms the kernel's own refusal decides.
    let Ok(file) = std::fs::File::open("/proc/kallsyms") else {
        return Ok(());
    };
    match kallsyms::lookup(std::io::BufReader::new(file), function) {
        Lookup::Function => Ok(()),
        Lookup::NotAFunction(ty) => {
            bail!("{function} is a kernel symbol of type '{ty}' in /proc/kallsyms, not a function")
        }
        Lookup::Unknown { suggestions } if suggestions.is_empty() => {
            bail!("unknown kernel function {function} (not in /proc/kallsyms)")
        }
        Lookup::Unknown { suggestions } => bail!(
            "unknown kernel function {function} (not in /proc/kallsyms); did you mean {}?",
            suggestions.join(", ")
        ),
    }
}

impl Tracer {
    /// A function backend cannot tell softirq from task by itself: attach
    /// the context programs beside it. The softirq backends know (always
    /// NET_RX).
    pub fn attach_context_programs(&mut self) -> Result<()> {
        if self.backend().times_softirq() {
            return Ok(());
        }
        attach_context_programs(&mut self.ebpf)
    }

    /// The NET_RX programs (`tracing::net_rx`); they come off with the object.
    pub fn attach_net_rx(&mut self) -> Result<()> {
        net_rx::attach(&mut self.ebpf)
    }

    /// Detaches the NET_RX programs, so the figures read afterwards are final.
    pub fn detach_net_rx(&mut self) -> Result<()> {
        net_rx::detach(&mut self.ebpf)
    }

    /// The stack sampler beside the timing programs (see [`attach_sampler`]).
    pub fn attach_sampler(&mut self, hz: u64, cpus: &[u32]) -> Result<()> {
        attach_sampler(&mut self.ebpf, hz, cpus)
    }

    pub fn detach_sampler(&mut self) -> Result<()> {
        detach_sampler(&mut self.ebpf)
    }

    /// Empties the sampler's maps while it runs (`flamegraph::sampler::reset`).
    pub fn reset_sampler(&mut self) -> Result<()> {
        crate::flamegraph::sampler::reset(&mut self.ebpf)
    }
}

/// `(program, tracepoint)`: which interrupt context each CPU is in.
const CONTEXT_PROGRAMS: [(&str, &str); 4] = [
    (
        netlat_common::names::programs::CTX_SOFTIRQ_ENTRY,
        "softirq_entry",
    ),
    (
        netlat_common::names::programs::CTX_SOFTIRQ_EXIT,
        "softirq_exit",
    ),
    (
        netlat_common::names::programs::CTX_IRQ_ENTRY,
        "irq_handler_entry",
    ),
    (
        netlat_common::names::programs::CTX_IRQ_EXIT,
        "irq_handler_exit",
    ),
];

fn attach_context_programs(ebpf: &mut Ebpf) -> Result<()> {
    for (name, tracepoint) in CONTEXT_PROGRAMS {
        let program: &mut RawTracePoint = ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing from the eBPF object"))?
            .try_into()?;
        program
            .load()
            .with_context(|| format!("the kernel refused {name}"))?;
        program
            .attach(tracepoint)
            .with_context(|| format!("cannot attach to the {tracepoint} tracepoint"))?;
    }
    Ok(())
}

/// Samples every online CPU at `hz` with the software cpu-clock, which works
/// in VMs without a hardware PMU.
pub fn attach_sampler(ebpf: &mut Ebpf, hz: u64, cpus: &[u32]) -> Result<()> {
    let program: &mut PerfEvent = ebpf
        .program_mut(SAMPLER)
        .context("sampler program missing from the eBPF object")?
        .try_into()?;
    program
        .load()
        .context("the kernel refused the stack sampler")?;
    for &cpu in cpus {
        program
            .attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu },
                SamplePolicy::Frequency(hz),
                false,
            )
            .with_context(|| format!("cannot sample CPU {cpu} (perf_event_open)"))?;
    }
    Ok(())
}

/// Unloads the sampler; its maps stay readable.
pub fn detach_sampler(ebpf: &mut Ebpf) -> Result<()> {
    if let Some(program) = ebpf.program_mut(SAMPLER) {
        let program: &mut PerfEvent = program.try_into()?;
        program.unload().context("cannot detach the sampler")?;
    }
    Ok(())
}
