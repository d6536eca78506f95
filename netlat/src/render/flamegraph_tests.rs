//! The flame graph command's lines and culprit table against whole
//! expected outputs.
use std::collections::BTreeMap;

use super::*;
use crate::flamegraph::culprit::{culprit_and_a_tail, rank};

fn folded(lines: &[(&str, u64)]) -> BTreeMap<String, u64> {
    lines.iter().map(|(s, n)| (s.to_string(), *n)).collect()
}

fn asked<'a>() -> Asked<'a> {
    Asked {
        function: Some("net_rx_action"),
        slower_than: Some(Duration::from_millis(5)),
        hz: 999,
        duration: Some(Duration::from_secs(30)),
        output: Path::new("flamegraph.svg"),
        folded: Some(Path::new("stacks.folded")),
    }
}

#[test]
fn no_fast_sample_gives_shares_without_the_negligible_tail() {
    let slow = culprit_and_a_tail();
    let r = rank(&slow, Some(&BTreeMap::new()), "net_rx_action");
    let text = culprit_table(
        &r,
        &Calls {
            function: "net_rx_action",
            threshold: Some("1ms"),
            calls: 40,
            fast_calls: 3,
            hz: 999,
        },
    );
    assert_eq!(
        text,
        "Where the slow calls (> 1ms, 40 calls, 10,000 samples) spent their time; no sample landed in the fast calls (3 calls), so these are shares, not a comparison:
  function        share
  tcp_v4_rcv      99.0%
  tcp_collapse    90.0%
  (100 functions under 1% of the samples left out)
"
    );
}

#[test]
fn a_single_slow_call_against_the_fast_ones() {
    let slow = folded(&[("net_rx_action;tcp_prune_queue;tcp_collapse", 40)]);
    let fast = folded(&[("net_rx_action;napi_poll", 10)]);
    let r = rank(&slow, Some(&fast), "net_rx_action");
    let text = culprit_table(
        &r,
        &Calls {
            function: "net_rx_action",
            threshold: Some("5ms"),
            calls: 1,
            fast_calls: 92410,
            hz: 999,
        },
    );
    assert_eq!(
        text,
        "Where the slow calls (> 5ms, 1 call, 40 samples) spent their time, against the fast calls (92,410 calls, 10 samples):
  function            slow     fast
  tcp_collapse      100.0%     0.0%
  tcp_prune_queue   100.0%     0.0%
  napi_poll           0.0%   100.0%
"
    );
}

#[test]
fn too_few_samples_say_so_instead_of_ranking() {
    let slow = folded(&[("net_rx_action;tcp_collapse", 7)]);
    let r = rank(&slow, Some(&BTreeMap::new()), "net_rx_action");
    let text = culprit_table(
        &r,
        &Calls {
            function: "net_rx_action",
            threshold: Some("1ms"),
            calls: 3,
            fast_calls: 100,
            hz: 99,
        },
    );
    assert_eq!(
        text,
        "Only 7 samples landed in the 3 calls slower than 1ms: too few to rank (20 needed). Sample at a higher --frequency (now 99 Hz) or for longer.\n"
    );
}

#[test]
fn without_a_threshold_shares_are_of_all_in_call_samples() {
    let all = folded(&[
        ("net_rx_action;tcp_v4_rcv", 30),
        ("net_rx_action;tcp_v4_rcv;tcp_collapse", 10),
        ("net_rx_action", 10),
    ]);
    let r = rank(&all, None, "net_rx_action");
    let text = culprit_table(
        &r,
        &Calls {
            function: "net_rx_action",
            threshold: None,
            calls: 1234,
            fast_calls: 0,
            hz: 99,
        },
    );
    assert!(
        text.starts_with("Where net_rx_action spent its time (1,234 calls, 50 samples):\n"),
        "{text}"
    );
    assert!(text.contains("  tcp_v4_rcv      80.0%\n"), "{text}");
}

