//! `netlat slow FUNCTION THRESHOLD [SECONDS]`: a line for every call that
//! lasted at least THRESHOLD, as it happens, with when, where and for whom;
//! the kernel's own counts at the end.

use std::{
    io::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use netlat_common::SockOffsets;

mod printer;

use printer::Printer;

use super::{
    request::{self, Target},
    stop::{self, Stop, Woke},
};
use crate::{
    model::slow_call::Clock,
    render::slow::{self as render, Totals},
    system::kallsyms::{self, Symbols},
    tracing::net_rx,
    tracing::{
        backend::attach::{Globals, SlowSettings},
        collect::Collector,
        kernel_btf::VMLINUX,
        slow_records::{self, Records},
        sock_fields::SocketArg,
    },
};

#[derive(clap::Args, Debug, Clone)]
#[command(mut_arg("backend", |a| a.help("How to time the function (as for histogram)")))]
pub struct SlowArgs {
    #[command(flatten)]
    pub target: Target,
    /// Print every call that lasted at least this long: a duration with a
    /// unit (2ms, 500us, 100ns, 1s), or 0 for every call.
    #[arg(value_parser = crate::model::duration::parse_threshold)]
    pub threshold: Duration,
    /// How long to trace: seconds (30, 2.5) or with a unit (500ms, 2m).
    /// Without it, trace until Ctrl-C.
    #[arg(value_parser = crate::model::duration::parse, allow_negative_numbers = true)]
    pub seconds: Option<Duration>,
    /// Only calls that ended on this CPU.
    #[arg(long, value_name = "N")]
    pub cpu: Option<u32>,
    /// Print the kernel stack at each slow call's entry under its line.
    #[arg(long)]
    pub stack: bool,
    /// Require the socket fields (addresses, ports, rcvbuf, rmem): fail
    /// unless the function's first argument is a struct sock *. Without it
    /// they are printed whenever it is one.
    #[arg(long)]
    pub socket: bool,
    /// One JSON object per line (NDJSON), durations in nanoseconds.
    #[arg(long)]
    pub json: bool,
    /// Times in UTC instead of the host's local time.
    #[arg(long)]
    pub utc: bool,
    /// Size of the kernel's record buffer, MiB (a power of two, at most
    /// 256). netlat maps it twice over, so it costs up to twice that in
    /// memory. Records that find it full are counted as lost, never
    /// silently dropped.
    #[arg(long, value_name = "MIB", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub buffer: u32,
}

/// The largest `--buffer`: 16x the default, ~2 M records of headroom.
const MAX_BUFFER_MIB: u32 = 256;

pub fn run(args: &SlowArgs) -> Result<()> {
    request::require_privileges()?;
    if args.buffer > MAX_BUFFER_MIB {
        bail!(
            "--buffer {}: at most {MAX_BUFFER_MIB} MiB (netlat maps the buffer twice over, so N MiB cost up to 2N MiB of memory); a higher threshold keeps fewer records",
            args.buffer
        );
    }
    if !args.buffer.is_power_of_two() {
        bail!(
            "--buffer {}: the kernel's ring buffers are a power of two in size; try {}",
            args.buffer,
            args.buffer.next_power_of_two()
        );
    }
    let online = request::online_cpus()?;
    if let Some(cpu) = args.cpu
        && !online.contains(&cpu)
    {
        bail!("--cpu {cpu}: no such online CPU");
    }
    let (sock, note) = socket_offsets(args)?;
    // Refuse before attaching if kallsyms hides addresses; the names are
    // read again once netlat's programs are loaded, so their JIT frames
    // (`[bpf]` entries) are named and left out of the stacks.
    if args.stack && kallsyms_hides_addresses() {
        bail!("{KPTR_RESTRICTED}");
    }
    stop::runtime()?.block_on(async {
        let mut stop = Stop::install()?;
        trace(args, sock, note, &mut stop).await
    })
}

/// The socket fields for the function's first argument, or why not: a
/// note to print once the function is known to be traceable.
fn socket_offsets(args: &SlowArgs) -> Result<(SockOffsets, Option<String>)> {
    // net_rx_action never takes a socket: no need to parse BTF for it.
    if args.target.function == "net_rx_action" && !args.socket {
        return Ok((SockOffsets::NONE, None));
    }
    match SocketArg::find(&args.target.function, Path::new(VMLINUX)) {
        SocketArg::Socket(o) => Ok((o, None)),
        SocketArg::NotASocket(ty) if args.socket => bail!(
            "--socket needs a function whose first argument is a struct sock *, and {}'s is {ty} (try tcp_collapse or tcp_sendmsg)",
            args.target.function
        ),
        SocketArg::Unknown(why) if args.socket => {
            bail!(
                "--socket: cannot tell what {}'s first argument is: {why}",
                args.target.function
            )
        }
        SocketArg::NotASocket(_) => Ok((SockOffsets::NONE, None)),
        SocketArg::Unknown(why) => Ok((
            SockOffsets::NONE,
            Some(format!(
                "no socket fields for {}: {why}",
                args.target.function
            )),
        )),
    }
}

/// Entry stacks are named from /proc/kallsyms, which hides addresses from
/// those the kernel does not trust (kernel.kptr_restrict).
fn stack_symbols() -> Result<Symbols> {
    let symbols =
        Symbols::read().context("--stack: cannot read /proc/kallsyms to name the stack frames")?;
    if symbols.is_empty() {
        bail!("{KPTR_RESTRICTED}");
    }
    Ok(symbols)
}

const KPTR_RESTRICTED: &str = "--stack: /proc/kallsyms shows no kernel addresses here (kernel.kptr_restrict hides them), so stacks cannot be named; run as root with kernel.kptr_restrict=0 or 1";

/// Whether kallsyms hides addresses; the whole file (~10 MB) is parsed
/// once, after attaching.
fn kallsyms_hides_addresses() -> bool {
    std::fs::File::open("/proc/kallsyms")
        .is_ok_and(|f| kallsyms::hides_addresses(std::io::BufReader::new(f)))
}

/// How long the printer works through the buffer before it looks for a
/// stop again.
const SLICE: Duration = Duration::from_millis(20);

/// After Ctrl-C or SIGTERM (the programs already detached), how long the
/// records still in the buffer are printed before the rest is dropped and
/// counted: a stop must not wait on a full buffer.
const STOP_GRACE: Duration = Duration::from_millis(100);

/// Records taken from the buffer at a time.
const BATCH: usize = 1024;

/// Why the tracing loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Time,
    Signal,
    /// stdout failed (a closed pipe, a full disk): nothing more can be printed.
    Output,
}

