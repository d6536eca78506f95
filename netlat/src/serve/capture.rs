//! `serve --capture FUNCTION=THRESHOLD`: the flags of the flight recorder
//! and the attaching of what it needs beside a served function (slow-call
//! records, the in-call sampler).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use netlat_common::{SockOffsets, sample_filter};

use crate::{
    recorder::{
        live::{Recorder, Shared, Status},
        window::{Settings, StormLimit},
    },
    system::kallsyms,
    tracing::{
        backend::attach::{Globals, SlowSettings, Tracer},
        kernel_btf::VMLINUX,
        slow_records::Records,
        sock_fields::SocketArg,
    },
};

use crate::recorder::{
    document::Capture,
    live::KeepError,
    store::{DEFAULT_DIR, Limits, Store, StoreError},
};

/// Slow calls kept per capture: at the default record budget a 2 s window
/// on 8 CPUs is 16,000 records; past this they are counted, not kept
/// (~150 bytes each in the document).
const MAX_CALLS: usize = 10_000;

/// At most this many captures per [`STORM_PERIOD`] over all functions.
const STORM_CAPTURES: usize = 30;
const STORM_PERIOD: Duration = Duration::from_secs(600);

/// Size of each recorder's record buffer: ~37,000 records, more than the
/// record budget lets through in a second on 32 CPUs.
const RING_BYTES: u32 = 4 << 20;

#[derive(clap::Args, Debug, Clone)]
pub struct CaptureArgs {
    /// Keep the evidence of every call of FUNCTION that lasts at least
    /// THRESHOLD (the flight recorder): its slow calls, the kernel stacks
    /// sampled inside them, the minute of histograms before. Repeatable;
    /// FUNCTION is served too. THRESHOLD as for slow, e.g.
    /// net_rx_action=5ms.
    #[arg(long, value_name = "FUNCTION=THRESHOLD", value_parser = parse_capture)]
    pub capture: Vec<(String, Duration)>,
    /// Directory of the capture files (created 0700; one file per capture).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    pub capture_dir: PathBuf,
    /// How long after the first slow call a capture collects.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_span)]
    pub capture_window: Duration,
    /// Least time between two captures of one function; slow calls in it
    /// are counted and reported by the next capture.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_span)]
    pub capture_cooldown: Duration,
    /// Stack samples per second on each CPU, kept only inside slow calls.
    #[arg(long, value_name = "HZ", default_value_t = 499,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub capture_frequency: u64,
    /// Slow-call records each CPU may send per second; beyond it the
    /// kernel counts the calls without recording them.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub capture_rate: u32,
    /// Most capture files kept; the oldest go first.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub capture_max: u64,
    /// Most bytes the capture files take; the oldest go first. A size
    /// with a unit (256MiB, 1GiB, 500MB) or bytes.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub capture_max_bytes: u64,
}

impl CaptureArgs {
    pub fn enabled(&self) -> bool {
        !self.capture.is_empty()
    }

    /// The threshold `function` is captured at, if it is.
    pub fn threshold(&self, function: &str) -> Option<Duration> {
        self.capture
            .iter()
            .find(|(f, _)| f == function)
            .map(|(_, t)| *t)
    }

    /// Refuses a function given two thresholds. (The directory is
    /// checked when the store opens, before anything is attached.)
    pub fn check(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for (f, _) in &self.capture {
            if !seen.insert(f) {
                bail!("--capture {f}: given twice; give each function one threshold");
            }
        }
        Ok(())
    }

    pub fn settings(&self) -> Settings {
        Settings {
            window_ns: self.capture_window.as_nanos() as u64,
            cooldown_ns: self.capture_cooldown.as_nanos() as u64,
            max_calls: MAX_CALLS,
        }
    }
}

/// `FUNCTION=THRESHOLD`.
fn parse_capture(s: &str) -> Result<(String, Duration), String> {
    let Some((function, threshold)) = s.split_once('=') else {
        return Err(format!(
            "expected FUNCTION=THRESHOLD, e.g. net_rx_action=5ms, not '{s}'"
        ));
    };
    let function = kallsyms::function_name(function)?;
    // Kernel symbols are C identifiers, with '.' for compiler clones
    // (tcp_collapse.isra.0): anything else is a mistyped flag.
    if !function
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(format!(
            "'{function}' cannot be a kernel function name (letters, digits, '_' and '.' only)"
        ));
    }
    let threshold = crate::model::duration::parse_threshold(threshold)?;
    Ok((function, threshold))
}

/// A window or cooldown: a duration with a unit, at least 1 ms, at most a day.
fn parse_span(s: &str) -> Result<Duration, String> {
    let d = crate::model::duration::parse(s)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(86_400) {
        return Err(format!("'{s}': give between 1ms and 24h"));
    }
    Ok(d)
}

