//! The files in deploy/ are checked, not decorative: promtool validates the
//! Prometheus configs and alert rules and runs the rules' unit tests; the
//! dashboard's and the alerts' queries may name only metrics netlat serves
//! (and that list is checked against netlat's own renderer); the DaemonSet,
//! the image and the scrape configs agree on the port, and on the command
//! line netlat accepts. Needs promtool (`cargo xtask setup`), not root.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use netlat::{
    model::histogram::Histogram,
    model::net_rx::NetRxTally,
    recorder::live::{Exemplar, SkipReason},
    serve::metrics::{DoctorCounters, Format, FunctionLatency, Recording, Scrape, render},
    serve::net_rx_metrics::NetRxScrape,
    system::procfs::softnet::SoftnetRow,
};
use serde_json::Value;

/// Every series name `netlat serve --doctor --softirq --capture ...` exports, plus
/// Prometheus' `up`.
const EXPORTED: &[&str] = &[
    "netlat_build_info",
    "netlat_capture_threshold_seconds",
    "netlat_captures_skipped_total",
    "netlat_captures_total",
    "netlat_function_dropped_entries_total",
    "netlat_function_info",
    "netlat_function_kprobe_missed_total",
    "netlat_function_latency_seconds_bucket",
    "netlat_function_latency_seconds_count",
    "netlat_function_latency_seconds_sum",
    "netlat_function_missed_program_runs_total",
    "netlat_function_unmatched_exits_total",
    "netlat_net_rx_calls_total",
    "netlat_net_rx_ksoftirqd_calls_total",
    "netlat_net_rx_ksoftirqd_wait_seconds_total",
    "netlat_net_rx_packets_total",
    "netlat_net_rx_squeezed_total",
    "netlat_slow_calls_total",
    "netlat_softirq_wait_seconds_bucket",
    "netlat_softirq_wait_seconds_count",
    "netlat_softirq_wait_seconds_sum",
    "netlat_softnet_dropped_total",
    "netlat_softnet_processed_total",
    "netlat_softnet_time_squeeze_total",
    "netlat_sysctl_tcp_rmem_bytes",
    "netlat_tcp_backlog_drop_total",
    "netlat_tcp_listen_overflows_total",
    "netlat_tcp_prune_called_total",
    "netlat_tcp_rcv_collapsed_total",
    "netlat_tcp_retransmitted_segments_total",
    "up",
];

/// The port `netlat serve` listens on unless told otherwise.
const PORT: &str = "9435";

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(relative: &str) -> String {
    let path = deploy().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Runs promtool; (success, stdout + stderr). Missing promtool fails the
/// test: these checks are the point of the file.
fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): it is not installed; run `cargo xtask setup`, which installs Debian's prometheus package"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn promtool_ok(args: &[&str]) -> String {
    let (ok, text) = promtool(args);
    assert!(ok, "promtool {} failed:\n{text}", args.join(" "));
    text
}

