//! Judging one guest's console, and the kernel x test matrix at the end.

use std::{fmt::Write as _, time::Duration};

use super::qemu::Console;

/// One test on one kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Ok,
    Skip(String),
    Fail(String),
}

/// What one kernel's guest reported.
#[derive(Debug, Default)]
pub struct GuestReport {
    pub tests: Vec<(String, Verdict)>,
    /// The guest's capability probe line (what this kernel offers).
    pub capabilities: Option<String>,
    /// Said on the kernel's line when the run needed a second boot.
    pub rebooted: Option<String>,
}

/// A run the kernel cut short with a panic: what it reported, and the
/// guest's planned tests it did not reach.
pub struct CutShort {
    pub report: GuestReport,
    pub left: Vec<String>,
    /// The console's panic (or lockup) line.
    pub panic: String,
}

/// The run's reported tests and the ones left, when the kernel panicked
/// after at least one test and before the last (the guest prints its plan
/// by name: `netlat-vm: plan a,b,c`).
pub fn cut_short(console: &Console) -> Option<CutShort> {
    if !console.crashed {
        return None;
    }
    let Parsed { report, plan, .. } = parse(console);
    let left: Vec<String> = plan
        .into_iter()
        .filter(|name| !report.tests.iter().any(|(t, _)| t == name))
        .collect();
    if report.tests.is_empty() || left.is_empty() {
        return None;
    }
    let panic = console
        .lines
        .iter()
        .find(|l| l.contains("Kernel panic") || l.contains("soft lockup"))
        .cloned()
        .unwrap_or_default();
    Some(CutShort {
        report,
        left,
        panic,
    })
}

/// How an error of [`judge`] starts when the guest never reported a test.
pub const NO_TEST_REPORTED: &str = "no test reported";

/// What a guest's console says: its results, plan and ending.
struct Parsed {
    report: GuestReport,
    /// `netlat-vm: planned N`.
    planned: Option<usize>,
    /// `netlat-vm: plan a,b,c`.
    plan: Vec<String>,
    /// `init: success` (true) or `init: failure` (false, wins).
    ended: Option<bool>,
}

fn parse(console: &Console) -> Parsed {
    let mut p = Parsed {
        report: GuestReport::default(),
        planned: None,
        plan: Vec::new(),
        ended: None,
    };
    for line in &console.lines {
        if let Some(rest) = line.strip_prefix("netlat-vm: test ") {
            p.report.tests.push(parse_test(rest));
        } else if let Some(n) = line.strip_prefix("netlat-vm: planned ") {
            p.planned = n.trim().parse::<usize>().ok();
        } else if let Some(names) = line.strip_prefix("netlat-vm: plan ") {
            p.plan = names.split(',').map(str::to_owned).collect();
        } else if let Some(caps) = line.strip_prefix("netlat-vm: capabilities ") {
            p.report.capabilities = Some(caps.trim().to_owned());
        } else if line == "init: success" {
            p.ended = p.ended.or(Some(true));
        } else if line == "init: failure" {
            p.ended = Some(false);
        }
    }
    p
}

/// The guest's results, or why the run itself is broken (a panic, fewer
/// results than the guest planned, no `init: success` after passing).
pub fn judge(console: &Console) -> Result<GuestReport, String> {
    let Parsed {
        report,
        planned,
        ended,
        ..
    } = parse(console);
    let planned_text = planned.map_or("an unknown number".to_owned(), |n| n.to_string());
    if report.tests.is_empty() {
        return Err(format!("{NO_TEST_REPORTED} (of {planned_text} planned)"));
    }
    if planned != Some(report.tests.len()) {
        return Err(format!(
            "{} of {planned_text} test results reported",
            report.tests.len()
        ));
    }
    if console.crashed {
        return Err("the kernel panicked or locked up".into());
    }
    let failed = report
        .tests
        .iter()
        .any(|(_, v)| matches!(v, Verdict::Fail(_)));
    if !failed && ended != Some(true) {
        return Err("the guest did not end with 'init: success'".into());
    }
    Ok(report)
}

