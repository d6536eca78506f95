//! The files `netlat report` reads, each turned into one [`Loaded`] run:
//! a recording (`netlat record -o`), a flight-recorder capture (`serve
//! --capture`, `captures show --json`), or `netlat slow --json` output.
//! Every failure is one line that names the file and says what it is.

use std::{io::Read as _, path::Path};

use netlat_common::buckets;

use crate::{
    model::compare::CompareError,
    model::{
        histogram::Histogram,
        recording::{self, Accounting, RecWindow, Recording, RecordingDocument, WindowSamples},
        report::{Conditions, Missed, Summary},
        slow_call::SlowCall,
    },
    recorder::document::{self as capture, Capture},
    system::run_file,
};

/// Larger than a day of 1 s windows with a storm of slow calls.
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// The width of the windows made for `slow --json` input, and of a
/// capture's seconds.
const SECOND_NS: u64 = 1_000_000_000;

/// One run, whatever file it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The file's stem.
    pub name: String,
    /// "recording", "capture" or "slow".
    pub source: &'static str,
    pub function: String,
    pub backend: String,
    pub host: String,
    pub kernel: String,
    pub cpus: usize,
    pub conditions: Option<Conditions>,
    pub missed: Option<Missed>,
    /// The windows count only the slow calls (`slow --json`).
    pub slow_only: bool,
    pub recording: Recording,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("cannot read {path}: {why}")]
    Unreadable { path: String, why: String },
    #[error(
        "{path} is truncated or not JSON ({why}): give a file written by netlat record, serve --capture or slow --json"
    )]
    NotJson { path: String, why: String },
    #[error(
        "{path} is not a netlat recording, capture or slow --json output ({why}): record one with netlat record FUNCTION SECONDS -o FILE"
    )]
    Foreign { path: String, why: String },
    #[error(
        "{path} is a {what} of format {found}; this netlat reads format {reads}: report it with the netlat that wrote it"
    )]
    Version {
        path: String,
        what: &'static str,
        found: u64,
        reads: u32,
    },
    #[error("{path} holds no slow call: nothing to report")]
    NoCalls { path: String },
}

/// Reads and converts one file.
pub fn load(path: &Path) -> Result<Loaded, InputError> {
    let shown = path.display().to_string();
    let text = read_capped(path, &shown)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.clone());
    parse(&shown, &name, &text)
}

