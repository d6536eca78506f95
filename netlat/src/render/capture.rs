//! `netlat captures` output: one line per stored capture, and a capture
//! shown as `netlat slow` and `flamegraph` print their parts. Capture
//! documents come from disk or another host: every line is made printable
//! (no terminal escapes, no bidi reordering).

use std::{fmt::Write as _, time::Duration};

use super::{
    flamegraph::{Calls, culprit_table},
    printable,
    slow::{Zone, duration, text_line, wall_clock},
};
use crate::recorder::document::{Capture, Listing};

/// `TIME FUNCTION slow=N max=DURATION culprit=NAME id=ID`, key=value like
/// `netlat slow`'s lines.
pub fn list_line(l: &Listing, zone: Zone) -> String {
    let line = format!(
        "{} {} slow={} max={} culprit={} id={}",
        wall_clock(l.start_unix_ns, zone),
        l.function,
        l.slow_calls,
        duration(l.max_duration_ns),
        l.top_culprit.as_deref().unwrap_or("-"),
        l.id
    );
    printable(&line).into_owned() + "\n"
}

/// Slow calls the stacks were sampled in: those the kernel counted over
/// the threshold before the window closed.
fn slow_calls(c: &Capture) -> u64 {
    c.accounting
        .kernel_over_threshold
        .saturating_sub(c.accounting.after_window)
}

/// The faster calls the ranking compares with: the kernel's count over the
/// stacks' stretch; documents without it (threshold 0, or older files)
/// fall back to the window's per-second histograms less the slow calls.
fn fast_calls(c: &Capture) -> u64 {
    if c.stacks.fast_calls > 0 {
        return c.stacks.fast_calls;
    }
    let all: u64 = c.histograms.window.iter().map(|s| s.summary.count).sum();
    all.saturating_sub(slow_calls(c))
}

pub fn show(c: &Capture, zone: Zone) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Capture {}: {} on {} (Linux {}), timed with {}, netlat {}",
        c.id, c.function, c.host, c.kernel, c.backend, c.netlat_version
    );
    let call = &c.trigger.call;
    let missed = match c.trigger.missed_before {
        0 => "no slow call missed since the previous capture".to_owned(),
        n => format!(
            "{n} slow call{} since the previous capture in no capture (cooldown or skipped)",
            if n == 1 { "" } else { "s" }
        ),
    };
    let _ = writeln!(
        out,
        "Trigger: {} >= {}: the first call started {} and lasted {}; {missed}",
        c.function,
        duration(c.threshold_ns),
        wall_clock(call.start_unix_ns, zone),
        duration(call.duration_ns),
    );
    let _ = writeln!(
        out,
        "Slow calls from {} to {} ({} recorded):",
        wall_clock(c.window.start_unix_ns, zone),
        wall_clock(c.window.end_unix_ns, zone),
        c.calls.len()
    );
    for call in &c.calls {
        out.push_str(&text_line(call, zone));
    }
    let a = &c.accounting;
    let _ = writeln!(
        out,
        "Accounting: the kernel counted {} calls at or over the threshold: {} recorded, {} past the per-capture cap, {} after the window, {} lost (record buffer full), {} over the record rate, {} still being written",
        a.kernel_over_threshold,
        a.recorded,
        a.not_kept,
        a.after_window,
        a.lost_ring,
        a.limited,
        a.unsettled
    );
    out.push('\n');
    let threshold = humantime::format_duration(Duration::from_nanos(c.threshold_ns)).to_string();
    out.push_str(&culprit_table(
        &c.ranking,
        &Calls {
            function: &c.function,
            threshold: Some(&threshold),
            calls: slow_calls(c),
            fast_calls: fast_calls(c),
            hz: c.stacks.frequency_hz,
        },
    ));
    out.lines()
        .map(|l| printable(l).into_owned() + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::fixture;

    /// 2026-12-03T03:12:00.123456789Z
    const T0: u64 = 1_796_267_520_123_456_789;

    #[test]
    fn a_listing_line() {
        let c = fixture::capture(T0, 3);
        assert_eq!(
            list_line(&c.listing(), Zone::Utc),
            "2026-12-03 03:12:00.123456 net_rx_action slow=3 max=8.000ms culprit=tcp_collapse id=20261203T031200.123456Z-net_rx_action\n"
        );
        let mut l = c.listing();
        l.top_culprit = None;
        l.function = "evil\u{1b}[2J".into();
        let line = list_line(&l, Zone::Utc);
        assert!(
            line.contains("evil\\u{1b}[2J slow=3") && line.contains("culprit=-"),
            "{line}"
        );
    }

    #[test]
    fn shown_as_slow_and_flamegraph_print_it() {
        let c = fixture::capture(T0, 2);
        let text = show(&c, Zone::Utc);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Capture 20261203T031200.123456Z-net_rx_action: net_rx_action on testhost (Linux 6.18.0), timed with raw_tp, netlat 0.1.0"
        );
        assert_eq!(
            lines[1],
            "Trigger: net_rx_action >= 5.000ms: the first call started 2026-12-03 03:12:00.123456 and lasted 6.000ms; 2 slow calls since the previous capture in no capture (cooldown or skipped)"
        );
        assert_eq!(
            lines[2],
            "Slow calls from 2026-12-03 03:12:00.123456 to 2026-12-03 03:12:02.123456 (2 recorded):"
        );
        assert_eq!(lines[3], text_line(&c.calls[0], Zone::Utc).trim_end());
        assert_eq!(
            lines[4],
            "2026-12-03 03:12:00.223456    7.000ms cpu=1 ctx=softirq:NET_RX(idle) pid=0 tid=0 comm=swapper/1"
        );
        assert!(
            lines[5].starts_with("Accounting: the kernel counted 3 calls at or over the threshold: 2 recorded, 0 past the per-capture cap, 1 after the window,"),
            "{}",
            lines[5]
        );
        assert_eq!(lines[6], "");
        // 3 counted less 1 after the window; 2003 calls in the window's
        // seconds less those 2.
        assert_eq!(
            lines[7],
            "Where the slow calls (> 5ms, 2 calls, 50 samples) spent their time, against the fast calls (2,001 calls, 90 samples):"
        );
        assert!(lines[9].trim_start().starts_with("tcp_collapse"), "{text}");
    }
}