async fn trace(
    args: &SlowArgs,
    sock: SockOffsets,
    note: Option<String>,
    stop: &mut Stop,
) -> Result<()> {
    let threshold_ns = u64::try_from(args.threshold.as_nanos()).unwrap_or(u64::MAX);
    let globals = Globals {
        slow: Some(SlowSettings {
            threshold_ns,
            stacks: args.stack,
            sock,
            ring_bytes: args.buffer << 20,
            records_per_second: 0,
        }),
        // Each net_rx_action record says what its call did: load or pathology.
        net_rx: (args.target.function == net_rx::NET_RX_ACTION)
            .then(|| net_rx::NetRxSettings::for_this_host(true)),
        ..Globals::default()
    };
    let (mut tracer, skipped) = crate::tracing::session::attach_traced(
        &args.target.function,
        args.target.backend(),
        &globals,
    )?;
    tracer.attach_context_programs()?;
    if globals.net_rx.is_some() {
        tracer.attach_net_rx()?;
    }
    let mut records = Records::open(&mut tracer, args.stack)?;
    let symbols = args.stack.then(stack_symbols).transpose()?;
    let symbols = symbols.as_ref();
    let clock = Clock::now();
    // Said only once the function is known to be traceable, so an error
    // is the one line it should be.
    if let Some(note) = note {
        let _ = writeln!(std::io::stderr(), "netlat: {note}");
    }
    crate::tracing::session::announce(
        &format!(
            "{} calls >= {}",
            args.target.function,
            render::duration(threshold_ns)
        ),
        &args.target.function,
        &tracer,
        &skipped,
        args.seconds,
    );
    let mut printer = Printer::new(args, clock, symbols);
    let deadline = args.seconds.map(|d| Instant::now() + d);
    // Printing is slower than the kernel can fill the buffer (stacks
    // above all), so each pass is bounded in time and a stop is looked
    // for between passes, not after the buffer runs dry.
    let mut more = false;
    let end = loop {
        let woke = if more {
            stop.due(deadline).await
        } else {
            tokio::select! {
                biased;
                woke = stop.until(deadline) => Some(woke),
                ready = records.readable() => {
                    ready.context("cannot wait for records")?;
                    None
                }
                // A safety net for a missed wake-up; records are never
                // older than this when printed.
                () = tokio::time::sleep(Duration::from_millis(200)) => None,
            }
        };
        match woke {
            Some(Woke::Time) => break End::Time,
            Some(Woke::Signal) => break End::Signal,
            None => {}
        }
        more = printer.drain(&mut records, Instant::now() + SLICE)?;
        if printer.failed.is_some() {
            break End::Output;
        }
    };
    // The kernel's missed counts live on the links: read them before the
    // links go. Then detach: nothing writes any more, and the kernel's
    // counts are final.
    let missed = crate::tracing::missed::read(&tracer)
        .map_err(|e| {
            let _ = writeln!(
                std::io::stderr(),
                "netlat: cannot read the kernel's missed counts: {e}"
            );
        })
        .ok();
    tracer.detach()?;
    printer.finish(&mut records, end, stop).await?;
    let (printed, failed) = (printer.printed, printer.failed);

    let per_cpu = Collector::new().read(&tracer)?.per_cpu;
    let stats = slow_records::kernel_stats(&tracer)?;
    let selected = |cpu: usize| args.cpu.is_none_or(|c| c as usize == cpu);
    let mut totals = Totals {
        printed,
        unprinted_why: if failed.is_some() {
            "stdout failed"
        } else {
            "stopped before they could be printed"
        },
        missed_runs: missed.and_then(|m| m.program_runs.count()),
        missed_hits: missed.and_then(|m| m.kprobe_hits.and_then(|h| h.count())),
        ..Totals::default()
    };
    for (cpu, h) in per_cpu.iter().enumerate().filter(|(c, _)| selected(*c)) {
        totals.timed += h.count;
        if let Some(s) = stats.get(cpu) {
            totals.over += s.over;
            totals.lost += s.lost;
            totals.lost_stacks += s.lost_stacks;
        }
    }
    // The kernel's counts are final: every record it submitted and netlat
    // did not print was left in the buffer or could not be written.
    // Counted so, not read out, which would take ~1 us a record.
    totals.unprinted = (totals.over - totals.lost).saturating_sub(printed);
    // stderr, whatever became of stdout: the kernel's counts are the one
    // thing a run that could not print must still say.
    let _ = writeln!(
        std::io::stderr(),
        "{}",
        render::summary(&args.target.function, threshold_ns, &totals)
    );
    match failed {
        Some(e) => Err(anyhow::Error::new(e).context("cannot write a record")),
        None => Ok(()),
    }
}