/// Bytes, or a number with B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || format!("invalid size '{s}': give bytes or a number with a unit, e.g. 256MiB");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    let bytes = n.checked_mul(scale).ok_or_else(bad)?;
    if bytes < 1 << 20 {
        return Err(format!("--capture-max-bytes '{s}': at least 1MiB"));
    }
    Ok(bytes)
}

/// The load-time settings that make a served function recordable.
pub fn globals(function: &str, threshold: Duration, args: &CaptureArgs) -> Globals {
    let threshold_ns = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX);
    // net_rx_action takes no socket and its entry stack is always the
    // softirq loop's (the record's context already says NET_RX); taking it
    // at every entry would cost a stack walk per call for nothing.
    let (sock, stacks) = if function == "net_rx_action" {
        (SockOffsets::NONE, false)
    } else {
        let sock = match SocketArg::find(function, Path::new(VMLINUX)) {
            SocketArg::Socket(o) => o,
            _ => SockOffsets::NONE,
        };
        (sock, true)
    };
    Globals {
        sample_filter: sample_filter::DURING,
        slower_than_ns: threshold_ns,
        sampling: true,
        slow: Some(SlowSettings {
            threshold_ns,
            stacks,
            sock,
            ring_bytes: RING_BYTES,
            records_per_second: args.capture_rate,
        }),
        ..Globals::default()
    }
}

/// Attaches the context programs and the sampler beside an attached
/// tracer loaded with [`globals`], and makes its recorder.
pub fn recorder(
    function: &str,
    threshold: Duration,
    tracer: &Arc<Mutex<Tracer>>,
    online: &[u32],
    shared: &Arc<Shared>,
) -> Result<(Recorder, Arc<Status>)> {
    let mut t = tracer.lock().unwrap_or_else(|p| p.into_inner());
    t.attach_context_programs()?;
    let stacks = function != "net_rx_action";
    let records = Records::open(&mut t, stacks)?;
    t.attach_sampler(shared.frequency_hz, online)
        .with_context(|| format!("--capture {function}: cannot start the stack sampler"))?;
    let backend = t.backend();
    drop(t);
    let status = Arc::new(Status::default());
    let recorder = Recorder {
        function: function.to_owned(),
        threshold_ns: u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX),
        backend: backend.name(),
        softirq: backend.times_softirq(),
        tracer: Arc::clone(tracer),
        records,
        shared: Arc::clone(shared),
        status: Arc::clone(&status),
    };
    Ok((recorder, status))
}

/// What all recorders share.
pub fn shared(args: &CaptureArgs, keep: Arc<dyn crate::recorder::live::Keep>) -> Arc<Shared> {
    let host = crate::system::host::HostInfo::read();
    Arc::new(Shared {
        settings: args.settings(),
        frequency_hz: args.capture_frequency,
        storm: Mutex::new(StormLimit::new(
            STORM_CAPTURES,
            STORM_PERIOD.as_nanos() as u64,
        )),
        keep,
        building: Mutex::new(()),
        host: host.hostname,
        kernel: host.kernel,
    })
}

impl crate::recorder::live::Keep for Store {
    fn keep(&self, capture: &Capture) -> Result<(), KeepError> {
        match self.write(capture) {
            Ok(_) => Ok(()),
            Err(e @ (StoreError::Full { .. } | StoreError::TooLarge { .. })) => {
                Err(KeepError::Full(e.to_string()))
            }
            Err(e) => Err(KeepError::Other(e.to_string())),
        }
    }
}

/// The bounded store of `--capture-dir`, created if missing.
pub fn open_store(args: &CaptureArgs) -> Result<Arc<Store>> {
    let limits = Limits {
        max_files: usize::try_from(args.capture_max).unwrap_or(usize::MAX),
        max_bytes: args.capture_max_bytes,
    };
    Ok(Arc::new(Store::open(&args.capture_dir, limits)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_flag_takes_function_and_threshold() {
        assert_eq!(
            parse_capture("net_rx_action=5ms").unwrap(),
            ("net_rx_action".to_owned(), Duration::from_millis(5))
        );
        assert_eq!(parse_capture("tcp_collapse=0").unwrap().1, Duration::ZERO);
        for bad in [
            "foo",
            "net_rx_action=abc",
            "=5ms",
            "net_rx_action=5",
            "a b=5ms",
        ] {
            let e = parse_capture(bad).unwrap_err();
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
        assert!(
            parse_capture("foo")
                .unwrap_err()
                .contains("FUNCTION=THRESHOLD")
        );
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("2000000").unwrap(), 2_000_000);
        for bad in ["", "MiB", "12XB", "1KiB", "99999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spans_are_bounded() {
        assert_eq!(parse_span("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_span("0").is_err());
        assert!(parse_span("2d").is_err());
    }
}