/// `NAME ok|skip|FAIL (1.2s) FIGURES`
fn parse_test(rest: &str) -> (String, Verdict) {
    let mut words = rest.splitn(3, ' ');
    let name = words.next().unwrap_or("").to_owned();
    let verdict = words.next().unwrap_or("");
    let detail = words.next().unwrap_or("");
    // Drop the "(1.2s) " duration.
    let detail = detail
        .split_once(") ")
        .filter(|(t, _)| t.starts_with('('))
        .map_or(detail, |(_, d)| d)
        .to_owned();
    let verdict = match verdict {
        "ok" => Verdict::Ok,
        "skip" => Verdict::Skip(detail),
        _ => Verdict::Fail(detail),
    };
    (name, verdict)
}

/// One kernel's row of the stage.
pub struct KernelRun {
    pub label: String,
    pub package: String,
    pub elapsed: Duration,
    pub outcome: Result<GuestReport, String>,
}

#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl KernelRun {
    /// A broken run counts as one failure, beside what it did report.
    pub fn counts(&self) -> Counts {
        match &self.outcome {
            Ok(r) => {
                let count = |f: fn(&Verdict) -> bool| r.tests.iter().filter(|(_, v)| f(v)).count();
                Counts {
                    passed: count(|v| matches!(v, Verdict::Ok)),
                    failed: count(|v| matches!(v, Verdict::Fail(_))),
                    skipped: count(|v| matches!(v, Verdict::Skip(_))),
                }
            }
            Err(_) => Counts {
                failed: 1,
                ..Counts::default()
            },
        }
    }

    /// `vm: 6.1 (linux-image-...): 10 ok, 0 skip, 0 FAIL in 63.0s; kprobes=yes ...`
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        match &self.outcome {
            Ok(r) => {
                let c = self.counts();
                format!(
                    "vm: {} ({}): {} ok, {} skip, {} FAIL in {secs:.0}s{}{}",
                    self.label,
                    self.package,
                    c.passed,
                    c.skipped,
                    c.failed,
                    r.capabilities
                        .as_ref()
                        .map_or(String::new(), |c| format!("; {c}")),
                    r.rebooted
                        .as_ref()
                        .map_or(String::new(), |n| format!("; {n}"))
                )
            }
            Err(e) => format!(
                "vm: {} ({}): FAILED after {secs:.0}s: {e}",
                self.label, self.package
            ),
        }
    }
}

pub fn total(runs: &[KernelRun]) -> Counts {
    runs.iter().fold(Counts::default(), |mut t, r| {
        let c = r.counts();
        t.passed += c.passed;
        t.failed += c.failed;
        t.skipped += c.skipped;
        t
    })
}

