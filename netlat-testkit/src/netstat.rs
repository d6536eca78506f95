//! Kernel TCP counters from /proc/net/netstat (header line + value line
//! per group): ground truth that prunes and collapses happened.

/// Value of `name` in the `TcpExt:` group.
pub fn parse_tcp_ext(text: &str, name: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (header, values) = (lines.next()?, lines.next()?);
    let i = header.split_whitespace().position(|h| h == name)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

pub fn tcp_ext(name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").expect("read /proc/net/netstat");
    parse_tcp_ext(&text, name).unwrap_or_else(|| panic!("no TcpExt {name} in /proc/net/netstat"))
}

/// The kernel's own evidence of pruning over a stretch of time:
/// PruneCalled counts tcp_prune_queue calls, TCPRcvCollapsed the skbs that
/// tcp_collapse merged (it is only incremented inside tcp_collapse).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruning {
    pub pruned: u64,
    pub collapsed: u64,
}

impl Pruning {
    /// The counters now; `since` gives what happened after.
    pub fn now() -> Pruning {
        Pruning {
            pruned: tcp_ext("PruneCalled"),
            collapsed: tcp_ext("TCPRcvCollapsed"),
        }
    }

    pub fn since(self) -> Pruning {
        let now = Pruning::now();
        Pruning {
            pruned: now.pruned - self.pruned,
            collapsed: now.collapsed - self.collapsed,
        }
    }
}

impl std::fmt::Display for Pruning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PruneCalled+={} TCPRcvCollapsed+={}",
            self.pruned, self.collapsed
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_tcpext_counter() {
        let text = "TcpExt: SyncookiesSent PruneCalled TCPRcvCollapsed\nTcpExt: 0 17 4242\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(super::parse_tcp_ext(text, "PruneCalled"), Some(17));
        assert_eq!(super::parse_tcp_ext(text, "TCPRcvCollapsed"), Some(4242));
        assert_eq!(super::parse_tcp_ext(text, "Nope"), None);
    }
}
