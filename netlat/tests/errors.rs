//! Every way a user can get netlat wrong ends in one line on stderr and a
//! non-zero exit: never a panic, a backtrace or a usage dump.

mod common;

use common::{Output, is_root, run, skip};

fn assert_one_line_error(out: &Output, expected: &str) {
    println!("exit {:?}: {}", out.code, out.stderr.trim_end());
    assert!(!out.success, "must fail: {}", out.stdout);
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "one line only:\n{}",
        out.stderr
    );
    assert!(out.stderr.starts_with("Error: "), "{}", out.stderr);
    assert!(
        out.stderr.contains(expected),
        "expected '{expected}' in: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "no report on error: {}", out.stdout);
}

#[test]
fn bad_duration() {
    for bad in ["abc", "0", "-3", "10parsecs"] {
        let out = run(&["histogram", "net_rx_action", bad]);
        assert_one_line_error(&out, "invalid duration");
        assert_eq!(out.code, Some(2));
    }
    let out = run(&["histogram", "net_rx_action", "--interval", "0"]);
    assert_one_line_error(&out, "invalid duration '0'");
}

#[test]
fn too_long_a_duration_says_the_limit() {
    for long in ["1e10", "40years"] {
        let out = run(&["histogram", "net_rx_action", long]);
        assert_one_line_error(&out, "at most 1000000000 seconds (about 31 years)");
    }
}

#[test]
fn an_interval_netlat_cannot_keep_is_refused() {
    let out = run(&["histogram", "net_rx_action", "--interval", "1ms"]);
    assert_one_line_error(&out, "the shortest netlat can keep is 10ms");
}

#[test]
fn function_names_the_kernel_cannot_have_are_refused_at_once() {
    let long = "x".repeat(20_000);
    let started = std::time::Instant::now();
    let out = run(&["histogram", &long, "1"]);
    assert_one_line_error(&out, "the kernel's limit is 511 bytes (KSYM_NAME_LEN)");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let out = run(&["histogram", "", "1"]);
    assert_one_line_error(&out, "the function name is empty");
    let out = run(&["flamegraph", "--during", ""]);
    assert_one_line_error(&out, "the function name is empty");
}

#[test]
fn flamegraph_argument_mistakes() {
    let out = run(&["flamegraph", "-o", "x.svg", "--folded", "x.svg"]);
    assert_one_line_error(&out, "--output and --folded both name x.svg");
    let out = run(&["flamegraph", "net_rx_action", "--duration", "1"]);
    assert_one_line_error(&out, "use --during net_rx_action");
    let out = run(&["flamegraph", "--backend", "kprobe", "--duration", "1"]);
    assert_one_line_error(&out, "--during");
    assert!(!std::path::Path::new("x.svg").exists());
    // The cap was there, unsaid: "20000 is not in 1..=10000".
    let out = run(&["flamegraph", "--frequency", "20000", "--duration", "1"]);
    assert_one_line_error(
        &out,
        "20000 Hz is out of range: 1 to 10000 samples per second",
    );
}

#[test]
fn bad_option_values() {
    let out = run(&["histogram", "net_rx_action", "--backend", "dtrace"]);
    assert_one_line_error(&out, "invalid value 'dtrace' for '--backend");
    let out = run(&["histogram", "net_rx_action", "--unit", "parsec"]);
    assert_one_line_error(&out, "invalid value 'parsec'");
    let out = run(&["histogram", "net_rx_action", "--cpu", "0", "--per-cpu"]);
    assert_one_line_error(&out, "cannot be used with");
    let out = run(&["histogram"]);
    assert_one_line_error(&out, "FUNCTION");
}

#[test]
fn not_root_says_to_use_sudo() {
    if !is_root() {
        let out = run(&["histogram", "net_rx_action", "1"]);
        return assert_one_line_error(&out, "run it with sudo");
    }
    // As root, drop to nobody for the run.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args([common::BIN, "histogram", "net_rx_action", "1"])
        .output();
    let Ok(out) = out else {
        return skip("setpriv (util-linux) is not installed");
    };
    let out = Output {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_one_line_error(&out, "netlat needs root to load eBPF programs");
    assert!(out.stderr.contains("CAP_BPF and CAP_PERFMON"));
}

#[test]
fn unknown_function_suggests_the_closest_names() {
    common::skip_unless_root!(
        "root runs the function check; non-root stops at the privilege check"
    );
    let out = run(&["histogram", "net_rx_actoin", "1"]);
    assert_one_line_error(&out, "unknown kernel function net_rx_actoin");
    assert!(
        out.stderr.contains("did you mean net_rx_action"),
        "{}",
        out.stderr
    );
    let out = run(&["histogram", "no_such_function_anywhere_xyzzy", "1"]);
    assert_one_line_error(
        &out,
        "unknown kernel function no_such_function_anywhere_xyzzy (not in /proc/kallsyms)",
    );
}

#[test]
fn data_symbol_is_not_a_function() {
    common::skip_unless_root!("needs root");
    // Which data symbols kallsyms lists depends on CONFIG_KALLSYMS_ALL;
    // section markers such as __start_rodata are there either way.
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let Some(data) = kallsyms.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 3 && matches!(f[1], "D" | "R" | "B")).then(|| f[2].to_owned())
    }) else {
        return skip("kallsyms lists no data symbols");
    };
    let out = run(&["histogram", &data, "1"]);
    assert_one_line_error(&out, &format!("{data} is a kernel symbol of type"));
    assert!(out.stderr.contains("not a function"));
}

