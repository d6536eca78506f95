//! One slow call as plain data: the kernel's record decoded, its start put
//! on the wall clock, its socket's addresses spelled out.

use std::{
    borrow::Cow,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use netlat_common::{
    NO_STACK, SlowRecord, SockInfo, call_context,
    net_rx::{NO_WAIT, NetRxCall, squeeze},
};

use crate::model::net_rx::device_name;
use serde::{Deserialize, Serialize};

/// The record's fields, as printed in text and `--json`, and read back
/// from a flight-recorder capture (hence the `Cow`s).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlowCall {
    /// Start of the call, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    pub duration_ns: u64,
    /// The CPU the call started on.
    pub cpu: u32,
    /// Set when the call returned on another CPU (a task that migrated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_cpu: Option<u32>,
    /// "softirq", "hardirq" or "task".
    pub context: Cow<'static, str>,
    /// The softirq's name (NET_RX, TIMER, ...) when in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    pub softirq: Option<Cow<'static, str>>,
    /// A softirq that interrupted the idle task (pid 0).
    pub interrupted_idle: bool,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<Socket>,
    /// Kernel stack at the entry, innermost first (`--stack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<Vec<String>>,
    /// `net_rx_action`: what the call did, from the NET_RX tracepoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_rx: Option<NetRxOfCall>,
}