/// The metric names a PromQL expression selects: every identifier that is
/// not a function, an aggregation, a keyword, a label (in `{...}` or after
/// by/without/on/ignoring/group_*), a string, a number or a duration.
fn metric_names(expr: &str) -> Vec<String> {
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: &[&str] = &[
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
    ];
    let c: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    // Past the closing delimiter, skipping quoted text inside.
    let skip_to = |mut i: usize, close: char| {
        while i < c.len() && c[i] != close {
            if matches!(c[i], '"' | '\'' | '`') {
                let q = c[i];
                i += 1;
                while i < c.len() && c[i] != q {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
            }
            i += 1;
        }
        i + 1
    };
    let ident = |ch: char| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':';
    while i < c.len() {
        match c[i] {
            q @ ('"' | '\'' | '`') => {
                i += 1;
                while i < c.len() && c[i] != q {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' => i = skip_to(i + 1, '}'),
            '[' => i = skip_to(i + 1, ']'),
            '#' => i = skip_to(i + 1, '\n'),
            // Grafana variables: $name, ${name}.
            '$' if c.get(i + 1) == Some(&'{') => i = skip_to(i + 2, '}'),
            '$' => {
                i += 1;
                while i < c.len() && ident(c[i]) {
                    i += 1;
                }
            }
            // Numbers and durations: 0.99, 2e-3, 5m, 0x1f.
            ch if ch.is_ascii_digit()
                || (ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                // An exponent's sign follows its e.
                let exponent_sign =
                    |i: usize| matches!(c[i], '+' | '-') && matches!(c[i - 1], 'e' | 'E');
                while i < c.len() && (ident(c[i]) || c[i] == '.' || exponent_sign(i)) {
                    i += 1;
                }
            }
            ch if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' => {
                let start = i;
                while i < c.len() && ident(c[i]) {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                let mut next = i;
                while next < c.len() && c[next].is_whitespace() {
                    next += 1;
                }
                let call = c.get(next) == Some(&'(');
                if LABEL_LISTS.contains(&word.as_str()) {
                    if call {
                        i = skip_to(next + 1, ')');
                    }
                } else if !call
                    && !AGGREGATIONS.contains(&word.as_str())
                    && !KEYWORDS.contains(&word.as_str())
                {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_name_extraction() {
    let expr = "histogram_quantile(0.99, sum by (le, node) (rate(netlat_function_latency_seconds_bucket{function=\"net_rx_action\",node=~\"$node\"}[$__rate_interval]))) > 2e-3\n\
                # a comment naming not_a_metric\n\
                or on (node) group_left (cpu) up{job=~\"netlat.*\"} offset 5m == bool 0";
    assert_eq!(
        metric_names(expr),
        ["netlat_function_latency_seconds_bucket", "up"]
    );
    assert_eq!(
        metric_names("sum(rate(a_total[5m])) / sum without (cpu) (rate(b_total[${__range}]))"),
        ["a_total", "b_total"]
    );
}

fn assert_exported(what: &str, expr: &str) {
    let names = metric_names(expr);
    assert!(!names.is_empty(), "{what}: no metric in `{expr}`");
    for name in names {
        assert!(
            EXPORTED.contains(&name.as_str()),
            "{what}: `{name}` is not a metric netlat serves (in `{expr}`)"
        );
    }
}

/// A scrape with every part present: a captured function with its latest
/// capture, and the --doctor counters.
fn full_scrape() -> Scrape {
    Scrape {
        functions: vec![FunctionLatency {
            function: "net_rx_action".into(),
            backend: "raw_tp",
            series: vec![(None, Histogram::default())],
            missed: Some(netlat::model::report::Missed {
                program_runs: netlat::model::report::KernelCount::Counted(0),
                kprobe_hits: Some(netlat::model::report::KernelCount::Counted(0)),
            }),
            recording: Some(Recording {
                threshold: std::time::Duration::from_millis(5),
                slow_calls: Some(3),
                captures: 1,
                skipped: SkipReason::ALL.iter().map(|r| (r.label(), 0)).collect(),
                exemplar: Some(Exemplar {
                    capture_id: "20261203T031200.123456Z-net_rx_action".into(),
                    duration_ns: 12_300_000,
                    unix_s: 1_764_731_520.123,
                    cpu: 0,
                }),
            }),
        }],
        tcp_rmem: Some([4096, 131072, 6291456]),
        doctor: Some(DoctorCounters {
            softnet: vec![SoftnetRow::default()],
            tcp_ext: [
                "PruneCalled",
                "TCPRcvCollapsed",
                "TCPBacklogDrop",
                "ListenOverflows",
            ]
            .map(|k| (k.to_owned(), 0))
            .into(),
            retrans_segs: Some(0),
        }),
        net_rx: Some(NetRxScrape {
            per_cpu: vec![(0, NetRxTally::default())],
            devices: vec![("eth0".into(), vec![1])],
            wait_per_cpu: false,
        }),
    }
}

/// What netlat's own renderer puts on the page with every part present:
/// EXPORTED must not drift from it.
#[test]
fn exported_list_matches_netlat_renderer() {
    let page = render(full_scrape(), Format::Text);
    let rendered: BTreeSet<&str> = page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or(l))
        .collect();
    let expected: BTreeSet<&str> = EXPORTED.iter().copied().filter(|&n| n != "up").collect();
    assert_eq!(rendered, expected, "page:\n{page}");
}

#[test]
fn prometheus_config_is_valid() {
    let out = promtool_ok(&["check", "config", "prometheus.yml"]);
    assert!(out.contains("1 rule files found"), "{out}");
}

/// Debian's promtool (what `cargo xtask setup` installs) is built without
/// Kubernetes service discovery and rejects the file for that alone; then
/// everything else in it is checked with the discovery swapped for a file
/// one, and the discovery itself is checked here.
#[test]
fn kubernetes_scrape_config_is_valid() {
    let (ok, out) = promtool(&["check", "config", "prometheus-kubernetes.yml"]);
    if ok {
        return;
    }
    assert!(
        out.contains("field kubernetes_sd_configs not found"),
        "promtool check config prometheus-kubernetes.yml failed:\n{out}"
    );
    println!("this promtool has no Kubernetes discovery; checking the rest of the file");
    let text = read("prometheus/prometheus-kubernetes.yml");
    let mut swapped = String::new();
    let mut sd = String::new();
    let mut sd_indent = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(n) = sd_indent {
            if line.trim().is_empty() || indent > n {
                sd.push_str(line.trim());
                sd.push('\n');
                continue;
            }
            sd_indent = None;
        }
        if line.trim() == "kubernetes_sd_configs:" {
            sd_indent = Some(indent);
            swapped.push_str(&format!(
                "{0}file_sd_configs:\n{0}  - files: [netlat-targets.json]\n",
                " ".repeat(indent)
            ));
        } else if line.trim() == "- alerts.yml" {
            let rules = deploy().join("prometheus/alerts.yml");
            swapped.push_str(&format!("  - {}\n", rules.display()));
        } else {
            swapped.push_str(line);
            swapped.push('\n');
        }
    }
    assert_eq!(sd, "- role: pod\nnamespaces:\nnames: [netlat]\n");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deploy");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("prometheus-kubernetes.yml");
    std::fs::write(&copy, swapped).unwrap();
    promtool_ok(&["check", "config", copy.to_str().unwrap()]);
}

#[test]
fn alert_rules_are_valid_and_their_tests_pass() {
    let out = promtool_ok(&["check", "rules", "alerts.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool_ok(&["test", "rules", "alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// (alert name, expr) from alerts.yml, block scalars included.
fn alerts() -> Vec<(String, String)> {
    let text = read("prometheus/alerts.yml");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut name = None;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if let Some(n) = t.strip_prefix("- alert:") {
            name = Some(n.trim().to_owned());
        }
        let Some(value) = t.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        let expr = if value.starts_with(['|', '>']) {
            let indent = line.len() - t.len();
            lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            value.trim_matches(['"', '\'']).to_owned()
        };
        out.push((name.clone().expect("expr before any alert"), expr));
    }
    out
}

#[test]
fn alerts_name_only_exported_metrics_and_are_all_tested() {
    let alerts = alerts();
    assert_eq!(alerts.len(), 10, "{alerts:?}");
    let text = read("prometheus/alerts.yml");
    assert_eq!(text.matches("summary:").count(), alerts.len());
    assert_eq!(text.matches("description:").count(), alerts.len());
    let tests = read("prometheus/alerts_test.yml");
    let test_lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for (name, expr) in &alerts {
        assert_exported(name, expr);
        // Each alert must be seen both firing and silent in alerts_test.yml.
        let cases: Vec<&str> = test_lines
            .windows(2)
            .filter(|w| w[0] == format!("alertname: {name}"))
            .map(|w| w[1])
            .collect();
        assert!(
            cases.contains(&"exp_alerts: []"),
            "{name}: alerts_test.yml never checks that it stays silent"
        );
        assert!(
            cases.contains(&"exp_alerts:"),
            "{name}: alerts_test.yml never checks that it fires"
        );
    }
}

/// Every query on the dashboard: (where, expr). Grafana's label_values()
/// keeps its selector only.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?");
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{title}: target without expr"));
                out.push((format!("panel {title:?}"), expr.to_owned()));
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]
            .as_str()
            .or(v["query"]["query"].as_str())
            .unwrap();
        let selector = q
            .strip_prefix("label_values(")
            .and_then(|s| s.rsplit_once(','))
            .map_or(q, |(s, _)| s);
        out.push((format!("variable {}", v["name"]), selector.to_owned()));
    }
    out
}

fn dashboard() -> Value {
    serde_json::from_str(&read("grafana/netlat-dashboard.json")).expect("the dashboard is not JSON")
}

#[test]
fn dashboard_names_only_exported_metrics_and_shows_them_all() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion"
    );
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for v in ["DS_PROMETHEUS", "node", "function"] {
        assert!(vars.contains(&v), "no ${v} variable: {vars:?}");
    }
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate panel id {}",
            p["id"]
        );
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
        }
    }
    let queries = dashboard_queries(&d);
    let mut used = BTreeSet::new();
    for (what, expr) in &queries {
        assert_exported(what, expr);
        used.extend(metric_names(expr));
    }
    let missing: Vec<&&str> = EXPORTED.iter().filter(|n| !used.contains(**n)).collect();
    assert!(missing.is_empty(), "the dashboard never shows {missing:?}");
}

