//! The kernel's own count of NET_RX softirqs (net_rx_action calls), per CPU,
//! from /proc/softirqs.

/// Parses the NET_RX row of /proc/softirqs text; one count per CPU column.
pub fn parse_net_rx(text: &str) -> Vec<u64> {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix("NET_RX:"))
        .map(|row| {
            row.split_whitespace()
                .map(|n| n.parse().expect("NET_RX count"))
                .collect()
        })
        .expect("/proc/softirqs has a NET_RX row")
}

/// NET_RX calls so far, indexed by CPU number.
pub fn net_rx_per_cpu() -> Vec<u64> {
    parse_net_rx(&std::fs::read_to_string("/proc/softirqs").expect("read /proc/softirqs"))
}

pub fn net_rx_total() -> u64 {
    net_rx_per_cpu().iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_net_rx_row() {
        let text = "                    CPU0       CPU1\n          HI:          1          0\n      NET_TX:          3          4\n      NET_RX:      12345        678\n       BLOCK:          0          0\n";
        assert_eq!(parse_net_rx(text), [12345, 678]);
    }
}
