//! The perf_event sampler: attach on every CPU, read the stacks back.

use anyhow::{Context as _, Result};
use aya::{
    Ebpf,
    maps::{PerCpuArray, PerCpuHashMap, StackTraceMap},
    programs::{
        PerfEvent,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
use netlat_common::{SAMPLE_STATS_MAP, STACK_COUNTS_MAP, STACKS_MAP, SampleStats};

use super::fold::Stack;

const PROGRAM: &str = "netlat_sample";

/// Samples every online CPU at `hz` with the software cpu-clock, which works
/// in VMs without a hardware PMU.
pub fn attach(ebpf: &mut Ebpf, hz: u64, cpus: &[u32]) -> Result<()> {
    let program: &mut PerfEvent = ebpf
        .program_mut(PROGRAM)
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

pub fn detach(ebpf: &mut Ebpf) -> Result<()> {
    if let Some(program) = ebpf.program_mut(PROGRAM) {
        let program: &mut PerfEvent = program.try_into()?;
        program.unload().context("cannot detach the sampler")?;
    }
    Ok(())
}

/// What happened to the samples, summed over CPUs (the kernel's per-CPU
/// counters, same fields).
pub type Tally = SampleStats;

pub fn read(ebpf: &Ebpf) -> Result<(Vec<Stack>, Tally)> {
    let counts: PerCpuHashMap<_, u32, u64> = PerCpuHashMap::try_from(
        ebpf.map(STACK_COUNTS_MAP)
            .context("stack count map missing")?,
    )?;
    let traces = StackTraceMap::try_from(ebpf.map(STACKS_MAP).context("stack map missing")?)?;
    let mut stacks = Vec::new();
    let mut lost_traces = 0;
    for entry in counts.iter() {
        let (id, per_cpu) = entry.context("cannot read the stack counts")?;
        let count = per_cpu.iter().sum();
        match traces.get(&id, 0) {
            Ok(trace) => stacks.push(Stack {
                frames: trace.frames().iter().map(|f| f.ip).collect(),
                count,
            }),
            // A stack id whose trace was evicted (hash collision, map full).
            Err(_) => lost_traces += count,
        }
    }
    let stats: PerCpuArray<_, SampleStats> = PerCpuArray::try_from(
        ebpf.map(SAMPLE_STATS_MAP)
            .context("sample stats map missing")?,
    )?;
    let mut tally = Tally::default();
    for s in stats
        .get(&0, 0)
        .context("cannot read the sample stats")?
        .iter()
    {
        tally.add(s);
    }
    tally.kept -= lost_traces.min(tally.kept);
    tally.lost_stack += lost_traces;
    Ok((stacks, tally))
}
