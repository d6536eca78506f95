//! `netlat softirq` as text: per CPU (with `--per-cpu`) and for all CPUs,
//! the counts on three lines, then the wait and runtime histograms in the
//! layout `histogram` prints, then packets and polls per call.

use std::fmt::Write as _;

use crate::{
    model::net_rx::{Distribution, NetRx, SoftirqReport},
    model::report::{BucketCount, Summary},
    model::unit::Unit,
    render::histogram::{histogram_rows, rows_and_percentiles, significant},
};

pub fn render(r: &SoftirqReport, unit: Unit) -> String {
    let mut out = String::new();
    if let Some(cpus) = &r.per_cpu {
        for c in cpus {
            let _ = writeln!(out, "CPU {}:", c.cpu);
            block(&mut out, &c.net_rx, r, unit);
            out.push('\n');
        }
        let _ = writeln!(out, "All CPUs:");
    }
    block(&mut out, &r.all, r, unit);
    if !r.devices.is_empty() {
        let _ = writeln!(out, "\nPackets by device:");
        for d in &r.devices {
            let _ = writeln!(
                out,
                "  {:<16} {}",
                crate::render::printable(&d.device),
                d.packets
            );
        }
    }
    let _ = writeln!(
        out,
        "\nNET_RX on {} CPUs over {:.1} s, timed with {} ({} {}).",
        r.cpus,
        r.window_ns as f64 / 1e9,
        r.backend_detail,
        r.host,
        r.kernel
    );
    out
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".to_owned()
    } else {
        format!("{}%", significant(part as f64 * 100.0 / whole as f64))
    }
}

fn block(out: &mut String, n: &NetRx, r: &SoftirqReport, unit: Unit) {
    let per_call = if n.calls > 0 {
        significant(n.packets as f64 / n.calls as f64)
    } else {
        "-".to_owned()
    };
    let _ = writeln!(
        out,
        "NET_RX calls:{} packets:{} ({per_call} per call) polls:{}",
        n.calls, n.packets, n.polls
    );
    let _ = writeln!(
        out,
        "ksoftirqd ran {} of calls ({}); squeezed {} ({} of calls; {} by time) with budget {} packets / {} jiffies",
        percent(n.ksoftirqd_calls, n.calls),
        n.ksoftirqd_calls,
        n.squeezed,
        percent(n.squeezed, n.calls),
        n.squeezed_by_time,
        r.budget.packets,
        r.budget.jiffies
    );
    let _ = writeln!(
        out,
        "raised while running:{} calls without a seen raise:{} (no wait timed) polls outside NET_RX:{}",
        n.raised_while_running, n.unraised_calls, n.polls_outside
    );
    let _ = writeln!(
        out,
        "waited {} in all, {} of it before calls ksoftirqd ran",
        crate::render::slow::duration(n.wait_total_ns),
        percent(n.ksoftirqd_wait_ns, n.wait_total_ns)
    );
    duration(out, "Wait (raise -> softirq entry)", &n.wait, unit);
    duration(out, "Runtime (softirq entry -> exit)", &n.runtime, unit);
    counts(out, "Packets per call", &n.packets_per_call);
    counts(out, "Polls per call", &n.polls_per_call);
}

fn duration(out: &mut String, title: &str, s: &Summary, unit: Unit) {
    let u = unit.suffix();
    let _ = writeln!(
        out,
        "\n{title} min:{}{u} avg:{}{u} max:{}{u} count:{}",
        unit.whole(s.min_ns.unwrap_or(0)),
        unit.whole(s.mean_ns.unwrap_or(0.0) as u64),
        unit.whole(s.max_ns.unwrap_or(0)),
        s.count
    );
    if s.count == 0 {
        return;
    }
    rows_and_percentiles(out, s, unit);
}

fn counts(out: &mut String, title: &str, d: &Distribution) {
    let _ = writeln!(
        out,
        "\n{title} min:{} avg:{} max:{} calls:{}",
        d.min.unwrap_or(0),
        d.mean.map_or("0".to_owned(), significant),
        d.max.unwrap_or(0),
        d.calls
    );
    if d.calls == 0 {
        return;
    }
    // The rows are the same log2 layout; a count is a "value" in unit 1.
    let as_summary = Summary {
        count: d.calls,
        sum_ns: d.total,
        min_ns: d.min,
        max_ns: d.max,
        mean_ns: d.mean,
        percentiles_ns: None,
        unmatched_exits: 0,
        dropped_entries: 0,
        mismatched_exits: 0,
        buckets: d
            .buckets
            .iter()
            .map(|&(low_ns, high_ns, count)| BucketCount {
                low_ns,
                high_ns,
                count,
            })
            .collect(),
    };
    histogram_rows(out, &as_summary, Unit::Ns);
    let _ = writeln!(
        out,
        "Percentiles: p50:{} p99:{}",
        d.p50.unwrap_or(0),
        d.p99.unwrap_or(0)
    );
}
