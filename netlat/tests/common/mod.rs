//! Running this build's netlat binary from integration tests; the process
//! helpers themselves live in netlat-testkit, shared with the VM guest.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part"
)]

pub mod prometheus;

use std::path::Path;

pub mod capture;

pub use netlat_testkit::netlat::{Output, bucket_total, is_root};

pub const BIN: &str = env!("CARGO_BIN_EXE_netlat");

pub fn skip(why: &str) {
    println!("skipped: {why}");
}

/// Runs netlat to completion.
pub fn run(args: &[&str]) -> Output {
    netlat_testkit::netlat::run(Path::new(BIN), args)
}

/// Starts netlat in the background and returns once it has attached.
pub struct Netlat;

impl Netlat {
    pub fn start(args: &[&str]) -> netlat_testkit::netlat::Netlat {
        netlat_testkit::netlat::Netlat::start(BIN, args)
    }

    pub fn run(args: &[&str]) -> Output {
        run(args)
    }
}