fn read_capped(path: &Path, shown: &str) -> Result<String, InputError> {
    let unreadable = |why: String| InputError::Unreadable {
        path: shown.to_owned(),
        why,
    };
    let file = run_file::open_capped(path, shown, MAX_FILE_BYTES).map_err(|e| {
        unreadable(match e {
            CompareError::NotAFile { .. } => {
                "not a regular file (netlat report does not read pipes or devices)".into()
            }
            CompareError::TooLarge { .. } => format!(
                "larger than {} MiB: not a netlat recording",
                MAX_FILE_BYTES >> 20
            ),
            CompareError::Unreadable { why, .. } => why,
            other => other.to_string(),
        })
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(crate::oneline::io_text(&e)))?;
    String::from_utf8(bytes).map_err(|_| InputError::Foreign {
        path: shown.to_owned(),
        why: "not UTF-8 text".into(),
    })
}

/// The members that tell the kinds apart, read before the whole file is.
#[derive(serde::Deserialize)]
struct Peek {
    schema: Option<u64>,
    netlat_capture: Option<u64>,
    recording: Option<FormatOnly>,
    start_unix_ns: Option<u64>,
}

#[derive(serde::Deserialize)]
struct FormatOnly {
    format: Option<u64>,
}

pub fn parse(path: &str, name: &str, text: &str) -> Result<Loaded, InputError> {
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let whole: Result<Peek, _> = serde_json::from_str(text);
    let peek = match whole {
        Ok(p) => p,
        // NDJSON: one object per line, so the whole is not one document.
        Err(e) if e.is_syntax() && serde_json::from_str::<Peek>(first_line).is_ok() => {
            return slow_lines(path, name, text);
        }
        Err(e) if e.is_data() => {
            return Err(InputError::Foreign {
                path: path.to_owned(),
                why: e.to_string(),
            });
        }
        Err(e) => {
            return Err(InputError::NotJson {
                path: path.to_owned(),
                why: e.to_string(),
            });
        }
    };
    let foreign = |why: String| InputError::Foreign {
        path: path.to_owned(),
        why,
    };
    if let Some(found) = peek.netlat_capture {
        if found != u64::from(capture::FORMAT) {
            return Err(InputError::Version {
                path: path.to_owned(),
                what: "flight-recorder capture",
                found,
                reads: capture::FORMAT,
            });
        }
        let c: Capture = serde_json::from_str(text).map_err(|e| foreign(e.to_string()))?;
        return Ok(from_capture(name, c));
    }
    if let Some(rec) = peek.recording {
        let found = rec.format.unwrap_or(0);
        if found != u64::from(recording::FORMAT) {
            return Err(InputError::Version {
                path: path.to_owned(),
                what: "recording",
                found,
                reads: recording::FORMAT,
            });
        }
        let schema = peek.schema.unwrap_or(0);
        if schema != u64::from(crate::model::report::SCHEMA_VERSION) {
            return Err(InputError::Version {
                path: path.to_owned(),
                what: "result",
                found: schema,
                reads: crate::model::report::SCHEMA_VERSION,
            });
        }
        let d: RecordingDocument =
            serde_json::from_str(text).map_err(|e| foreign(e.to_string()))?;
        return Ok(from_recording(name, d));
    }
    if peek.start_unix_ns.is_some() {
        // One slow call alone is a one-line slow --json output.
        return slow_lines(path, name, text);
    }
    Err(foreign(if peek.schema.is_some() {
        "a histogram result without its run over time".into()
    } else {
        "none of the members netlat writes".into()
    }))
}

fn from_recording(name: &str, d: RecordingDocument) -> Loaded {
    Loaded {
        name: name.to_owned(),
        source: "recording",
        function: d.function,
        backend: d.backend,
        host: d.host,
        kernel: d.kernel,
        cpus: d.cpus,
        conditions: d.conditions,
        missed: d.missed,
        slow_only: false,
        recording: d.recording,
    }
}

/// A summary's buckets back in the kernel's layout (they are written as
/// bounds): each lower bound names its bucket.
fn window_of_summary(start_unix_ns: u64, s: &Summary) -> RecWindow {
    let mut h = Histogram {
        count: s.count,
        sum_ns: s.sum_ns,
        min_ns: s.min_ns.unwrap_or(0),
        max_ns: s.max_ns.unwrap_or(0),
        ..Histogram::default()
    };
    for b in &s.buckets {
        h.buckets[buckets::index(b.low_ns)] += b.count;
    }
    RecWindow::from_histogram(start_unix_ns, &h)
}

fn from_capture(name: &str, c: Capture) -> Loaded {
    // A capture's seconds are stamped with their end.
    let seconds = c.histograms.before.iter().chain(&c.histograms.window);
    let windows: Vec<RecWindow> = seconds
        .map(|s| {
            let end_ns = (s.unix_s * 1e9) as u64;
            window_of_summary(end_ns.saturating_sub(SECOND_NS), &s.summary)
        })
        .collect();
    let mut recording = Recording {
        format: recording::FORMAT,
        netlat_version: c.netlat_version,
        start_unix_ns: windows
            .first()
            .map_or(c.window.start_unix_ns, |w| w.start_unix_ns),
        end_unix_ns: c.window.end_unix_ns,
        interval_ns: SECOND_NS,
        threshold_ns: Some(c.threshold_ns),
        frequency_hz: c.stacks.frequency_hz,
        windows,
        slow_calls: c.calls,
        stacks: Vec::new(),
        samples: Vec::new(),
        accounting: Accounting {
            over_threshold: c.accounting.kernel_over_threshold,
            recorded: c.accounting.recorded,
            lost_ring: c.accounting.lost_ring,
            limited: c.accounting.limited,
            not_kept: c.accounting.not_kept,
            samples_lost: c.stacks.lost,
            samples_undecided: 0,
        },
    };
    recording.slow_calls.sort_by_key(|call| call.start_unix_ns);
    // A capture keeps its samples without times: they all belong to its
    // window, which starts with the trigger.
    let window = recording.window_of(c.window.start_unix_ns);
    let mut stacks: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for (stack, n) in &c.stacks.slow {
        stacks.entry(stack).or_default().0 += n;
    }
    for (stack, n) in &c.stacks.fast {
        stacks.entry(stack).or_default().1 += n;
    }
    for (i, (stack, (slow, fast))) in stacks.into_iter().enumerate() {
        recording.stacks.push(stack.to_owned());
        recording.samples.push(WindowSamples {
            window,
            stack: i,
            slow,
            fast,
        });
    }
    Loaded {
        name: name.to_owned(),
        source: "capture",
        function: c.function,
        backend: c.backend,
        host: c.host,
        kernel: c.kernel,
        cpus: 0,
        conditions: Some(c.conditions),
        missed: None,
        slow_only: false,
        recording,
    }
}

/// `slow --json` output: the calls over the threshold alone, put in 1 s
/// windows of their own so the map shows when they came.
fn slow_lines(path: &str, name: &str, text: &str) -> Result<Loaded, InputError> {
    let mut calls = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| InputError::NotJson {
                path: format!("{path} line {}", n + 1),
                why: e.to_string(),
            })?;
        // A closing summary line, should slow --json write one.
        if value.get("start_unix_ns").is_none() && value.get("kind").is_some() {
            continue;
        }
        let call: SlowCall = serde_json::from_value(value).map_err(|e| InputError::Foreign {
            path: format!("{path} line {}", n + 1),
            why: e.to_string(),
        })?;
        calls.push(call);
    }
    calls.sort_by_key(|c| c.start_unix_ns);
    let (Some(first), Some(last_end)) = (
        calls.first().map(|c| c.start_unix_ns),
        calls
            .iter()
            .map(|c| c.start_unix_ns.saturating_add(c.duration_ns))
            .max(),
    ) else {
        return Err(InputError::NoCalls {
            path: path.to_owned(),
        });
    };
    let start = first - first % SECOND_NS;
    let n_windows = ((last_end - start) / SECOND_NS + 1) as usize;
    let mut hs = vec![Histogram::default(); n_windows];
    for c in &calls {
        let end = c.start_unix_ns.saturating_add(c.duration_ns);
        let h = &mut hs[((end - start) / SECOND_NS) as usize];
        h.merge(&Histogram::from_values(&[c.duration_ns]));
    }
    let windows = hs
        .iter()
        .enumerate()
        .map(|(i, h)| RecWindow::from_histogram(start + i as u64 * SECOND_NS, h))
        .collect();
    let threshold = calls.iter().map(|c| c.duration_ns).min();
    Ok(Loaded {
        name: name.to_owned(),
        source: "slow",
        function: String::new(),
        backend: String::new(),
        host: String::new(),
        kernel: String::new(),
        cpus: 0,
        conditions: None,
        missed: None,
        slow_only: true,
        recording: Recording {
            format: recording::FORMAT,
            netlat_version: String::new(),
            start_unix_ns: start,
            end_unix_ns: start + n_windows as u64 * SECOND_NS,
            interval_ns: SECOND_NS,
            threshold_ns: threshold,
            frequency_hz: 0,
            windows,
            accounting: Accounting {
                recorded: calls.len() as u64,
                ..Accounting::default()
            },
            slow_calls: calls,
            stacks: Vec::new(),
            samples: Vec::new(),
        },
    })
}