/// What one `net_rx_action` call did: a long call of many packets is load,
/// one of few packets a pathology.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRxOfCall {
    /// From the softirq's first unserved raise to the call's start; absent
    /// when the raise was not seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ns: Option<u64>,
    pub packets: u64,
    pub polls: u32,
    /// "budget" (netdev_budget packets) or "time" (netdev_budget_usecs):
    /// the call ended with work left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub squeezed: Option<Cow<'static, str>>,
    /// A ksoftirqd thread ran it.
    pub ksoftirqd: bool,
    /// Packets by device, in the order the call first polled them.
    pub devices: Vec<DeviceCount>,
    /// Packets of devices past the ones named.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_packets: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCount {
    pub device: String,
    pub packets: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl NetRxOfCall {
    /// None when the record carries no call (not asked for, or the NET_RX
    /// programs attached while the call ran).
    pub fn from_call(c: &NetRxCall) -> Option<NetRxOfCall> {
        if c.entered_ns == 0 {
            return None;
        }
        let named = (c.devices_len as usize).min(c.devices.len());
        Some(NetRxOfCall {
            wait_ns: (c.wait_ns != NO_WAIT).then_some(c.wait_ns),
            packets: c.packets,
            polls: c.polls,
            squeezed: match c.squeezed {
                squeeze::BUDGET => Some(Cow::Borrowed("budget")),
                squeeze::TIME => Some(Cow::Borrowed("time")),
                _ => None,
            },
            ksoftirqd: c.ksoftirqd != 0,
            devices: c.devices[..named]
                .iter()
                .map(|d| DeviceCount {
                    device: device_name(&d.name),
                    packets: d.packets,
                })
                .collect(),
            other_packets: c.other_packets,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    /// "ipv4" or "ipv6".
    pub family: Cow<'static, str>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// `sk_rcvbuf` at the call's entry, bytes.
    pub rcvbuf: i32,
    /// Receive memory in use at the call's entry (`sk_rmem_alloc`), bytes.
    pub rmem_alloc: i32,
}

/// include/linux/interrupt.h's softirq vectors, as /proc/softirqs names them.
const SOFTIRQ_NAMES: [&str; 10] = [
    "HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU",
];

/// Where the kernel's monotonic clock (bpf_ktime_get_ns) stands against the
/// wall clock, measured once when tracing starts.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC, nanoseconds.
    pub realtime_minus_monotonic: i128,
}

fn read_clock(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills a valid timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

impl Clock {
    /// CLOCK_MONOTONIC now: the clock of the kernel's records
    /// (bpf_ktime_get_ns).
    pub fn monotonic_ns() -> u64 {
        read_clock(libc::CLOCK_MONOTONIC) as u64
    }

    pub fn now() -> Clock {
        let read = read_clock;
        // Monotonic read on both sides of the realtime one: their mean is
        // when the realtime was taken, to within a microsecond.
        let m0 = read(libc::CLOCK_MONOTONIC);
        let r = read(libc::CLOCK_REALTIME);
        let m1 = read(libc::CLOCK_MONOTONIC);
        Clock {
            realtime_minus_monotonic: r - (m0 + m1) / 2,
        }
    }

    pub fn unix_ns(&self, monotonic_ns: u64) -> u64 {
        (monotonic_ns as i128 + self.realtime_minus_monotonic).max(0) as u64
    }
}

impl SlowCall {
    pub fn from_record(r: &SlowRecord, clock: &Clock) -> SlowCall {
        let (context, softirq) = match r.context {
            call_context::SOFTIRQ => (
                "softirq",
                Some(
                    SOFTIRQ_NAMES
                        .get(r.softirq_vec as usize)
                        .copied()
                        .unwrap_or("?"),
                ),
            ),
            call_context::HARDIRQ => ("hardirq", None),
            _ => ("task", None),
        };
        SlowCall {
            start_unix_ns: clock.unix_ns(r.start_ns),
            context: Cow::Borrowed(context),
            softirq: softirq.map(Cow::Borrowed),
            duration_ns: r.duration_ns,
            cpu: r.cpu,
            exit_cpu: (r.exit_cpu != r.cpu).then_some(r.exit_cpu),
            interrupted_idle: r.context == call_context::SOFTIRQ && r.tid == 0,
            pid: r.pid,
            tid: r.tid,
            comm: comm(&r.comm),
            socket: Socket::from_info(&r.sock),
            stack: None,
            net_rx: NetRxOfCall::from_call(&r.net_rx),
        }
    }

    /// The record's stack id, if it has one to look up.
    pub fn stack_id(r: &SlowRecord) -> Option<u32> {
        (r.stack_id != NO_STACK && r.stack_id >= 0).then_some(r.stack_id as u32)
    }
}

fn comm(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    // A task name is bytes the task chose: never let it drive a terminal.
    String::from_utf8_lossy(&raw[..end])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl Socket {
    /// AF_INET 2, AF_INET6 10; anything else (0: not read) is no socket.
    pub fn from_info(s: &SockInfo) -> Option<Socket> {
        let (family, local, remote): (_, IpAddr, IpAddr) = match s.family {
            2 => ("ipv4", v4(&s.local_addr).into(), v4(&s.remote_addr).into()),
            10 => (
                "ipv6",
                Ipv6Addr::from(s.local_addr).into(),
                Ipv6Addr::from(s.remote_addr).into(),
            ),
            _ => return None,
        };
        Some(Socket {
            family: Cow::Borrowed(family),
            local: SocketAddr::new(local, s.local_port),
            remote: SocketAddr::new(remote, s.remote_port),
            rcvbuf: s.rcvbuf,
            rmem_alloc: s.rmem_alloc,
        })
    }
}

fn v4(a: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(a[0], a[1], a[2], a[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SlowRecord {
        let mut comm = [0u8; 16];
        comm[..9].copy_from_slice(b"swapper/1");
        SlowRecord {
            start_ns: 5_000,
            duration_ns: 2_500_000,
            cpu: 1,
            exit_cpu: 1,
            pid: 0,
            tid: 0,
            context: call_context::SOFTIRQ,
            softirq_vec: 3,
            comm,
            stack_id: NO_STACK,
            _pad: 0,
            sock: SockInfo::NONE,
            net_rx: NetRxCall::NONE,
        }
    }

    #[test]
    fn a_softirq_that_interrupted_idle() {
        let clock = Clock {
            realtime_minus_monotonic: 1_000_000_000_000,
        };
        let call = SlowCall::from_record(&record(), &clock);
        assert_eq!(call.start_unix_ns, 1_000_000_005_000);
        assert_eq!(call.context, "softirq");
        assert_eq!(call.softirq.as_deref(), Some("NET_RX"));
        assert!(call.interrupted_idle);
        assert_eq!(call.comm, "swapper/1");
        assert_eq!(call.exit_cpu, None);
        assert_eq!(call.socket, None);
        assert_eq!(SlowCall::stack_id(&record()), None);
        assert_eq!(call.net_rx, None);
    }

    #[test]
    fn a_net_rx_call_with_its_packets() {
        let mut r = record();
        let mut c = NetRxCall::NONE;
        c.entered_ns = 4_000;
        c.wait_ns = 40_000;
        c.packets = 3;
        c.polls = 2;
        c.squeezed = squeeze::BUDGET;
        c.ksoftirqd = 1;
        c.devices_len = 2;
        c.devices[0].name.name[..4].copy_from_slice(b"eth0");
        c.devices[0].packets = 2;
        c.devices[1].name.name[..11].copy_from_slice(b"(no_device)");
        c.devices[1].packets = 1;
        r.net_rx = c;
        let n = SlowCall::from_record(&r, &Clock::now()).net_rx.unwrap();
        assert_eq!(n.wait_ns, Some(40_000));
        assert_eq!((n.packets, n.polls, n.ksoftirqd), (3, 2, true));
        assert_eq!(n.squeezed.as_deref(), Some("budget"));
        assert_eq!(n.devices[0].device, "eth0");
        assert_eq!(n.devices[1].device, "(no_device)");
        c.wait_ns = NO_WAIT;
        c.squeezed = 0;
        let n = NetRxOfCall::from_call(&c).unwrap();
        assert_eq!((n.wait_ns, n.squeezed), (None, None));
    }

    #[test]
    fn sockets_of_both_families() {
        let mut s = SockInfo {
            family: 2,
            local_port: 5201,
            remote_port: 40000,
            rcvbuf: 32768,
            rmem_alloc: 40960,
            ..SockInfo::NONE
        };
        s.local_addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        s.remote_addr[..4].copy_from_slice(&[127, 0, 0, 2]);
        let v4 = Socket::from_info(&s).unwrap();
        assert_eq!(v4.local.to_string(), "127.0.0.1:5201");
        assert_eq!(v4.remote.to_string(), "127.0.0.2:40000");
        s.family = 10;
        s.local_addr = Ipv6Addr::LOCALHOST.octets();
        let v6 = Socket::from_info(&s).unwrap();
        assert_eq!(v6.family, "ipv6");
        assert_eq!(v6.local.to_string(), "[::1]:5201");
        s.family = 0;
        assert_eq!(Socket::from_info(&s), None);
    }

    #[test]
    fn task_names_cannot_carry_control_characters() {
        let mut r = record();
        r.comm = *b"evil\x1b[2Jname\0\0\0\0";
        r.context = call_context::TASK;
        r.tid = 42;
        let call = SlowCall::from_record(&r, &Clock::now());
        assert_eq!(call.comm, "evil?[2Jname");
        assert_eq!(call.context, "task");
        assert!(!call.interrupted_idle);
    }
}