#[test]
fn tracepoint_backend_only_where_an_exact_equivalent_exists() {
    common::skip_unless_root!("needs root");
    let out = run(&["histogram", "--backend", "tracepoint", "tcp_collapse", "1"]);
    assert_one_line_error(&out, "tcp_collapse has no exact tracepoint equivalent");
}

#[test]
fn missing_kprobes_and_fentry_are_explained() {
    common::skip_unless_root!("needs root");
    if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        return skip("this kernel has kprobes; the VM tests cover them");
    }
    let out = run(&["histogram", "--backend", "kprobe", "net_rx_action", "1"]);
    assert_one_line_error(
        &out,
        "kprobes are not available in this kernel (CONFIG_KPROBES); net_rx_action can use --backend tracepoint",
    );
    // No tracepoint equivalent: auto must say why each backend failed.
    let out = run(&["histogram", "tcp_collapse", "1"]);
    assert_one_line_error(&out, "cannot trace tcp_collapse on this kernel:");
    assert!(
        out.stderr.contains("kprobe: kprobes are not available"),
        "{}",
        out.stderr
    );
    let out = run(&["histogram", "--backend", "fentry", "net_rx_action", "1"]);
    if out.success {
        return skip("fentry works on this kernel");
    }
    assert_one_line_error(&out, "fentry");
}

#[test]
fn no_such_cpu() {
    common::skip_unless_root!("needs root");
    let out = run(&["histogram", "net_rx_action", "1", "--cpu", "4096"]);
    assert_one_line_error(&out, "--cpu 4096: no such online CPU");
}

#[test]
fn by_rcvbuf_needs_a_socket_argument_and_an_argument_reading_backend() {
    common::skip_unless_root!("needs root");
    // The BTF check comes first, so this holds on any kernel with BTF.
    let out = run(&["histogram", "net_rx_action", "1", "--by", "rcvbuf"]);
    assert_one_line_error(
        &out,
        "--by rcvbuf needs a function whose first argument is a struct sock *, and net_rx_action's is",
    );
    let out = run(&["histogram", "no_such_fn_netlat", "1", "--by", "rcvbuf"]);
    assert_one_line_error(
        &out,
        "--by rcvbuf: no_such_fn_netlat is not in the kernel's BTF",
    );
    let out = run(&[
        "histogram",
        "--by",
        "rcvbuf",
        "--per-cpu",
        "tcp_collapse",
        "1",
    ]);
    assert_one_line_error(&out, "cannot be used with");
    if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        return skip("this kernel has kprobes; the VM tests cover --by rcvbuf");
    }
    let out = run(&["histogram", "tcp_sendmsg", "1", "--by", "rcvbuf"]);
    assert_one_line_error(&out, "cannot trace tcp_sendmsg on this kernel:");
}

#[test]
fn softirq_options_as_for_histogram() {
    for bad in ["abc", "0", "-3"] {
        let out = run(&["softirq", bad]);
        assert_one_line_error(&out, "invalid duration");
    }
    let out = run(&["softirq", "1", "--backend", "dtrace"]);
    assert_one_line_error(&out, "invalid value 'dtrace' for '--backend");
    let out = run(&["softirq", "1", "--unit", "parsec"]);
    assert_one_line_error(&out, "invalid value 'parsec'");
    let out = run(&["softirq", "1", "--frobnicate"]);
    assert_one_line_error(&out, "--frobnicate");
    if !is_root() {
        let out = run(&["softirq", "1"]);
        return assert_one_line_error(&out, "run it with sudo");
    }
    // net_rx_action with kprobes where the kernel has none: the same line
    // histogram gives.
    if !std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        let out = run(&["softirq", "1", "--backend", "kprobe"]);
        assert_one_line_error(&out, "kprobes are not available in this kernel");
    }
}
