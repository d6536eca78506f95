//! /proc/net/tcp and /proc/net/tcp6: one line per socket, TIME_WAIT ones
//! included. Parsed by `procfs-core`, which handles the hex, per-word
//! byte-order address encoding of both files.

use std::{collections::BTreeMap, net::SocketAddr};

use procfs_core::{
    ExplicitSystemInfo, FromBufReadSI,
    net::{TcpNetEntries, TcpState},
};
use serde::{Deserialize, Serialize};

use super::{ProcError, Root, read_text};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// As `netstat` names it: ESTABLISHED, TIME_WAIT, LISTEN, ...
    pub state: &'static str,
}

pub fn state_name(state: &TcpState) -> &'static str {
    match state {
        TcpState::Established => "ESTABLISHED",
        TcpState::SynSent => "SYN_SENT",
        TcpState::SynRecv => "SYN_RECV",
        TcpState::FinWait1 => "FIN_WAIT1",
        TcpState::FinWait2 => "FIN_WAIT2",
        TcpState::TimeWait => "TIME_WAIT",
        TcpState::Close => "CLOSE",
        TcpState::CloseWait => "CLOSE_WAIT",
        TcpState::LastAck => "LAST_ACK",
        TcpState::Listen => "LISTEN",
        TcpState::Closing => "CLOSING",
        TcpState::NewSynRecv => "NEW_SYN_RECV",
    }
}

/// One file's sockets (the first line is the header).
pub fn parse(text: &str) -> Result<Vec<TcpSocket>, ProcError> {
    let system = ExplicitSystemInfo {
        // Only the byte order matters for these files.
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: cfg!(target_endian = "little"),
    };
    let entries = TcpNetEntries::from_buf_read(text.as_bytes(), &system)
        .map_err(|e| ProcError::parse("tcp", 0, e.to_string()))?;
    Ok(entries
        .0
        .into_iter()
        .map(|e| TcpSocket {
            local: e.local_address,
            remote: e.remote_address,
            state: state_name(&e.state),
        })
        .collect())
}

/// Sockets of both families in `root`'s namespace. A missing tcp6 (IPv6
/// disabled) is no error.
pub fn read(root: &Root) -> Result<Vec<TcpSocket>, ProcError> {
    let mut sockets = parse(&read_text(&root.proc_net.join("tcp"))?)?;
    match read_text(&root.proc_net.join("tcp6")) {
        Ok(text) => sockets.extend(parse(&text)?),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    Ok(sockets)
}

/// Counts behind the connection-churn check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpSummary {
    pub total: u64,
    pub by_state: BTreeMap<String, u64>,
    /// TIME_WAIT sockets by local port: many on a server's port means
    /// clients open a connection per request (it closed first).
    pub time_wait_by_local_port: BTreeMap<u16, u64>,
    /// TIME_WAIT sockets by remote port: many towards one port means this
    /// host is the client that opens a connection per request.
    pub time_wait_by_remote_port: BTreeMap<u16, u64>,
}

pub fn summarize(sockets: &[TcpSocket]) -> TcpSummary {
    let mut s = TcpSummary::default();
    for sock in sockets {
        s.total += 1;
        *s.by_state.entry(sock.state.to_owned()).or_default() += 1;
        if sock.state == "TIME_WAIT" {
            *s.time_wait_by_local_port
                .entry(sock.local.port())
                .or_default() += 1;
            *s.time_wait_by_remote_port
                .entry(sock.remote.port())
                .or_default() += 1;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_file_and_time_wait_by_port() {
        let v4 = parse(include_str!("../../../tests/fixtures/proc/tcp-time-wait")).unwrap();
        let v6 = parse(include_str!("../../../tests/fixtures/proc/tcp6-time-wait")).unwrap();
        assert_eq!(v4[0].local, "0.0.0.0:4140".parse().unwrap());
        assert_eq!(v4[0].state, "LISTEN");
        assert_eq!(v4[1].local, "127.0.0.1:4140".parse().unwrap());
        assert_eq!(v4[1].remote, "127.0.0.1:53470".parse().unwrap());
        assert_eq!(v6[1].local, "[::1]:4140".parse().unwrap());
        let all: Vec<TcpSocket> = v4.into_iter().chain(v6).collect();
        let s = summarize(&all);
        assert_eq!(s.total, 8);
        assert_eq!(s.by_state["TIME_WAIT"], 5);
        assert_eq!(s.by_state["LISTEN"], 2);
        assert_eq!(s.by_state["ESTABLISHED"], 1);
        assert_eq!(s.time_wait_by_local_port[&4140], 4);
        assert_eq!(s.time_wait_by_local_port[&35000], 1);
        assert_eq!(s.time_wait_by_remote_port[&8080], 1);
    }

    #[test]
    fn empty_and_broken_tables() {
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        assert!(parse(header).unwrap().is_empty());
        assert!(parse("").unwrap().is_empty());
        let bad = format!(
            "{header}   0: zz:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1679\n"
        );
        assert!(matches!(parse(&bad), Err(ProcError::Parse { .. })));
        let cut = format!("{header}   0: 0100007F:07E8\n");
        assert!(parse(&cut).is_err());
    }

    #[test]
    fn real_host_files_parse() {
        let v4 = include_str!("../../../tests/fixtures/proc/linux-6.18-vm/net/tcp");
        let v6 = include_str!("../../../tests/fixtures/proc/linux-6.18-vm/net/tcp6");
        assert_eq!(parse(v4).unwrap().len(), 2);
        assert!(parse(v6).unwrap().is_empty());
    }
}
