//! Running this build's netlat binary from integration tests; the process
//! helpers themselves live in netlat-testkit, shared with the VM guest.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part"
)]

pub mod browser;
pub mod prometheus;

use std::path::Path;

pub mod capture;

pub use netlat_testkit::netlat::{Output, bucket_total, is_root};

pub const BIN: &str = env!("CARGO_BIN_EXE_netlat");

/// Says why this test cannot run here and what it is, as
/// `skipped: REASON [TEST NAME]` on stderr. Written to the stream itself,
/// not through `eprintln!`, which libtest captures and shows only for a
/// failure: a skipped test would look like a pass.
pub fn skip(why: &str) {
    use std::io::Write as _;
    // libtest runs each test on a thread named after it.
    let current = std::thread::current();
    let test = current.name().unwrap_or("?");
    let _ = writeln!(std::io::stderr(), "skipped: {why} [{test}]");
}

/// Returns from the test, through [`skip`], unless it runs as root.
#[allow(unused_macros, reason = "each test binary uses a different part")]
macro_rules! skip_unless_root {
    ($why:expr) => {
        if !$crate::common::is_root() {
            return $crate::common::skip($why);
        }
    };
}
#[allow(unused_imports, reason = "each test binary uses a different part")]
pub(crate) use skip_unless_root;

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
