//! `netlat slow` output: one line per slow call (text or NDJSON), and the
//! closing summary. Text lines are `key=value` after the time and duration,
//! so `grep cpu=3` and `awk` work on them.

use std::fmt::Write as _;

use crate::model::slow_call::SlowCall;

/// Whether wall-clock times are printed in UTC or the host's local time
/// (what tcpdump prints by default, so the two line up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    Local,
    Utc,
}

pub fn text_line(call: &SlowCall, zone: Zone) -> String {
    let mut line = format!(
        "{} {:>10} cpu={}",
        wall_clock(call.start_unix_ns, zone),
        duration(call.duration_ns),
        call.cpu
    );
    if let Some(exit) = call.exit_cpu {
        let _ = write!(line, "->{exit}");
    }
    let _ = write!(line, " ctx={}", call.context);
    if let Some(name) = &call.softirq {
        let _ = write!(line, ":{name}");
    }
    if call.interrupted_idle {
        line.push_str("(idle)");
    }
    let _ = write!(
        line,
        " pid={} tid={} comm={}",
        call.pid, call.tid, call.comm
    );
    if let Some(s) = &call.socket {
        let _ = write!(
            line,
            " local={} remote={} rcvbuf={} rmem={}",
            s.local, s.remote, s.rcvbuf, s.rmem_alloc
        );
    }
    if let Some(n) = &call.net_rx {
        let _ = write!(line, " packets={} polls={}", n.packets, n.polls);
        match n.wait_ns {
            Some(ns) => {
                let _ = write!(line, " wait={}", duration(ns));
            }
            None => line.push_str(" wait=?"),
        }
        if let Some(why) = &n.squeezed {
            let _ = write!(line, " squeezed={why}");
        }
        if n.ksoftirqd {
            line.push_str(" ksoftirqd");
        }
        let devices: Vec<String> = n
            .devices
            .iter()
            .map(|d| format!("{}:{}", crate::render::printable(&d.device), d.packets))
            .collect();
        if !devices.is_empty() {
            let _ = write!(line, " devices={}", devices.join(","));
        }
        if n.other_packets > 0 {
            let _ = write!(line, "+{}", n.other_packets);
        }
    }
    line.push('\n');
    if let Some(stack) = &call.stack {
        for frame in stack {
            let _ = writeln!(line, "    {frame}");
        }
    }
    line
}

/// One JSON object per line (NDJSON), with the time also as RFC 3339.
pub fn json_line(call: &SlowCall, zone: Zone) -> String {
    let mut value = serde_json::to_value(call).expect("a slow call serializes");
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "time".to_owned(),
            wall_clock_rfc3339(call.start_unix_ns, zone).into(),
        );
    }
    value.to_string() + "\n"
}

/// Durations as people read them: 850ns, 12.3us, 2.345ms, 1.802s.
pub fn duration(ns: u64) -> String {
    let ns_f = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}us", ns_f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.3}ms", ns_f / 1e6)
    } else {
        format!("{:.3}s", ns_f / 1e9)
    }
}

/// The kernel's figures for the run, and what userspace printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub timed: u64,
    pub over: u64,
    pub printed: u64,
    pub lost: u64,
    pub lost_stacks: u64,
    /// Records taken from the buffer but never printed, and why.
    pub unprinted: u64,
    pub unprinted_why: &'static str,
    /// Runs of netlat's programs the kernel skipped (recursion_misses) and
    /// kprobe hits it dropped (kretprobes without a free instance), where
    /// this kernel counts them: calls that were never timed.
    pub missed_runs: Option<u64>,
    pub missed_hits: Option<u64>,
}

pub fn summary(function: &str, threshold_ns: u64, t: &Totals) -> String {
    let mut line = format!(
        "netlat: slow {function} >= {}: {} calls timed, {} at or over the threshold, {} records printed, {} lost",
        duration(threshold_ns),
        t.timed,
        t.over,
        t.printed,
        t.lost
    );
    if t.lost > 0 {
        line.push_str(" (the ring buffer was full: raise --buffer, or a higher threshold)");
    }
    if t.unprinted > 0 {
        let _ = write!(line, "; {} not printed ({})", t.unprinted, t.unprinted_why);
    }
    if t.lost_stacks > 0 {
        let _ = write!(line, "; {} stacks could not be taken", t.lost_stacks);
    }
    let runs = t.missed_runs.unwrap_or(0);
    let hits = t.missed_hits.unwrap_or(0);
    if runs + hits > 0 {
        let _ = write!(
            line,
            "; the kernel skipped {runs} program runs and {hits} kprobe hits, calls never timed"
        );
    }
    line
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
    /// Seconds east of UTC.
    offset: i64,
}

fn civil(unix_ns: u64, zone: Zone) -> Civil {
    let secs = (unix_ns / 1_000_000_000) as libc::time_t;
    let micros = ((unix_ns % 1_000_000_000) / 1_000) as u32;
    // SAFETY: a zeroed tm is valid; *_r fill it without shared state.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe {
        match zone {
            // localtime_r reads TZ and /etc/localtime as the C library does,
            // so no time zone crate is needed.
            Zone::Local => !libc::localtime_r(&secs, &mut tm).is_null(),
            Zone::Utc => !libc::gmtime_r(&secs, &mut tm).is_null(),
        }
    };
    if !ok {
        tm = unsafe { std::mem::zeroed() };
    }
    Civil {
        year: tm.tm_year as i64 + 1900,
        month: tm.tm_mon as u32 + 1,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        micros,
        offset: tm.tm_gmtoff,
    }
}