/// Every dashboard target, with its panel's title.
fn dashboard_targets(dashboard: &Value) -> Vec<(String, Value)> {
    fn panels(list: &Value, out: &mut Vec<(String, Value)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?");
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((title.to_owned(), t.clone()));
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    out
}

/// Exemplars (a captured call's capture_id) are asked for on exactly the
/// dashboard queries of the series netlat writes them on, as its renderer
/// shows when a capture exists.
#[test]
fn exemplars_are_shown_where_netlat_puts_them() {
    let page = render(full_scrape(), Format::OpenMetrics);
    let carriers: BTreeSet<&str> = page
        .lines()
        .filter(|l| l.contains(" # {capture_id=\""))
        .map(|l| l.split(['{', ' ']).next().unwrap_or(l))
        .collect();
    assert_eq!(
        carriers,
        BTreeSet::from(["netlat_function_latency_seconds_bucket"]),
        "page:\n{page}"
    );
    let mut shown = 0;
    for (title, t) in dashboard_targets(&dashboard()) {
        let expr = t["expr"].as_str().unwrap();
        let carries = metric_names(expr)
            .iter()
            .any(|n| carriers.contains(n.as_str()));
        let asks = t["exemplar"] == true;
        assert_eq!(
            asks, carries,
            "panel {title:?}: exemplar should be {carries} for `{expr}`"
        );
        shown += usize::from(asks);
    }
    assert!(shown >= 2, "exemplars on {shown} queries");
}

/// The flight recorder's alerts and panels: a capture and a capture lost to
/// the disk each have an alert, and every `reason` they and the dashboard
/// select is one netlat counts.
#[test]
fn capture_alerts_and_panels_use_the_reasons_netlat_counts() {
    let reasons: Vec<&str> = SkipReason::ALL.iter().map(|r| r.label()).collect();
    let alerts = alerts();
    let expr_of = |name: &str| {
        alerts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.as_str())
            .unwrap_or_else(|| panic!("no alert {name}"))
    };
    assert!(
        metric_names(expr_of("NetlatCaptureTaken")) == ["netlat_captures_total"],
        "{}",
        expr_of("NetlatCaptureTaken")
    );
    let disk = expr_of("NetlatCaptureSkippedDisk");
    assert!(
        metric_names(disk) == ["netlat_captures_skipped_total"]
            && disk.contains("{reason=\"disk\"}"),
        "{disk}"
    );
    let queries = dashboard_queries(&dashboard());
    let exprs = alerts
        .iter()
        .map(|(n, e)| (format!("alert {n}"), e.clone()))
        .chain(queries);
    for (what, expr) in exprs {
        for (at, _) in expr.match_indices("reason=") {
            let value = expr[at + "reason=".len()..]
                .trim_start_matches('~')
                .split('"')
                .nth(1)
                .unwrap_or_else(|| panic!("{what}: unquoted reason in `{expr}`"));
            assert!(
                reasons.contains(&value),
                "{what}: netlat counts no skip reason {value:?} (it has {reasons:?})"
            );
        }
    }
}

