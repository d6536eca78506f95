//! `netlat compare`: recorded runs side by side, as Buoyant's article on
//! Linkerd's latency-aware load balancing puts set-ups side by side, with
//! the settings that differ, the kernel counters of each run, and what makes
//! runs not comparable. Pure data in, plain data out; reading the files is
//! system/run_file.rs, rendering render/compare.rs.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{
    experiment_change::{self, Differing, ExperimentChange},
    report::{HistogramReport, SCHEMA_VERSION},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompareError {
    #[error("cannot read {path}: {why}")]
    Unreadable { path: String, why: String },
    #[error("{path} is not a netlat result: {why}")]
    NotAResult { path: String, why: String },
    #[error(
        "{path} is larger than {} MiB: not a netlat result (a run's file is a few kB to a few MB)",
        MAX_FILE_BYTES >> 20
    )]
    TooLarge { path: String },
    #[error(
        "{path} is not a regular file: give a result file (netlat compare does not read pipes or devices)"
    )]
    NotAFile { path: String },
    #[error("{path} has schema {found}, but this netlat reads schema {SCHEMA_VERSION}")]
    Schema { path: String, found: u64 },
    #[error("{first} times {f1} but {other} times {f2}: use --force to compare them anyway")]
    Functions {
        first: String,
        f1: String,
        other: String,
        f2: String,
    },
}

/// A run as named on the command line (the file stem).
pub struct Named {
    pub name: String,
    pub report: HistogramReport,
}

/// Larger than any result netlat writes for comparing (a plain run is a
/// few kB; an hour of 1 s `--interval` windows is ~4 MB): past it, a file
/// is refused before it is parsed. Parsing takes about the file's size
/// again in memory, so this bounds compare's peak.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Just the schema number; anything else in its place, and every other
/// field, is skipped without being kept (a schema that is a 100 MB array
/// used to be built whole as a `serde_json::Value`: 2 GB).
#[derive(Deserialize)]
struct SchemaOnly {
    #[serde(default, deserialize_with = "schema_number")]
    schema: Option<u64>,
}