/// `2026-12-01 09:30:12.123456`, microseconds as tcpdump prints them.
pub fn wall_clock(unix_ns: u64, zone: Zone) -> String {
    let c = civil(unix_ns, zone);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.micros
    )
}

/// `2026-12-01T09:30:12.123456+01:00` (or `Z` in UTC).
pub fn wall_clock_rfc3339(unix_ns: u64, zone: Zone) -> String {
    let c = civil(unix_ns, zone);
    let offset = if zone == Zone::Utc {
        "Z".to_owned()
    } else {
        let sign = if c.offset < 0 { '-' } else { '+' };
        let m = c.offset.abs() / 60;
        format!("{sign}{:02}:{:02}", m / 60, m % 60)
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{offset}",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.micros
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::slow_call::Socket;

    fn call() -> SlowCall {
        SlowCall {
            // 2026-12-01T09:30:12.123456Z
            start_unix_ns: 1_796_117_412_123_456_789,
            duration_ns: 2_345_678,
            cpu: 1,
            exit_cpu: None,
            context: "softirq".into(),
            softirq: Some("NET_RX".into()),
            interrupted_idle: true,
            pid: 0,
            tid: 0,
            comm: "swapper/1".into(),
            socket: None,
            stack: None,
            net_rx: None,
        }
    }

    #[test]
    fn a_net_rx_call_says_load_or_pathology() {
        use crate::model::slow_call::{DeviceCount, NetRxOfCall};
        let mut c = call();
        c.net_rx = Some(NetRxOfCall {
            wait_ns: Some(40_000),
            packets: 3,
            polls: 2,
            squeezed: None,
            ksoftirqd: false,
            devices: vec![DeviceCount {
                device: "eth0".into(),
                packets: 3,
            }],
            other_packets: 0,
        });
        assert!(
            text_line(&c, Zone::Utc)
                .ends_with(" comm=swapper/1 packets=3 polls=2 wait=40.0us devices=eth0:3\n")
        );
        let n = c.net_rx.as_mut().unwrap();
        n.wait_ns = None;
        n.squeezed = Some("budget".into());
        n.ksoftirqd = true;
        assert!(
            text_line(&c, Zone::Utc)
                .ends_with(" wait=? squeezed=budget ksoftirqd devices=eth0:3\n")
        );
        let json: serde_json::Value = serde_json::from_str(&json_line(&c, Zone::Utc)).unwrap();
        assert_eq!(
            json["net_rx"],
            serde_json::json!({"packets": 3, "polls": 2, "squeezed": "budget", "ksoftirqd": true,
                "devices": [{"device": "eth0", "packets": 3}]})
        );
    }

    #[test]
    fn text_line_has_time_duration_and_context() {
        assert_eq!(
            text_line(&call(), Zone::Utc),
            "2026-12-01 09:30:12.123456    2.346ms cpu=1 ctx=softirq:NET_RX(idle) pid=0 tid=0 comm=swapper/1\n"
        );
        let mut c = call();
        c.context = "task".into();
        c.softirq = None;
        c.interrupted_idle = false;
        c.exit_cpu = Some(0);
        c.socket = Some(Socket {
            family: "ipv4".into(),
            local: "127.0.0.1:5201".parse().unwrap(),
            remote: "127.0.0.1:40000".parse().unwrap(),
            rcvbuf: 32768,
            rmem_alloc: 40960,
        });
        c.stack = Some(vec!["tcp_collapse".into(), "tcp_prune_queue".into()]);
        assert_eq!(
            text_line(&c, Zone::Utc),
            "2026-12-01 09:30:12.123456    2.346ms cpu=1->0 ctx=task pid=0 tid=0 comm=swapper/1 local=127.0.0.1:5201 remote=127.0.0.1:40000 rcvbuf=32768 rmem=40960\n    tcp_collapse\n    tcp_prune_queue\n"
        );
    }

    #[test]
    fn json_line_is_one_object_with_raw_nanoseconds() {
        let line = json_line(&call(), Zone::Utc);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["duration_ns"], 2_345_678);
        assert_eq!(v["time"], "2026-12-01T09:30:12.123456Z");
        assert_eq!(v["softirq"], "NET_RX");
        assert!(v.get("socket").is_none());
    }

    #[test]
    fn durations_and_summary() {
        assert_eq!(duration(850), "850ns");
        assert_eq!(duration(12_345), "12.3us");
        assert_eq!(duration(1_802_000_000), "1.802s");
        let t = Totals {
            timed: 10,
            over: 4,
            printed: 3,
            lost: 1,
            ..Totals::default()
        };
        let s = summary("net_rx_action", 2_000_000, &t);
        assert!(
            s.starts_with("netlat: slow net_rx_action >= 2.000ms: 10 calls timed, 4 at or over the threshold, 3 records printed, 1 lost"),
            "{s}"
        );
        assert!(!s.contains("skipped") && !s.contains("not printed"), "{s}");
        let stopped = Totals {
            unprinted: 7,
            unprinted_why: "stdout failed",
            ..t
        };
        assert!(
            summary("net_rx_action", 0, &stopped).contains("1 lost (the ring buffer was full: raise --buffer, or a higher threshold); 7 not printed (stdout failed)"),
            "{}",
            summary("net_rx_action", 0, &stopped)
        );
        let missed = Totals {
            missed_runs: Some(2),
            missed_hits: None,
            ..t
        };
        assert!(
            summary("tcp_collapse", 0, &missed).ends_with(
                "; the kernel skipped 2 program runs and 0 kprobe hits, calls never timed"
            ),
            "{}",
            summary("tcp_collapse", 0, &missed)
        );
    }
}
