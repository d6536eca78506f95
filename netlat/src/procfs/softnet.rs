//! /proc/net/softnet_stat: one line per CPU of hex columns. Column 0 is
//! packets processed, 1 dropped (backlog full), 2 time_squeeze (budget or
//! time ran out); kernels since 5.10 add the CPU id in column 12, and since
//! 6.x more columns follow it (net/core/net-procfs.c).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftnetRow {
    pub cpu: u32,
    pub processed: u64,
    pub dropped: u64,
    pub time_squeeze: u64,
}

pub fn parse(text: &str) -> Vec<SoftnetRow> {
    text.lines()
        .enumerate()
        .filter_map(|(line, l)| {
            let cols: Vec<u64> = l
                .split_whitespace()
                .map(|c| u64::from_str_radix(c, 16))
                .collect::<Result<_, _>>()
                .ok()?;
            Some(SoftnetRow {
                // Offline CPUs have no line, so the line number is only a
                // fallback for kernels without the CPU column.
                cpu: cols.get(12).map_or(line as u32, |&c| c as u32),
                processed: *cols.first()?,
                dropped: *cols.get(1)?,
                time_squeeze: *cols.get(2)?,
            })
        })
        .collect()
}

pub fn read() -> Vec<SoftnetRow> {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// Per-CPU growth from `before` to `after` (CPUs matched by id).
pub fn delta(before: &[SoftnetRow], after: &[SoftnetRow]) -> Vec<SoftnetRow> {
    after
        .iter()
        .map(|a| {
            let b = before
                .iter()
                .find(|b| b.cpu == a.cpu)
                .copied()
                .unwrap_or_default();
            SoftnetRow {
                cpu: a.cpu,
                processed: a.processed.wrapping_sub(b.processed),
                dropped: a.dropped.wrapping_sub(b.dropped),
                time_squeeze: a.time_squeeze.wrapping_sub(b.time_squeeze),
            }
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
            parse(old),
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
            parse(new),
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
        let before = [SoftnetRow {
            cpu: 1,
            processed: 10,
            dropped: 1,
            time_squeeze: 0,
        }];
        let after = [
            SoftnetRow {
                cpu: 0,
                processed: 5,
                dropped: 0,
                time_squeeze: 0,
            },
            SoftnetRow {
                cpu: 1,
                processed: 15,
                dropped: 1,
                time_squeeze: 2,
            },
        ];
        let d = delta(&before, &after);
        assert_eq!(d[0].processed, 5);
        assert_eq!((d[1].processed, d[1].dropped, d[1].time_squeeze), (5, 0, 2));
    }
}
