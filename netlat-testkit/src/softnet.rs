//! /proc/net/softnet_stat, read independently of netlat's parser
//! (netlat/src/system/procfs/softnet.rs, the one netlat uses): this is the
//! ground truth the host and VM tests check netlat's packet counts against,
//! so it shares none of netlat's code. One row per CPU, hex columns;
//! 0 processed, 1 dropped, 2 time_squeeze.

/// `(processed, dropped, time_squeeze)` per row; rows are CPUs in order
/// (the kernel skips offline CPUs, which a 2-CPU test machine has none of).
pub fn parse(text: &str) -> Vec<(u64, u64, u64)> {
    text.lines()
        .map(|line| {
            let col = |i: usize| {
                line.split_whitespace()
                    .nth(i)
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .unwrap_or(0)
            };
            (col(0), col(1), col(2))
        })
        .collect()
}

pub fn read() -> Vec<(u64, u64, u64)> {
    parse(&std::fs::read_to_string("/proc/net/softnet_stat").expect("read softnet_stat"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_columns() {
        let rows = super::parse(
            "00006a8c 00000000 00000002 00000000\n0000bffe 00000001 0000000a 00000000\n",
        );
        assert_eq!(rows, [(0x6a8c, 0, 2), (0xbffe, 1, 10)]);
    }
}
