//! Loaded runs to the page's data: times made offsets from each run's
//! start, the buckets the run uses numbered, each slow call given its
//! window and its `slow` line, the metadata spelled out for people.

use std::collections::{BTreeMap, BTreeSet};

use netlat_common::buckets;

use super::{
    input::Loaded,
    page_data::{MetaSection, PageData, PageRun, PageSlow, PageWindow},
};
use crate::{
    model::unit::{Unit, UnitChoice},
    render::slow::{self as slow_text, Zone},
};

pub fn page_data(runs: &[Loaded]) -> PageData {
    let function = runs
        .iter()
        .map(|r| r.function.as_str())
        .find(|f| !f.is_empty())
        .unwrap_or("slow calls");
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    PageData {
        title: format!("{function} latency over time: {}", names.join(" vs ")),
        runs: runs.iter().map(page_run).collect(),
    }
}

fn page_run(run: &Loaded) -> PageRun {
    let rec = &run.recording;
    let start = rec.start_unix_ns;
    let used: BTreeSet<u64> = rec
        .windows
        .iter()
        .flat_map(|w| w.buckets.iter().map(|b| b[0]))
        .filter(|&i| (i as usize) < buckets::USED_BUCKETS)
        .collect();
    // Bucket index -> its place among the used ones, looked up per bucket
    // of every window (86,400 of them in a day's recording).
    let position: BTreeMap<u64, u64> = used
        .iter()
        .enumerate()
        .map(|(p, &i)| (i, p as u64))
        .collect();
    let windows = rec
        .windows
        .iter()
        .map(|w| PageWindow {
            t: w.start_unix_ns.saturating_sub(start),
            n: w.count,
            sum: w.sum_ns,
            min: w.min_ns,
            max: w.max_ns,
            b: w.buckets
                .iter()
                .filter_map(|b| Some([*position.get(&b[0])?, b[1]]))
                .collect(),
        })
        .collect();
    let slow = rec
        .slow_calls
        .iter()
        .map(|c| PageSlow {
            t: c.start_unix_ns.saturating_sub(start),
            d: c.duration_ns,
            w: rec.window_of(c.start_unix_ns.saturating_add(c.duration_ns)),
            cpu: c.cpu,
            context: match &c.softirq {
                Some(name) => format!("{}:{name}", c.context),
                None => c.context.to_string(),
            },
            task: format!("{} {}/{}", c.comm, c.pid, c.tid),
            socket: c
                .socket
                .as_ref()
                .map(|s| format!("{} -> {}", s.local, s.remote)),
            line: slow_text::text_line(c, Zone::Utc),
        })
        .collect();
    let unit = Unit::choose(UnitChoice::Auto, &rec.total());
    PageRun {
        name: run.name.clone(),
        source: run.source,
        function: run.function.clone(),
        backend: run.backend.clone(),
        host: run.host.clone(),
        kernel: run.kernel.clone(),
        cpus: run.cpus,
        netlat_version: rec.netlat_version.clone(),
        start_unix_ms: start as f64 / 1e6,
        duration_ns: rec.end_unix_ns.saturating_sub(start),
        interval_ns: rec.interval_ns,
        threshold_ns: rec.threshold_ns,
        unit: unit.suffix(),
        unit_ns: unit.nanos(),
        buckets: used
            .iter()
            .map(|&i| {
                [
                    buckets::lower_bound(i as usize),
                    buckets::upper_bound(i as usize),
                ]
            })
            .collect(),
        windows,
        slow,
        stacks: rec.stacks.clone(),
        samples: rec
            .samples
            .iter()
            .map(|s| [s.window as u64, s.stack as u64, s.slow, s.fast])
            .collect(),
        frequency_hz: rec.frequency_hz,
        slow_only: run.slow_only,
        meta: meta(run),
    }
}

fn row(name: &str, value: impl ToString) -> [String; 2] {
    [name.to_owned(), value.to_string()]
}

fn meta(run: &Loaded) -> Vec<MetaSection> {
    let rec = &run.recording;
    let mut sections = vec![MetaSection {
        title: "Run".into(),
        rows: vec![
            row("file", format!("{} ({})", run.name, run.source)),
            row("function", &run.function),
            row("backend", &run.backend),
            row("host", &run.host),
            row("kernel", &run.kernel),
            row("CPUs", run.cpus),
            row("netlat", &rec.netlat_version),
            row(
                "start",
                slow_text::wall_clock_rfc3339(rec.start_unix_ns, Zone::Utc),
            ),
            row(
                "end",
                slow_text::wall_clock_rfc3339(rec.end_unix_ns, Zone::Utc),
            ),
            row("window", slow_text::duration(rec.interval_ns)),
            row(
                "slower than",
                rec.threshold_ns
                    .map_or("not recorded".to_owned(), slow_text::duration),
            ),
            row("stack samples", format!("{} Hz", rec.frequency_hz)),
        ],
    }];
    let a = &rec.accounting;
    sections.push(MetaSection {
        title: "Slow calls and samples".into(),
        rows: vec![
            row("over the threshold (kernel's count)", a.over_threshold),
            row("in this file", a.recorded),
            row("lost: record buffer full", a.lost_ring),
            row("over a CPU's 1000 records a second", a.limited),
            row("past the file's cap", a.not_kept),
            row("samples lost (stack not kept)", a.samples_lost),
            row(
                "samples of calls unfinished at the end",
                a.samples_undecided,
            ),
        ],
    });
    if let Some(m) = &run.missed {
        let mut rows = vec![row("program runs skipped", m.program_runs)];
        if let Some(hits) = m.kprobe_hits {
            rows.push(row("kprobe hits missed", hits));
        }
        sections.push(MetaSection {
            title: "Missed by the kernel".into(),
            rows,
        });
    }
    if let Some(c) = &run.conditions {
        let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unreadable)".into());
        sections.push(MetaSection {
            title: "Sysctls at the start (and end, where they moved)".into(),
            rows: c
                .sysctls_start
                .iter()
                .map(|(k, v)| {
                    let end = c.sysctls_end.get(k).filter(|e| *e != v);
                    let text = match end {
                        Some(e) => format!("{} -> {}", value(v), value(e)),
                        None => value(v),
                    };
                    row(k, text)
                })
                .collect(),
        });
        sections.push(MetaSection {
            title: "Kernel counters: growth over the run".into(),
            rows: c
                .netstat_delta
                .iter()
                .map(|(k, v)| row(k, v))
                .chain(c.softnet_delta.iter().map(|s| {
                    row(
                        &format!("softnet CPU{}", s.cpu),
                        format!(
                            "processed {} dropped {} time_squeeze {}",
                            s.processed, s.dropped, s.time_squeeze
                        ),
                    )
                }))
                .collect(),
        });
    }
    sections
}
