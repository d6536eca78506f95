//! As root, doctor also measures how long raised NET_RX softirqs waited:
//! the NET_RX tracepoint programs ride beside net_rx_action's for the
//! window, so the softnet check can tell softirqs that were delayed (a
//! starved ksoftirqd) from packets that were many (the budget).

use crate::{
    doctor::sample::Fact,
    model::net_rx::NetRxTally,
    system::privileges,
    tracing::session::attach_traced,
    tracing::{
        backend::{
            attach::{Globals, Tracer},
            choice::BackendChoice,
        },
        net_rx::{self, NET_RX_ACTION, NetRxSettings},
    },
};

/// The attached programs; dropping it detaches them.
pub struct NetRxWait {
    tracer: Tracer,
}

impl NetRxWait {
    /// Attaches, or says why not (one line, for the check's evidence).
    pub fn start() -> Fact<NetRxWait> {
        privileges::check().map_err(|_| {
            "measured only as root (doctor then attaches the softirq tracepoints for its window)"
                .to_owned()
        })?;
        let globals = Globals {
            net_rx: Some(NetRxSettings::for_this_host(false)),
            ..Globals::default()
        };
        let (mut tracer, _) = attach_traced(NET_RX_ACTION, BackendChoice::Auto, &globals)
            .map_err(|e| format!("{e:#}"))?;
        tracer.attach_net_rx().map_err(|e| format!("{e:#}"))?;
        Ok(NetRxWait { tracer })
    }

    /// Each CPU's counts since attaching, by CPU id.
    pub fn read(&self) -> Fact<Vec<NetRxTally>> {
        net_rx::stats(self.tracer.ebpf())
            .map(|per_cpu| per_cpu.iter().map(NetRxTally::from).collect())
            .map_err(|e| format!("{e:#}"))
    }
}
