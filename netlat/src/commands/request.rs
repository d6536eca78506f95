//! What every tracing command shares: the function and `--backend` it
//! takes, the checks before anything attaches (root, the online CPUs), and
//! the request a histogram run is made of. ripgrep's split, raw arguments
//! against what a run needs, in small: `experiment` builds a
//! [`TraceRequest`] rather than a histogram command line nobody typed.

use std::time::Duration;

use anyhow::Result;

use crate::{
    model::unit::UnitChoice, system::privileges, tracing::backend::choice::BackendChoice,
    tracing::group_by::GroupBy,
};

/// `--backend`, declared once. Each command says what it times with
/// `mut_arg("backend", ..)`; the flag, its values and default are these.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct BackendArg {
    /// How to time the function.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
}

/// FUNCTION and `--backend`: what a command times and how. FUNCTION is
/// checked by clap, so a name that can be no kernel symbol fails as any
/// other bad argument does, before anything runs.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Kernel function to time, e.g. net_rx_action or tcp_collapse.
    #[arg(value_parser = crate::system::kallsyms::function_name)]
    pub function: String,
    #[command(flatten)]
    pub how: BackendArg,
}

impl Target {
    pub fn backend(&self) -> BackendChoice {
        self.how.backend
    }
}

/// One histogram run as `histogram` and `experiment` trace it: what, how,
/// for how long, and how it is reported.
#[derive(Debug, Clone)]
pub struct TraceRequest {
    pub function: String,
    pub backend: BackendChoice,
    pub seconds: Option<Duration>,
    pub by: Option<GroupBy>,
    pub unit: UnitChoice,
    /// Report (and reset) every interval.
    pub interval: Option<Duration>,
    pub per_cpu: bool,
    pub cpu: Option<u32>,
    pub json: bool,
    /// Where the whole run's report is written, if anywhere.
    pub output: Option<std::path::PathBuf>,
}

impl TraceRequest {
    /// A plain run: `function` for `seconds`, the default report, no file.
    pub fn plain(function: &str, backend: BackendChoice, seconds: Option<Duration>) -> Self {
        TraceRequest {
            function: function.to_owned(),
            backend,
            seconds,
            by: None,
            unit: UnitChoice::Auto,
            interval: None,
            per_cpu: false,
            cpu: None,
            json: false,
            output: None,
        }
    }
}

/// Fails unless netlat may load eBPF programs (the one-line reason).
pub fn require_privileges() -> Result<()> {
    privileges::check().map_err(anyhow::Error::msg)
}

/// The online CPUs, whose per-CPU map values a run reads.
pub fn online_cpus() -> Result<Vec<u32>> {
    aya::util::online_cpus().map_err(|(path, e)| anyhow::anyhow!("cannot read {path}: {e}"))
}