/// promtool parses every dashboard query, as a recording rule with the
/// Grafana variables filled in.
#[test]
fn dashboard_queries_parse() {
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (what, expr)) in dashboard_queries(&dashboard()).iter().enumerate() {
        let mut filled = expr.replace("$__rate_interval", "5m");
        while let Some(at) = filled.find('$') {
            let end = filled[at + 1..]
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .map_or(filled.len(), |n| at + 1 + n);
            filled.replace_range(at..end, ".*");
        }
        rules.push_str(&format!(
            "      # {what}\n      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&filled).unwrap()
        ));
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deploy");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dashboard-queries.yml");
    std::fs::write(&file, &rules).unwrap();
    let (ok, out) = promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(ok, "promtool rejects a dashboard query:\n{out}\n{rules}");
}

/// Lines that are not comments.
fn code(text: &str) -> Vec<&str> {
    text.lines()
        .map(|l| l.split(" #").next().unwrap_or(l).trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The value of the first `key: value` line.
fn value<'a>(lines: &[&'a str], key: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key}"))
        .trim()
        .trim_matches('"')
}

#[test]
fn daemonset_privileges_and_ports() {
    let text = read("kubernetes/daemonset.yaml");
    let lines = code(&text);
    assert_eq!(value(&lines, "hostNetwork"), "true");
    for key in ["hostPID", "hostIPC", "privileged"] {
        for l in &lines {
            if let Some(v) = l.strip_prefix(key).and_then(|v| v.strip_prefix(':')) {
                assert_eq!(v.trim(), "false", "{key} must stay unset or false");
            }
        }
    }
    assert_eq!(value(&lines, "add"), "[BPF, PERFMON]");
    assert_eq!(value(&lines, "drop"), "[ALL]");
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "automountServiceAccountToken: false")
            .count(),
        2,
        "no API token, for the account and the pod"
    );
    // netlat listens on the node's IP, on the port everything else names.
    let listen = lines
        .windows(2)
        .find(|w| w[0] == "- --listen")
        .map(|w| w[1].trim_start_matches("- "))
        .expect("no --listen argument");
    assert_eq!(listen, format!("$(NODE_IP):{PORT}"));
    assert_eq!(value(&lines, "fieldPath"), "status.hostIP");
    assert_eq!(value(&lines, "containerPort"), PORT);
    assert_eq!(value(&lines, "prometheus.io/port"), PORT);
    let port_name = lines
        .windows(2)
        .find(|w| w[0] == "ports:")
        .map(|w| w[1])
        .expect("no ports");
    assert_eq!(port_name, "- name: metrics");

    // The Kubernetes scrape job finds these pods by namespace, label and
    // port name.
    let k8s = read("prometheus/prometheus-kubernetes.yml");
    assert!(k8s.contains("names: [netlat]") && text.contains("namespace: netlat"));
    assert!(
        k8s.contains("__meta_kubernetes_pod_label_app_kubernetes_io_name]\n        regex: netlat")
    );
    assert!(text.contains("app.kubernetes.io/name: netlat"));
    assert!(k8s.contains("__meta_kubernetes_pod_container_port_name]\n        regex: metrics"));
    assert!(
        k8s.contains(
            "source_labels: [__meta_kubernetes_pod_node_name]\n        target_label: node"
        )
    );
}

