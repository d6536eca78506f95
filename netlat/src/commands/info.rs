//! `netlat info`: what this kernel offers netlat, probed for real, and the
//! backend each tracing command would pick for net_rx_action and
//! tcp_collapse, with the reason for every "no".

use std::io::Write as _;

use anyhow::{Context as _, Result};

use crate::{
    VERSION,
    model::info::{Capability, INFO_SCHEMA_VERSION, InfoReport, Pick, Skipped},
    render,
    system::{host::HostInfo, privileges},
    tracing::{
        backend::{
            attach::{self, Globals},
            choice::{self, BackendChoice},
        },
        capabilities::{self, Status},
    },
};

#[derive(clap::Args, Debug, Clone)]
pub struct InfoArgs {
    /// Print the answers as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The functions of "The story of one latency spike".
pub const FUNCTIONS: [&str; 2] = ["net_rx_action", "tcp_collapse"];

/// Commands that choose a backend through the same candidates and attach
/// order (`commands::attach_traced`).
const PICKED_BY: [&str; 4] = ["histogram", "experiment", "flamegraph --during", "serve"];

pub fn run(args: &InfoArgs) -> Result<()> {
    let report = gather();
    let text = if args.json {
        render::info::json(&report)
    } else {
        render::info::text(&report)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the answers")
}

pub fn gather() -> InfoReport {
    let root = privileges::check().is_ok();
    let capabilities = capabilities::probe_all()
        .into_iter()
        .map(|(check, answer)| Capability {
            key: check.key.to_owned(),
            name: check.name.to_owned(),
            answer,
        })
        .collect();
    InfoReport {
        schema: INFO_SCHEMA_VERSION,
        version: VERSION.to_owned(),
        kernel: HostInfo::read().kernel,
        arch: std::env::consts::ARCH.to_owned(),
        root,
        capabilities,
        picked_by: PICKED_BY.iter().map(|c| c.to_string()).collect(),
        backends: FUNCTIONS.iter().map(|f| pick(f, root)).collect(),
    }
}

/// Does what `--backend auto` does for `function`: tries the candidates in
/// order and keeps the first that loads and attaches (detached at once).
fn pick(function: &str, root: bool) -> Pick {
    let mut pick = Pick {
        function: function.to_owned(),
        status: Status::NeedsRoot,
        backend: None,
        detail: None,
        skipped: Vec::new(),
        reason: None,
    };
    if !root {
        pick.reason = Some(privileges::NOT_ROOT.to_owned());
        return pick;
    }
    let candidates = match choice::candidates(BackendChoice::Auto, function) {
        Ok(c) => c,
        Err(why) => {
            pick.status = Status::No;
            pick.reason = Some(why);
            return pick;
        }
    };
    match attach::attach_first(function, &candidates, &Globals::default()) {
        Ok((tracer, skipped)) => {
            let backend = tracer.backend();
            pick.status = Status::Yes;
            pick.backend = Some(backend.name().to_owned());
            pick.detail = Some(backend.detail(function));
            pick.skipped = skipped
                .into_iter()
                .map(|(b, reason)| Skipped {
                    backend: b.name().to_owned(),
                    reason,
                })
                .collect();
        }
        Err(e) => {
            pick.status = Status::No;
            pick.reason = Some(e.to_string());
        }
    }
    pick
}