/// Tests down, kernels across; skip reasons as numbered notes below.
pub fn render(runs: &[KernelRun]) -> String {
    let mut tests: Vec<&str> = Vec::new();
    for run in runs {
        if let Ok(r) = &run.outcome {
            for (name, _) in &r.tests {
                if !tests.contains(&name.as_str()) {
                    tests.push(name);
                }
            }
        }
    }
    let mut notes: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["test".to_owned()];
    header.extend(runs.iter().map(|r| r.label.clone()));
    rows.push(header);
    for test in &tests {
        let mut row = vec![(*test).to_owned()];
        for run in runs {
            let cell = match &run.outcome {
                Err(_) => "BROKEN".to_owned(),
                Ok(r) => match r.tests.iter().find(|(n, _)| n == test) {
                    None => "-".to_owned(),
                    Some((_, Verdict::Ok)) => "ok".to_owned(),
                    Some((_, Verdict::Fail(_))) => "FAIL".to_owned(),
                    Some((_, Verdict::Skip(why))) => {
                        notes.push(format!("{} {test}: {}", run.label, shorten(why, 140)));
                        format!("skip({})", notes.len())
                    }
                },
            };
            row.push(cell);
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::from(
        "vm: matrix (ok / skip(note) / FAIL; - not run there, BROKEN: the run itself failed)\n",
    );
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
    }
    for (i, note) in notes.iter().enumerate() {
        let _ = writeln!(out, "  ({}) {note}", i + 1);
    }
    for run in runs {
        if let Err(e) = &run.outcome {
            let _ = writeln!(out, "  BROKEN {}: {e}", run.label);
        }
    }
    out
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(lines: &[&str]) -> Console {
        Console {
            lines: lines.iter().map(|l| l.to_string()).collect(),
            crashed: false,
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_guest_that_ran_its_plan() {
        let c = console(&[
            "netlat-vm: capabilities kprobes=yes",
            "netlat-vm: planned 3",
            "netlat-vm: test a ok (1.0s) count=3",
            "netlat-vm: test b skip (2.5s) no prune happened",
            "netlat-vm: test c FAIL (0.1s) count 0",
            "init: failure",
        ]);
        let r = judge(&c).unwrap();
        assert_eq!(r.capabilities.as_deref(), Some("kprobes=yes"));
        assert_eq!(
            r.tests,
            vec![
                ("a".to_owned(), Verdict::Ok),
                ("b".to_owned(), Verdict::Skip("no prune happened".into())),
                ("c".to_owned(), Verdict::Fail("count 0".into())),
            ]
        );
    }

    #[test]
    fn a_panic_mid_run_leaves_the_unreported_tests_for_a_second_boot() {
        let mut c = console(&[
            "netlat-vm: planned 3",
            "netlat-vm: plan a,b,c",
            "netlat-vm: test a ok (1.0s) count=3",
            "[   92.111352] Kernel panic - not syncing: Fatal exception in interrupt",
        ]);
        assert!(
            cut_short(&c).is_none(),
            "only a crashed console is cut short"
        );
        c.crashed = true;
        let cut = cut_short(&c).unwrap();
        assert_eq!(cut.report.tests, vec![("a".to_owned(), Verdict::Ok)]);
        assert_eq!(cut.left, ["b", "c"]);
        assert!(cut.panic.contains("Fatal exception"));
        // A panic before any test is the boot retry's case, not this one.
        let early = Console {
            crashed: true,
            ..console(&["netlat-vm: plan a,b", "Kernel panic - not syncing"])
        };
        assert!(cut_short(&early).is_none());
    }

    #[test]
    fn a_short_or_silent_guest_is_a_broken_run() {
        let short = console(&["netlat-vm: planned 2", "netlat-vm: test a ok (1.0s) x"]);
        assert_eq!(judge(&short).unwrap_err(), "1 of 2 test results reported");
        let silent = console(&["netlat-vm: planned 2"]);
        assert!(judge(&silent).unwrap_err().starts_with(NO_TEST_REPORTED));
        let no_end = console(&["netlat-vm: planned 1", "netlat-vm: test a ok (1.0s) x"]);
        assert!(judge(&no_end).is_err());
    }

    #[test]
    fn the_matrix_has_a_cell_per_kernel_and_test() {
        let run = |label: &str, tests: Vec<(&str, Verdict)>| KernelRun {
            label: label.into(),
            package: "p".into(),
            elapsed: Duration::from_secs(60),
            outcome: Ok(GuestReport {
                tests: tests.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
                capabilities: None,
                rebooted: None,
            }),
        };
        let runs = vec![
            run(
                "5.10",
                vec![("a", Verdict::Ok), ("b", Verdict::Skip("why".into()))],
            ),
            run("arm64", vec![("a", Verdict::Fail("bad".into()))]),
            KernelRun {
                label: "sid".into(),
                package: "p".into(),
                elapsed: Duration::ZERO,
                outcome: Err("timed out".into()),
            },
        ];
        let text = render(&runs);
        assert!(text.contains("  a     ok       FAIL   BROKEN"), "{text}");
        assert!(text.contains("  b     skip(1)  -      BROKEN"), "{text}");
        assert!(text.contains("(1) 5.10 b: why"), "{text}");
        assert!(text.contains("BROKEN sid: timed out"), "{text}");
        assert_eq!(
            total(&runs),
            Counts {
                passed: 1,
                failed: 2,
                skipped: 1
            }
        );
    }
}
