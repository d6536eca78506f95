//! The kprobe and fentry programs go through the real verifier on this
//! kernel even where they cannot attach, so a verifier regression shows up
//! in CI and not only in the VM stage.

mod common;

use netlat::tracing::backend::{
    Backend,
    attach::{AttachError, Tracer},
};

#[test]
fn kprobe_programs_pass_the_verifier() {
    common::skip_unless_root!("needs root to load eBPF programs");
    for function in ["net_rx_action", "tcp_sendmsg"] {
        match Tracer::load(function, Backend::Kprobe) {
            Ok(_) => println!("kprobe pair for {function}: verifier accepted"),
            Err(e) => panic!("kprobe programs for {function} were rejected: {e}"),
        }
    }
}

#[test]
fn fentry_programs_load_or_fail_with_the_one_line_reason() {
    common::skip_unless_root!("needs root to load eBPF programs");
    match Tracer::load("net_rx_action", Backend::Fentry) {
        Ok(_) => println!("fentry pair: verifier accepted"),
        Err(AttachError::Unavailable(why)) => {
            println!("fentry refused: {why}");
            assert!(
                why.starts_with("fentry/fexit are refused by this kernel (BPF_PROG_LOAD: "),
                "{why}"
            );
            assert!(!why.contains('\n'));
        }
        Err(e) => panic!("fentry failed for another reason: {e}"),
    }
}

#[test]
fn every_tracepoint_flavour_loads_and_attaches() {
    common::skip_unless_root!("needs root to load eBPF programs");
    for backend in [Backend::TpBtf, Backend::RawTp] {
        let mut t =
            Tracer::load("net_rx_action", backend).unwrap_or_else(|e| panic!("{backend}: {e}"));
        t.attach().unwrap_or_else(|e| panic!("{backend}: {e}"));
        t.detach().unwrap_or_else(|e| panic!("{backend}: {e}"));
    }
}