fn schema_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Number;
    impl<'de> serde::de::Visitor<'de> for Number {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a schema number")
        }
        fn visit_u64<E>(self, v: u64) -> Result<Option<u64>, E> {
            Ok(Some(v))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<u64>, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Option<u64>, A::Error> {
            while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Option<u64>, A::Error> {
            while a
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
    }
    d.deserialize_any(Number)
}

/// Checks the schema before the shape, so a newer file gets the right error.
/// Parses straight into the report, never into a `serde_json::Value` of the
/// whole file (which takes ~17 times the file's size).
pub fn parse(path: &str, text: &str) -> Result<HistogramReport, CompareError> {
    let peek: SchemaOnly = serde_json::from_str(text).map_err(|e| CompareError::NotAResult {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    match peek.schema {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(found) => {
            return Err(CompareError::Schema {
                path: path.to_owned(),
                found,
            });
        }
        None => {
            return Err(CompareError::NotAResult {
                path: path.to_owned(),
                why: "no schema number".into(),
            });
        }
    }
    serde_json::from_str(text).map_err(|e| CompareError::NotAResult {
        path: path.to_owned(),
        why: e.to_string(),
    })
}

pub fn check_functions(runs: &[Named], force: bool) -> Result<(), CompareError> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    match runs
        .iter()
        .find(|r| r.report.function != first.report.function)
    {
        Some(other) if !force => Err(CompareError::Functions {
            first: first.name.clone(),
            f1: first.report.function.clone(),
            other: other.name.clone(),
            f2: other.report.function.clone(),
        }),
        _ => Ok(()),
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Comparison {
    pub runs: Vec<String>,
    pub functions: Vec<String>,
    /// Why the runs may not be comparable (other host, kernel, backend,
    /// CPUs, the same run twice); empty when nothing stands out.
    pub notes: Vec<String>,
    /// (label, value per run); latency values in nanoseconds.
    pub rows: Vec<Row>,
    /// Sysctls (at each run's start) whose values are not all equal.
    pub sysctls_differing: Vec<Differing>,
    /// Kernel counter growth per run (absent when a run did not record it).
    pub counters: Vec<Counter>,
    /// What `netlat experiment` changed between the runs, as the runs say.
    pub experiments: Vec<ExperimentChange>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Row {
    pub label: &'static str,
    /// Whether the value is a duration in nanoseconds.
    pub duration: bool,
    pub values: Vec<Option<Num>>,
}

/// A row's value: counts and nanoseconds stay integers (exact past 2^53,
/// where an f64 is not); rates and means are real.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Num {
    Int(u64),
    Real(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(n) => n as f64,
            Num::Real(x) => x,
        }
    }

    /// Whole nanoseconds (a mean rounded toward zero).
    pub fn as_u64(self) -> u64 {
        match self {
            Num::Int(n) => n,
            Num::Real(x) => x as u64,
        }
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Counter {
    pub counter: String,
    pub values: Vec<Option<u64>>,
}

pub fn compare(runs: &[Named]) -> Comparison {
    let reports: Vec<&HistogramReport> = runs.iter().map(|r| &r.report).collect();
    let row = |label, duration, f: &dyn Fn(&HistogramReport) -> Option<Num>| Row {
        label,
        duration,
        values: reports.iter().map(|r| f(r)).collect(),
    };
    let pct = |r: &HistogramReport, pick: fn(&crate::model::report::Percentiles) -> u64| {
        r.summary.percentiles_ns.as_ref().map(|p| Num::Int(pick(p)))
    };
    let rows = vec![
        row("count", false, &|r| Some(Num::Int(r.summary.count))),
        row("calls/s", false, &|r| {
            (r.window_ns > 0)
                .then(|| Num::Real(r.summary.count as f64 / (r.window_ns as f64 / 1e9)))
        }),
        row("min", true, &|r| r.summary.min_ns.map(Num::Int)),
        row("mean", true, &|r| r.summary.mean_ns.map(Num::Real)),
        row("p50", true, &|r| pct(r, |p| p.p50)),
        row("p90", true, &|r| pct(r, |p| p.p90)),
        row("p99", true, &|r| pct(r, |p| p.p99)),
        row("p99.9", true, &|r| pct(r, |p| p.p99_9)),
        row("max", true, &|r| r.summary.max_ns.map(Num::Int)),
    ];
    let sysctl_names: BTreeSet<&String> = reports
        .iter()
        .filter_map(|r| r.conditions.as_ref())
        .flat_map(|c| c.sysctls_start.keys())
        .collect();
    let experiments = experiment_change::experiments(&reports);
    let mut sysctls_differing: Vec<Differing> = sysctl_names
        .iter()
        .copied()
        .filter_map(|name| {
            let values: Vec<Option<String>> = reports
                .iter()
                .map(|r| {
                    r.conditions
                        .as_ref()
                        .and_then(|c| c.sysctls_start.get(name).cloned().flatten())
                })
                .collect();
            values.iter().any(|v| v != &values[0]).then(|| Differing {
                sysctl: name.clone(),
                values,
            })
        })
        .collect();
    sysctls_differing.extend(experiment_change::sysctls(
        &reports,
        &experiments,
        &sysctl_names,
    ));
    let counter_names: BTreeSet<&String> = reports
        .iter()
        .filter_map(|r| r.conditions.as_ref())
        .flat_map(|c| c.netstat_delta.keys())
        .collect();
    let mut counters: Vec<Counter> = counter_names
        .into_iter()
        .map(|name| Counter {
            counter: name.clone(),
            values: reports
                .iter()
                .map(|r| {
                    r.conditions
                        .as_ref()
                        .and_then(|c| c.netstat_delta.get(name).copied())
                })
                .collect(),
        })
        .collect();
    for (label, pick) in [
        (
            "softnet processed",
            (|s: &crate::model::softnet::SoftnetRow| s.processed) as fn(&_) -> u64,
        ),
        ("softnet dropped", |s| s.dropped),
        ("softnet time_squeeze", |s| s.time_squeeze),
    ] {
        counters.push(Counter {
            counter: label.to_owned(),
            values: reports
                .iter()
                .map(|r| {
                    r.conditions
                        .as_ref()
                        .map(|c| c.softnet_delta.iter().map(pick).sum())
                })
                .collect(),
        });
    }
    Comparison {
        runs: runs.iter().map(|r| r.name.clone()).collect(),
        functions: reports.iter().map(|r| r.function.clone()).collect(),
        notes: not_comparable(runs),
        rows,
        sysctls_differing,
        counters,
        experiments,
    }
}

/// What differs between the runs besides the tuning under test, each as
/// one sentence naming the runs: numbers from another host, kernel,
/// backend or CPU selection differ for reasons of their own.
pub fn not_comparable(runs: &[Named]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut differs = |what: &str, why: &str, value: &dyn Fn(&HistogramReport) -> String| {
        let values: Vec<String> = runs.iter().map(|r| value(&r.report)).collect();
        if values.iter().any(|v| v != &values[0]) {
            let each: Vec<String> = runs
                .iter()
                .zip(&values)
                .map(|(r, v)| format!("{}: {v}", r.name))
                .collect();
            notes.push(format!("different {what} ({}): {why}", each.join("; ")));
        }
    };
    differs("hosts", "the numbers are not comparable", &|r| {
        r.host.clone()
    });
    differs("kernels", "the numbers are not comparable", &|r| {
        r.kernel.clone()
    });
    differs(
        "backends",
        "each times the function its own way, at its own cost",
        &|r| r.backend.clone(),
    );
    differs(
        "CPU selections",
        "count and calls/s cover different CPUs",
        &|r| match r.cpu {
            Some(cpu) => format!("CPU {cpu} only"),
            None => format!("all {} CPUs", r.cpus),
        },
    );
    for (i, run) in runs.iter().enumerate().skip(1) {
        if let Some(same) = runs[..i].iter().find(|r| r.report == run.report) {
            notes.push(format!(
                "{} and {} are the same run (identical contents: one file given twice, or a copy)",
                same.name, run.name
            ));
        }
    }
    notes
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{
        model::histogram::Histogram,
        model::report::{Conditions, Summary},
    };
    use netlat_common::buckets;

    pub(crate) fn report(
        function: &str,
        ns: u64,
        n: u64,
        tcp_rmem: &str,
        pruned: u64,
    ) -> HistogramReport {
        let mut h = Histogram {
            count: n,
            sum_ns: ns * n,
            min_ns: ns,
            max_ns: ns,
            ..Histogram::default()
        };
        h.buckets[buckets::index(ns)] = n;
        let mut sysctls = std::collections::BTreeMap::new();
        sysctls.insert("net.ipv4.tcp_rmem".to_owned(), Some(tcp_rmem.to_owned()));
        sysctls.insert("net.core.netdev_budget".to_owned(), Some("300".to_owned()));
        sysctls.insert("net.core.netdev_budget_usecs".to_owned(), None);
        let mut netstat = std::collections::BTreeMap::new();
        netstat.insert("PruneCalled".to_owned(), pruned);
        HistogramReport {
            schema: SCHEMA_VERSION,
            function: function.into(),
            backend: "kprobe".into(),
            backend_detail: "kprobe/kretprobe on tcp_collapse".into(),
            host: "h".into(),
            kernel: "6.1".into(),
            cpus: 2,
            start: "2026-11-22T22:00:00Z".into(),
            window_ns: 300_000_000_000,
            cpu: None,
            summary: Summary::from(&h),
            unfinished_calls: Some(0),
            per_cpu: None,
            by: None,
            missed: None,
            windows: None,
            experiment: None,
            conditions: Some(Conditions {
                sysctls_start: sysctls.clone(),
                sysctls_end: sysctls,
                netstat_delta: netstat,
                softnet_delta: vec![],
            }),
        }
    }

    pub(crate) fn named(name: &str, r: HistogramReport) -> Named {
        Named {
            name: name.into(),
            report: r,
        }
    }

    #[test]
    fn before_and_after_tuning_tcp_rmem_as_in_the_latency_spike_story() {
        // tcp_collapse: avg 3 ms with 32 MiB tcp_rmem, under 1 ms with 2 MiB.
        let runs = [
            named(
                "before",
                report("tcp_collapse", 3_000_000, 1552, "4096 5242880 33554432", 30),
            ),
            named(
                "after",
                report("tcp_collapse", 700_000, 592, "4096 1048576 2097152", 2),
            ),
        ];
        check_functions(&runs, false).unwrap();
        let c = compare(&runs);
        assert_eq!(c.runs, ["before", "after"]);
        assert_eq!(c.sysctls_differing.len(), 1, "only tcp_rmem differs");
        assert_eq!(c.sysctls_differing[0].sysctl, "net.ipv4.tcp_rmem");
        let text = crate::render::compare::render(&c);
        println!("{text}");
        assert!(text.contains("count         1552   592 (x0.38)"), "{text}");
        assert!(text.contains("max (ms)      3.00  0.70 (x0.23)"), "{text}");
        assert!(
            text.contains("net.ipv4.tcp_rmem  4096 5242880 33554432  4096 1048576 2097152"),
            "{text}"
        );
        assert!(text.contains("PruneCalled           30  2"), "{text}");
        let max = c.rows.iter().find(|r| r.label == "max").unwrap();
        assert_eq!(
            max.values,
            [Some(Num::Int(3_000_000)), Some(Num::Int(700_000))]
        );
        // Machine output carries the same facts.
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json["sysctls_differing"][0]["values"][1],
            "4096 1048576 2097152"
        );
    }

    #[test]
    fn refuses_other_schemas_other_functions_and_non_results() {
        let mut v = serde_json::to_value(report("net_rx_action", 1000, 1, "1 2 3", 0)).unwrap();
        v["schema"] = serde_json::json!(SCHEMA_VERSION + 1);
        let err = parse("new.json", &v.to_string()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "new.json has schema {}, but this netlat reads schema {SCHEMA_VERSION}",
                SCHEMA_VERSION + 1
            )
        );
        assert!(matches!(
            parse("x.json", "{\"a\": 1}"),
            Err(CompareError::NotAResult { .. })
        ));
        assert!(matches!(
            parse("x.json", "not json"),
            Err(CompareError::NotAResult { .. })
        ));

        let runs = [
            named("a", report("net_rx_action", 1000, 1, "1 2 3", 0)),
            named("b", report("tcp_collapse", 1000, 1, "1 2 3", 0)),
        ];
        let err = check_functions(&runs, false).unwrap_err().to_string();
        assert_eq!(
            err,
            "a times net_rx_action but b times tcp_collapse: use --force to compare them anyway"
        );
        assert!(check_functions(&runs, true).is_ok());
    }

    #[test]
    fn says_when_runs_are_not_comparable() {
        let base = report("net_rx_action", 1000, 100, "1 2 3", 0);
        let same = [named("a", base.clone()), named("b", base.clone())];
        assert_eq!(
            not_comparable(&same),
            ["a and b are the same run (identical contents: one file given twice, or a copy)"]
        );
        let mut other = base.clone();
        other.start = "2026-11-22T23:00:00Z".into();
        assert!(not_comparable(&[named("a", base.clone()), named("b", other.clone())]).is_empty());

        let mut one_cpu = other.clone();
        one_cpu.cpu = Some(1);
        one_cpu.host = "other-host".into();
        one_cpu.kernel = "6.12".into();
        one_cpu.backend = "raw_tp".into();
        let runs = [named("all", base.clone()), named("cpu1", one_cpu)];
        let notes = not_comparable(&runs);
        assert_eq!(
            notes,
            [
                "different hosts (all: h; cpu1: other-host): the numbers are not comparable",
                "different kernels (all: 6.1; cpu1: 6.12): the numbers are not comparable",
                "different backends (all: kprobe; cpu1: raw_tp): each times the function its own way, at its own cost",
                "different CPU selections (all: all 2 CPUs; cpu1: CPU 1 only): count and calls/s cover different CPUs",
            ]
        );
        let c = compare(&runs);
        assert_eq!(c.notes, notes);
        let text = crate::render::compare::render(&c);
        assert!(
            text.starts_with("Note: different hosts (all: h; cpu1: other-host)"),
            "{text}"
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["notes"][3], notes[3]);
    }

    #[test]
    fn file_strings_never_reach_the_terminal_as_control_sequences() {
        let mut evil = report("net_rx_action", 1000, 100, "1 2 3", 0);
        evil.host = "h\u{1b}]0;owned\u{7}".into();
        if let Some(c) = evil.conditions.as_mut() {
            c.sysctls_start
                .insert("net.core.x\u{1b}[2J".into(), Some("\r1".into()));
        }
        let runs = [
            named("a", report("net_rx_action", 1000, 100, "1 2 3", 0)),
            named("b\u{1b}[31m", evil),
        ];
        let text = crate::render::compare::render(&compare(&runs));
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("b\\u{1b}[31m"), "{text}");
        assert!(text.contains("net.core.x\\u{1b}[2J"), "{text}");
    }

    /// Hostile JSON: each refused in one line, without building what it
    /// holds (a schema that is a huge array is skipped, not kept).
    #[test]
    fn hostile_json_is_refused_in_one_line() {
        let huge_schema = format!("{{\"schema\": [{}1]}}", "1,".repeat(100_000));
        let deep = format!(
            "{{\"schema\": 1, \"x\": {}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let huge_number = format!("{{\"schema\": 1{}}}", "0".repeat(100_000));
        let duplicate = serde_json::to_string(&report("f", 1, 1, "1", 0))
            .unwrap()
            .replacen('{', "{\"function\": \"g\", ", 1);
        for (text, why) in [
            (huge_schema.as_str(), "no schema number"),
            (deep.as_str(), "recursion limit exceeded"),
            (huge_number.as_str(), "number out of range"),
            (duplicate.as_str(), "duplicate field `function`"),
            (
                "{\"schema\": 1, \"function\": 7}",
                "invalid type: integer `7`, expected a string",
            ),
            ("{\"schema\": \"1\"}", "no schema number"),
            ("{\"schema\": -1}", "no schema number"),
            ("[1]", "invalid type: sequence"),
        ] {
            let err = parse("x.json", text).unwrap_err().to_string();
            assert!(err.starts_with("x.json is not a netlat result: "), "{err}");
            assert!(err.contains(why), "{why}: {err}");
            assert!(!err.contains('\n'));
        }
        let mut v = serde_json::to_value(report("f", 1, 1, "1", 0)).unwrap();
        v["schema"] = serde_json::json!(u64::MAX);
        assert_eq!(
            parse("x.json", &v.to_string()).unwrap_err(),
            CompareError::Schema {
                path: "x.json".into(),
                found: u64::MAX
            }
        );
    }

    /// Counts past 2^53 are not f64-exact: shown and serialized as integers.
    #[test]
    fn counts_past_2_pow_53_stay_exact() {
        let mut big = report("f", 1000, 1, "1", 0);
        big.summary.count = (1 << 53) + 1;
        let c = compare(&[named("a", big.clone()), named("b", big)]);
        let text = crate::render::compare::render(&c);
        assert!(
            text.contains("count       9007199254740993  9007199254740993 (x1.00)"),
            "{text}"
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains("[9007199254740993,9007199254740993]"),
            "{json}"
        );
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = report("tcp_collapse", 123_456, 7, "4096 131072 6291456", 3);
        let text = crate::render::histogram::json(&r, false);
        assert_eq!(parse("r.json", &text).unwrap(), r);
    }
}
