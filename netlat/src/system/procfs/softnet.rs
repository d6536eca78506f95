//! /proc/net/softnet_stat: one line per CPU of hex columns. Column 0 is
//! packets processed, 1 dropped (backlog full), 2 time_squeeze (budget or
//! time ran out); kernels since 5.10 add the CPU id in column 12, and since
//! 6.x more columns follow it (net/core/net-procfs.c).

use super::{ProcError, Root, read_text};
pub use crate::model::softnet::{SoftnetRow, delta};

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
