//! softnet_stat's counters as data: one row per CPU, and their growth
//! over a run (the reading is system/procfs/softnet.rs).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftnetRow {
    pub cpu: u32,
    pub processed: u64,
    pub dropped: u64,
    pub time_squeeze: u64,
}

/// The kernel prints these counters as 32-bit values (`%08x` of unsigned
/// int), so growth is taken modulo 2^32: a busy CPU's `processed` wraps.
fn growth(before: u64, after: u64) -> u64 {
    after.wrapping_sub(before) & 0xffff_ffff
}

/// Per-CPU growth from `before` to `after`, CPUs matched by id. Only CPUs
/// in both have growth: one that came online during the run shows the
/// counters it kept since boot (or since it was last online), and one that
/// went offline has no end value.
pub fn delta(before: &[SoftnetRow], after: &[SoftnetRow]) -> Vec<SoftnetRow> {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.cpu == a.cpu)?;
            Some(SoftnetRow {
                cpu: a.cpu,
                processed: growth(b.processed, a.processed),
                dropped: growth(b.dropped, a.dropped),
                time_squeeze: growth(b.time_squeeze, a.time_squeeze),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_match_cpus_by_id() {
        let row = |cpu, processed, dropped, time_squeeze| SoftnetRow {
            cpu,
            processed,
            dropped,
            time_squeeze,
        };
        // Lines in another order, and a CPU (2) offline in between: ids
        // decide, not positions.
        let before = [row(3, 100, 0, 0), row(1, 10, 1, 0)];
        let after = [row(1, 15, 1, 2), row(3, 107, 0, 0)];
        let d = delta(&before, &after);
        assert_eq!(d, [row(1, 5, 0, 2), row(3, 7, 0, 0)]);
    }

    #[test]
    fn processed_wraps_at_32_bits() {
        let row = |processed| SoftnetRow {
            cpu: 0,
            processed,
            ..SoftnetRow::default()
        };
        assert_eq!(delta(&[row(0xffff_fff0)], &[row(0x10)])[0].processed, 0x20);
    }
}