/// The DaemonSet container's args, as written.
fn daemonset_args(lines: &[&str]) -> Vec<String> {
    let start = lines.iter().position(|l| *l == "args:").expect("no args") + 1;
    lines[start..]
        .iter()
        .map_while(|l| l.strip_prefix("- "))
        .map(str::to_owned)
        .collect()
}

/// The flight recorder runs on every node and its captures outlive the
/// pod: --capture-dir is on a writable hostPath at the same path on the
/// node, and the volume is its parent, so netlat creates the directory
/// itself (0700) instead of finding the kubelet's 0755 one.
#[test]
fn daemonset_keeps_captures_on_the_node() {
    let text = read("kubernetes/daemonset.yaml");
    let lines = code(&text);
    let args = daemonset_args(&lines);
    let after = |flag: &str| {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect::<Vec<_>>()
    };
    let captured: BTreeSet<&str> = after("--capture")
        .iter()
        .map(|c| c.split_once('=').expect("FUNCTION=THRESHOLD").0)
        .collect();
    assert_eq!(
        captured,
        BTreeSet::from(["net_rx_action", "tcp_collapse"]),
        "{args:?}"
    );
    let dir = after("--capture-dir");
    assert_eq!(dir.len(), 1, "{args:?}");
    let dir = Path::new(dir[0]);
    assert_eq!(value(&lines, "readOnlyRootFilesystem"), "true");

    // - name: N / mountPath: M [/ readOnly: R]
    let mount = lines
        .windows(3)
        .find(|w| {
            w[0].starts_with("- name: ")
                && w[1]
                    .strip_prefix("mountPath: ")
                    .is_some_and(|m| dir.parent() == Some(Path::new(m)))
        })
        .unwrap_or_else(|| panic!("no volume mounted at the parent of {}", dir.display()));
    assert_ne!(mount[2], "readOnly: true", "{mount:?}");
    let name = mount[0].trim_start_matches("- name: ");
    let mount_path = mount[1].trim_start_matches("mountPath: ");
    // - name: N / hostPath: / path: P / type: T
    let volume = lines
        .windows(4)
        .find(|w| w[0] == format!("- name: {name}") && w[1] == "hostPath:")
        .unwrap_or_else(|| panic!("volume {name} is not a hostPath"));
    assert_eq!(volume[2], format!("path: {mount_path}"), "{volume:?}");
    assert_eq!(volume[3], "type: DirectoryOrCreate", "{volume:?}");
}