#[test]
fn the_report_line_says_where_every_sample_went() {
    let tally = Tally {
        kept: 120,
        outside: 5000,
        fast: 300,
        lost_stack: 2,
        lost_pending: 1,
        ..Tally::default()
    };
    let folded = Folded {
        stacks: BTreeMap::new(),
        incomplete: 4,
        own_probes: 0,
        softirq_outside: 7,
    };
    let calls = Histogram {
        count: 1000,
        max_ns: 8_123_456,
        ..Histogram::default()
    };
    let written = Written {
        svg: true,
        folded: false,
    };
    assert_eq!(
        report(&asked(), &tally, &folded, Some(&calls), &written),
        "netlat: wrote flamegraph.svg: 120 samples kept, dropped 5000 outside net_rx_action, 300 in calls faster than 5ms (ranked against, not drawn), lost 3 (no kernel stack or stack map full 2, pending per call 1, count map 0) (7 under [NET_RX softirq, outside net_rx_action], 4 under [incomplete stack]); net_rx_action: 1000 calls, max 8123 us; could not write stacks.folded"
    );
}

#[test]
fn the_plain_graph_speaks_of_all_cpus() {
    let plain = Asked {
        function: None,
        slower_than: None,
        duration: None,
        folded: None,
        ..asked()
    };
    assert_eq!(title(&plain), "Kernel stacks, all CPUs");
    assert_eq!(
        announce(&plain, None),
        "netlat: sampling kernel stacks on all CPUs at 999 Hz until Ctrl-C"
    );
    let written = Written {
        svg: false,
        folded: false,
    };
    let nothing = Folded {
        stacks: BTreeMap::new(),
        incomplete: 0,
        own_probes: 0,
        softirq_outside: 0,
    };
    assert_eq!(
        report(&plain, &Tally::default(), &nothing, None, &written),
        "netlat: could not write flamegraph.svg: 0 samples kept"
    );
    assert_eq!(
        nothing_kept(&plain, Duration::from_millis(2500), &Tally::default(), None),
        "no samples were kept in 2.5 s (0 samples outside it, 0 without a kernel stack): nothing to draw; sample longer or at a higher --frequency"
    );
}

#[test]
fn during_a_function_the_lines_name_it_and_its_calls() {
    let a = asked();
    assert_eq!(
        title(&a),
        "Kernel stacks in net_rx_action calls slower than 5ms"
    );
    assert_eq!(
        diff_title(&title(&a)),
        "Kernel stacks in net_rx_action calls slower than 5ms, against the faster calls"
    );
    assert_eq!(
        subtitle(&a, Duration::from_millis(30_040), "h", "6.18", 120),
        "30.0 s at 999 Hz on h (Linux 6.18), 120 samples"
    );
    assert_eq!(
        announce(&a, Some("fentry/fexit on net_rx_action")),
        "netlat: sampling kernel stacks during net_rx_action (timed with fentry/fexit on net_rx_action) at 999 Hz for 30s"
    );
    let calls = Histogram {
        count: 12,
        sum_ns: 3_456_789,
        ..Histogram::default()
    };
    let tally = Tally {
        outside: 40,
        fast: 9,
        ..Tally::default()
    };
    assert_eq!(
        nothing_kept(&a, Duration::from_secs(1), &tally, Some(&calls)),
        "no samples were kept in 1.0 s (net_rx_action ran 12 times, 3.46 ms in all; 9 in calls faster than 5ms, 40 samples outside it, 0 without a kernel stack): nothing to draw; sample longer or at a higher --frequency"
    );
}

#[test]
fn a_threshold_near_the_sampler_cost_is_warned_of() {
    assert_eq!(
        cost_warning(Some(Duration::from_micros(20)), Some(2_500.0)).as_deref(),
        Some(
            "netlat: warning: each sample costs 2.5 us here (the sampler's own run time), so calls just over --slower-than 20us may be slow only because samples landed in them; use a threshold of at least 25 us"
        )
    );
    assert_eq!(
        cost_warning(Some(Duration::from_micros(25)), Some(2_500.0)),
        None
    );
    assert_eq!(cost_warning(None, Some(2_500.0)), None);
}
