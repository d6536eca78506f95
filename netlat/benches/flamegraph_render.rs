//! Prints the wall time to symbolize, fold and render 100k kernel stack
//! samples (aim: under 1 s). Uses this machine's /proc/kallsyms when it is
//! readable with addresses (root), else a synthetic symbol table.

use std::time::Instant;

use netlat::{
    flamegraph::{fold, svg},
    system::kallsyms::Symbols,
};

const SAMPLES: u64 = 100_000;
const DISTINCT_STACKS: u64 = 5_000;

/// Small deterministic generator; the figures must not depend on a seed crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn main() {
    let live = std::fs::read_to_string("/proc/kallsyms").ok().filter(|t| {
        t.lines()
            .next()
            .is_some_and(|l| !l.starts_with("0000000000000000"))
    });
    let (text, source) = match live {
        Some(t) => (t, "/proc/kallsyms"),
        None => (
            (0..60_000u64)
                .map(|i| {
                    format!(
                        "{:016x} T kernel_function_{i}\n",
                        0xffffffff81000000u64 + i * 0x100
                    )
                })
                .collect(),
            "synthetic kallsyms",
        ),
    };
    let started = Instant::now();
    let symbols = Symbols::parse(&text);
    let parse = started.elapsed();
    let addresses: Vec<u64> = text
        .lines()
        .filter(|l| l.contains(" T ") || l.contains(" t "))
        .filter_map(|l| u64::from_str_radix(l.split(' ').next()?, 16).ok())
        .collect();
    let mut rng = Lcg(42);
    let stacks: Vec<fold::Stack> = (0..DISTINCT_STACKS)
        .map(|_| {
            let depth = 8 + rng.next() % 24;
            fold::Stack {
                frames: (0..depth)
                    .map(|_| addresses[(rng.next() % addresses.len() as u64) as usize] + 0x10)
                    .collect(),
                count: SAMPLES / DISTINCT_STACKS,
            }
        })
        .collect();
    let t = Instant::now();
    let folded = fold::fold(&stacks, &symbols, None);
    let fold_time = t.elapsed();
    let t = Instant::now();
    let image = svg::render(&folded.stacks, "bench", "100k samples").expect("render");
    let render_time = t.elapsed();
    println!(
        "flamegraph render: {SAMPLES} samples in {DISTINCT_STACKS} stacks ({source}): parse kallsyms {:.0} ms, symbolize+fold {:.0} ms, SVG {:.0} ms ({} KiB); total {:.0} ms (aim < 1000 ms)",
        parse.as_secs_f64() * 1e3,
        fold_time.as_secs_f64() * 1e3,
        render_time.as_secs_f64() * 1e3,
        image.len() / 1024,
        (parse + fold_time + render_time).as_secs_f64() * 1e3
    );
}
