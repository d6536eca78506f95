//! Command-line arguments, their checks, and turning every failure into one
//! line on stderr with a non-zero exit.

use std::{
    io::{self, Write as _},
    process::ExitCode,
};

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::{VERSION, commands, doctor};

#[derive(Parser, Debug)]
#[command(
    name = "netlat",
    version = VERSION,
    about = "Kernel function latency histograms and network latency checks, with eBPF"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Time every call of a kernel function and print a latency histogram.
    Histogram(commands::histogram::HistogramArgs),
    /// Print every call of a kernel function that lasts at least a
    /// threshold, as it happens: when, on which CPU, in which task, for
    /// which socket.
    Slow(commands::slow::SlowArgs),
    /// NET_RX seen whole: how long raised softirqs waited, how long each
    /// net_rx_action call ran, and how many packets it handled, squeezed
    /// or not, in ksoftirqd or not.
    Softirq(commands::softirq::SoftirqArgs),
    /// Sample kernel stacks into an SVG flame graph, optionally only inside
    /// (slow) calls of one function.
    Flamegraph(commands::flamegraph::FlamegraphArgs),
    /// Record latency over time: a histogram per window (1 s), and with
    /// --slower-than every slow call and the stacks sampled inside it, for
    /// `netlat report`.
    Record(commands::record::RecordArgs),
    /// Turn recordings (record -o, serve's captures, slow --json) into one
    /// self-contained HTML page: a heat map of latency over time, the slow
    /// calls on it, and the histogram and flame graph of any range you
    /// select.
    Report(commands::report::ReportArgs),
    /// Put recorded runs (histogram --output) side by side, with the sysctls
    /// that differ and each run's kernel counters.
    Compare(commands::compare::CompareArgs),
    /// Time a function before and after changing one sysctl, then put the
    /// sysctl back and compare the two runs.
    Experiment(commands::experiment::ExperimentArgs),
    /// Measure the network-latency checklist (softnet, drops, queues, IRQs).
    Doctor(doctor::DoctorArgs),
    /// Keep functions timed and serve their histograms to Prometheus.
    Serve(crate::serve::ServeArgs),
    /// List the flight recorder's captures (serve --capture), newest
    /// first, or show one.
    Captures(commands::captures::CapturesArgs),
    /// What this kernel offers netlat (kprobes, fentry, tracepoints, BTF,
    /// ...), probed for real, and which backend each command would pick.
    Info(commands::info::InfoArgs),
    /// Print shell completions (bash, zsh, fish, ...) for netlat.
    Completions(commands::completions::CompletionsArgs),
    /// Write netlat's man pages, one per subcommand, into a directory.
    ManPages(commands::completions::ManPagesArgs),
}

/// The command tree as users see it: built (so subcommands carry their
/// full names), without clap's `help` pseudo-subcommand. Completions and
/// man pages are made from it, so they never drift from the real options.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    if recovers_at_start(&cli.command) {
        crate::system::journal::recover_at_start();
    }
    let result = match &cli.command {
        Command::Histogram(args) => commands::histogram::run(args),
        Command::Slow(args) => commands::slow::run(args),
        Command::Record(args) => commands::record::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Softirq(args) => commands::softirq::run(args),
        Command::Flamegraph(args) => commands::flamegraph::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Experiment(args) => commands::experiment::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Serve(args) => crate::serve::run(args),
        Command::Captures(args) => commands::captures::run(args),
        Command::Info(args) => commands::info::run(args),
        Command::Completions(args) => commands::completions::run(args, &command()),
        Command::ManPages(args) => commands::completions::run_man_pages(args, &command()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `netlat ... | head` closing the pipe is a normal way to stop.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln: it panics when stderr is a full device.
            let _ = writeln!(
                io::stderr(),
                "Error: {}",
                format!("{e:#}").replace('\n', " ")
            );
            ExitCode::FAILURE
        }
    }
}

/// Every run as root first puts back what a killed netlat left changed;
/// `experiment --restore` does it itself, to report what it did.
fn recovers_at_start(command: &Command) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && !matches!(command, Command::Experiment(args) if args.restore)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}

/// Help and version print as clap formats them; usage errors become one line.
fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    // clap's message is its first paragraph; the usage and tips follow.
    let rendered = e.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    let message = message.trim_start_matches("error: ");
    eprintln!("Error: {message} (see netlat --help)");
    ExitCode::from(2)
}
