//! `netlat_experiment` on the kernel command line: try generator variants
//! and print the kernel's prune counters for each, instead of the tests.

use std::time::Duration;

use netlat_testkit::{collapse, netstat::tcp_ext};

pub fn run() {
    use collapse::Recipe;
    let base = Recipe::default();
    let long = Recipe {
        first_stall: Duration::from_secs(3),
        second_stall: Duration::from_secs(3),
        ..base
    };
    let rcvbuf = |bytes| Recipe {
        shrunk_rcvbuf: bytes,
        ..base
    };
    let variants = [
        ("default_64k", base),
        ("rcvbuf_48k", rcvbuf(48 * 1024)),
        ("rcvbuf_32k", rcvbuf(32 * 1024)),
        ("rcvbuf_16k", rcvbuf(16 * 1024)),
        (
            "long_stalls_32k",
            Recipe {
                shrunk_rcvbuf: 32 * 1024,
                ..long
            },
        ),
        (
            "slow_drain_100_32k",
            Recipe {
                shrunk_rcvbuf: 32 * 1024,
                read_size: 100,
                ..base
            },
        ),
        (
            "pace_0_32k",
            Recipe {
                shrunk_rcvbuf: 32 * 1024,
                pace: Duration::ZERO,
                ..base
            },
        ),
    ];
    for (name, recipe) in variants {
        let (p0, c0) = (tcp_ext("PruneCalled"), tcp_ext("TCPRcvCollapsed"));
        let drained = collapse::run_recipe(Duration::from_secs(4), recipe).drained;
        let (p1, c1) = (tcp_ext("PruneCalled"), tcp_ext("TCPRcvCollapsed"));
        println!(
            "netlat-vm: experiment {name} drained={drained} PruneCalled+={} TCPRcvCollapsed+={}",
            p1 - p0,
            c1 - c0
        );
    }
}
