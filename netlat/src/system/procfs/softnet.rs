//! /proc/net/softnet_stat: one line per CPU of hex columns. Column 0 is
//! packets processed, 1 dropped (backlog full), 2 time_squeeze (budget or
//! time ran out); kernels since 5.10 add the CPU id in column 12, and since
//! 6.x more columns follow it (net/core/net-procfs.c).

use serde::{Deserialize, Serialize};

use super::{ProcError, Root, read_text};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftnetRow {
    pub cpu: u32,
    pub processed: u64,
    pub dropped: u64,
    pub time_squeeze: u64,
}

/// Parses the whole file: a line that is not hex columns, or has fewer
/// than three, is an error (a half-understood file would give made-up
/// deltas).
pub fn parse(text: &str) -> Result<Vec<SoftnetRow>, ProcError> {
    let mut rows = Vec::new();
    for (n, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let cols = l
            .split_whitespace()
            .map(|c| u64::from_str_radix(c, 16))
            .collect::<Result<Vec<u64>, _>>()
            .map_err(|e| ProcError::parse("softnet_stat", n + 1, format!("not hex: {e}")))?;
        let [processed, dropped, time_squeeze, ..] = cols[..] else {
            return Err(ProcError::parse(
                "softnet_stat",
                n + 1,
                format!("{} columns, expected at least 3", cols.len()),
            ));
        };
        rows.push(SoftnetRow {
            // Offline CPUs have no line, so the line number is only a
            // fallback for kernels without the CPU column.
            cpu: cols.get(12).map_or(n, |&c| c as usize) as u32,
            processed,
            dropped,
            time_squeeze,
        });
    }
    Ok(rows)
}

/// `/proc/net/softnet_stat` under `root`.
pub fn try_read(root: &Root) -> Result<Vec<SoftnetRow>, ProcError> {
    parse(&read_text(&root.proc_net.join("softnet_stat"))?)
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
    fn old_and_new_layouts() {
        // 4.x: 11 columns, no CPU id.
        let old = "0000a000 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n00000010 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n";
        assert_eq!(
            parse(old).unwrap(),
            [
                SoftnetRow {
                    cpu: 0,
                    processed: 0xa000,
                    dropped: 1,
                    time_squeeze: 2
                },
                SoftnetRow {
                    cpu: 1,
                    processed: 0x10,
                    dropped: 0,
                    time_squeeze: 0
                },
            ]
        );
        // 6.x: CPU id in column 12 (here CPU 3 after an offline CPU 2),
        // then input_qlen and process_qlen.
        let new = "000001ff 00000000 00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000003 00000000 00000000\n";
        assert_eq!(
            parse(new).unwrap(),
            [SoftnetRow {
                cpu: 3,
                processed: 0x1ff,
                dropped: 0,
                time_squeeze: 3
            }]
        );
    }

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

    #[test]
    fn strict_parse_of_real_and_newer_layouts() {
        // This host (6.18): 15 columns, CPU id in column 12.
        let host = parse(include_str!(
            "../../../tests/fixtures/proc/linux-6.18-vm/net/softnet_stat"
        ))
        .unwrap();
        assert_eq!(host.len(), 2);
        assert_eq!(host[1].cpu, 1);
        // Columns a future kernel may append are ignored.
        let newer = parse(include_str!(
            "../../../tests/fixtures/proc/softnet_stat-extra-columns"
        ))
        .unwrap();
        assert_eq!(newer.len(), 4);
        assert_eq!(
            newer[2],
            SoftnetRow {
                cpu: 3,
                processed: 0x0123_4567,
                dropped: 0x2a,
                time_squeeze: 0x1f4
            }
        );
        assert_eq!(
            parse("0001 zz 0003\n").unwrap_err().to_string(),
            "softnet_stat: line 1: not hex: invalid digit found in string"
        );
        assert!(parse("0001 0002\n").is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn a_cpu_that_came_online_mid_run_has_no_growth() {
        // CPU 2 was offline at the start (no line) and online at the end,
        // with counters the kernel kept since boot: they are not growth.
        let before = parse(include_str!(
            "../../../tests/fixtures/proc/softnet-hotplug/before"
        ))
        .unwrap();
        let after = parse(include_str!(
            "../../../tests/fixtures/proc/softnet-hotplug/after"
        ))
        .unwrap();
        assert_eq!(after.len(), 3);
        let d = delta(&before, &after);
        assert_eq!(
            d.iter()
                .map(|r| (r.cpu, r.processed, r.time_squeeze))
                .collect::<Vec<_>>(),
            [(0, 0x200, 0), (1, 0x100, 1)],
            "{d:?}"
        );
        // And a CPU that went offline during the run has no end to
        // compare with.
        assert_eq!(delta(&after, &before).len(), 2);
    }
}
