//! Command-line arguments, their checks, and turning every failure into one
//! line on stderr with a non-zero exit.

use std::{io, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{backend::choice::BackendChoice, commands, doctor, duration, unit::UnitChoice};

#[derive(Parser, Debug)]
#[command(
    name = "netlat",
    version,
    about = "Kernel function latency histograms and network latency checks, with eBPF"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Time every call of a kernel function and print a latency histogram.
    Histogram(HistogramArgs),
    /// Sample kernel stacks into an SVG flame graph, optionally only inside
    /// (slow) calls of one function.
    Flamegraph(FlamegraphArgs),
    /// Put recorded runs (histogram --output) side by side, with the sysctls
    /// that differ and each run's kernel counters.
    Compare(CompareArgs),
    /// Time a function before and after changing one sysctl, then put the
    /// sysctl back and compare the two runs.
    Experiment(ExperimentArgs),
    /// Measure the network-latency checklist (softnet, drops, queues, IRQs).
    Doctor(doctor::DoctorArgs),
    /// Keep functions timed and serve their histograms to Prometheus.
    Serve(ServeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Kernel functions to time [default: net_rx_action tcp_collapse; any
    /// that cannot be traced here is skipped with its reason].
    pub functions: Vec<String>,
    /// Address to serve /metrics on. Other hosts can reach it only if you
    /// say so, e.g. --listen 0.0.0.0:9435.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9435")]
    pub listen: std::net::SocketAddr,
    /// How to time the functions (as for histogram).
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Also export the kernel counters doctor reads (softnet drops and
    /// time_squeeze per CPU, prunes, collapses, backlog drops, listen
    /// overflows, retransmits).
    #[arg(long)]
    pub doctor: bool,
    /// One histogram per CPU (label cpu) instead of one per function.
    #[arg(long)]
    pub per_cpu: bool,
}

#[derive(Args, Debug, Clone)]
pub struct HistogramArgs {
    /// Kernel function to time, e.g. net_rx_action or tcp_collapse.
    pub function: String,
    /// How long to trace: seconds (30, 2.5) or with a unit (500ms, 2m).
    /// Without it, trace until Ctrl-C.
    #[arg(value_parser = duration::parse, allow_negative_numbers = true)]
    pub seconds: Option<Duration>,
    /// How to time the function.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Unit of the histogram rows.
    #[arg(long, value_enum, default_value_t = UnitChoice::Auto)]
    pub unit: UnitChoice,
    /// Print (and reset) a histogram every interval, with a timestamp.
    #[arg(long, value_parser = duration::parse, value_name = "SECONDS")]
    pub interval: Option<Duration>,
    /// One histogram per CPU, then all CPUs together.
    #[arg(long)]
    pub per_cpu: bool,
    /// Only calls that ended on this CPU.
    #[arg(long, value_name = "N", conflicts_with = "per_cpu")]
    pub cpu: Option<u32>,
    /// Print the result as JSON (one document per interval with --interval).
    #[arg(long)]
    pub json: bool,
    /// Also write the final result, with the sysctls and kernel counters
    /// around the run, as JSON to FILE (for `netlat compare`).
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// One histogram per group of calls: `rcvbuf` groups socket functions
    /// (tcp_collapse) by the socket's receive buffer, in power-of-two bands.
    #[arg(long, value_enum, value_name = "KEY", conflicts_with_all = ["cpu", "per_cpu"])]
    pub by: Option<crate::group_by::GroupBy>,
}

#[derive(Args, Debug, Clone)]
pub struct FlamegraphArgs {
    /// How long to sample (30, 2.5, 500ms); without it, until Ctrl-C.
    #[arg(long, value_parser = duration::parse, allow_negative_numbers = true)]
    pub duration: Option<Duration>,
    /// Samples per second on each CPU.
    #[arg(long, default_value_t = 99, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub frequency: u64,
    /// Keep only samples taken while this kernel function runs.
    #[arg(long, value_name = "FUNCTION")]
    pub during: Option<String>,
    /// Keep only samples from calls of --during that last longer than this (e.g. 1ms).
    #[arg(long, value_parser = duration::parse, requires = "during", value_name = "DURATION")]
    pub slower_than: Option<Duration>,
    /// How to time --during (as for histogram).
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Where to write the SVG.
    #[arg(long, short, default_value = "flamegraph.svg")]
    pub output: std::path::PathBuf,
    /// Also write the collapsed stacks (FlameGraph/inferno folded format).
    #[arg(long, value_name = "FILE")]
    pub folded: Option<std::path::PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// Result files written by `netlat histogram --output`; the first is the baseline.
    #[arg(required = true, num_args = 2.., value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    /// Compare runs of different functions.
    #[arg(long)]
    pub force: bool,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ExperimentArgs {
    /// Kernel function to time, e.g. tcp_collapse.
    pub function: String,
    /// The setting to try, e.g. net.ipv4.tcp_rmem="4096 1048576 2097152".
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: String,
    /// Length of each of the two runs.
    #[arg(long, value_parser = duration::parse, default_value = "10")]
    pub duration: Duration,
    /// How to time the function (as for histogram).
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Group each run's calls, as for histogram (e.g. rcvbuf).
    #[arg(long, value_enum, value_name = "KEY")]
    pub by: Option<crate::group_by::GroupBy>,
    /// Write before.json and after.json here (for netlat compare).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<std::path::PathBuf>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    let result = match &cli.command {
        Command::Histogram(args) => commands::histogram::run(args),
        Command::Flamegraph(args) => commands::flamegraph::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Experiment(args) => commands::experiment::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Serve(args) => crate::serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `netlat ... | head` closing the pipe is a normal way to stop.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
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