/// The flags the image and the DaemonSet pass exist, and the single-host
/// target is netlat's default address.
#[test]
fn command_lines_match_netlat() {
    let out = Command::new(env!("CARGO_BIN_EXE_netlat"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    let default = format!("[default: 127.0.0.1:{PORT}]");
    assert!(
        help.contains(&default),
        "netlat serve's default listen address changed:\n{help}"
    );
    let single = read("prometheus/prometheus.yml");
    assert!(
        single.contains(&format!("targets: [\"127.0.0.1:{PORT}\"]")),
        "{single}"
    );

    let containerfile = read("Containerfile");
    let cmd = code(&containerfile)
        .into_iter()
        .find(|l| l.starts_with("CMD "))
        .expect("no CMD");
    assert_eq!(
        cmd,
        format!("CMD [\"serve\", \"--listen\", \"0.0.0.0:{PORT}\", \"--doctor\"]")
    );
    let daemonset = read("kubernetes/daemonset.yaml");
    let flags = code(&daemonset)
        .into_iter()
        .filter_map(|l| l.strip_prefix("- --"))
        .chain(["listen", "doctor"])
        .map(|f| format!("--{f}"))
        .collect::<Vec<_>>();
    assert!(flags.len() >= 4, "{flags:?}");
    for flag in flags {
        assert!(help.contains(&flag), "netlat serve has no {flag}:\n{help}");
    }
    // And their values parse: clap checks each value as it reads it, so
    // with --help last nothing runs and a bad value still fails.
    let args: Vec<String> = daemonset_args(&code(&daemonset))
        .into_iter()
        .map(|a| a.replace("$(NODE_IP)", "10.0.0.1"))
        .chain(["--help".to_owned()])
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_netlat"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "netlat {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The image is the static binary alone: built FROM scratch (no registry
/// pull, no base image to patch), nothing run at build time. `cargo xtask
/// test` builds it and checks the result; this checks the file itself.
#[test]
fn containerfile_is_the_static_binary_alone() {
    let containerfile = read("Containerfile");
    let lines = code(&containerfile);
    let from: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from, [&"FROM scratch"], "{containerfile}");
    assert!(
        lines.contains(&"COPY netlat /usr/local/bin/netlat"),
        "{containerfile}"
    );
    assert!(
        lines.contains(&"ENTRYPOINT [\"/usr/local/bin/netlat\"]"),
        "{containerfile}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("RUN ")),
        "{containerfile}"
    );
}

/// Splits a command line as a shell would for these plain commands:
/// whitespace between words, double quotes around one.
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for ch in command.chars() {
        match ch {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    out.extend(Some(word).filter(|w| !w.is_empty()));
    out
}

/// The netlat commands the alerts tell the on-call to run, and the ones
/// deploy/README.md shows at a prompt, parse as netlat reads them (with
/// --help last nothing runs, and a bad flag or value still fails).
#[test]
fn commands_the_deploy_files_give_parse() {
    let alerts = code(&read("prometheus/alerts.yml")).join(" ");
    let mut commands: Vec<String> = alerts
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            span.strip_prefix("netlat ").or_else(|| {
                span.split_once(" -- /usr/local/bin/netlat ")
                    .map(|(_, c)| c)
            })
        })
        .map(|c| {
            c.replace("{{ $labels.instance }}", "10.0.0.1:9435")
                .replace("{{ $labels.pod }}", "netlat-a1b2c")
        })
        .collect();
    let readme = read("README.md");
    commands.extend(readme.lines().filter_map(|l| {
        let l = l.trim().strip_prefix("$ ")?;
        let c = l
            .strip_prefix("netlat ")
            .or_else(|| l.split_once(" -- /usr/local/bin/netlat ").map(|(_, c)| c))?;
        Some(c.split(" #").next().unwrap_or(c).to_owned())
    }));
    assert!(
        commands
            .iter()
            .filter(|c| c.starts_with("captures"))
            .count()
            >= 4,
        "{commands:?}"
    );
    for command in &commands {
        assert!(!command.contains("{{"), "a template left in `{command}`");
        let out = Command::new(env!("CARGO_BIN_EXE_netlat"))
            .args(words(command))
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "netlat {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
