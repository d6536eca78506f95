//! `netlat doctor`: the checklist of Linkerd's network-performance notes,
//! measured instead of read. Two readings of /proc and /sys a window apart
//! (`sample`), verdicts with their evidence (`checks`), then text or JSON
//! (`text`, `json`). Needs no eBPF, so it works on every kernel.

pub mod checks;
pub mod net_rx_wait;
pub mod sample;

use std::{
    io::Write as _,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context as _;

use crate::{model::duration, render::doctor as render, system::procfs::Root};
pub use checks::{Check, Report, Value, Verdict, evaluate};

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Time between the two readings: seconds (5, 2.5) or with a unit (500ms).
    #[arg(long, value_parser = duration::parse, default_value = "5", value_name = "SECONDS")]
    pub window: Duration,
    /// Repeat every SECONDS, printing what changed in each interval, until Ctrl-C.
    #[arg(long, value_parser = duration::parse, value_name = "SECONDS", conflicts_with = "window")]
    pub watch: Option<Duration>,
    /// Print the report as JSON (with --watch: one JSON object per line).
    #[arg(long)]
    pub json: bool,
}

/// Reads everything under `root`, waits `window`, reads again and judges.
pub fn measure(root: &Root, window: Duration) -> Report {
    let wait = net_rx_wait::NetRxWait::start();
    let start = Instant::now();
    let before = take(root, &wait);
    std::thread::sleep(window);
    let end = Instant::now();
    let after = take(root, &wait);
    evaluate(&before, &after, end - start)
}

/// One reading, with the NET_RX counts when they are measured.
fn take(root: &Root, wait: &sample::Fact<net_rx_wait::NetRxWait>) -> sample::Sample {
    let mut s = sample::take(root);
    s.net_rx = Some(match wait {
        Ok(w) => w.read(),
        Err(why) => Err(why.clone()),
    });
    s
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The checklist points at `netlat histogram tcp_collapse`; where this
/// kernel cannot run it, the advice says what it would need instead. Asked
/// only when that advice is given, and only as root (unprivileged, every
/// BPF load is refused, which says nothing about the kernel).
fn advise_for_this_kernel(report: &mut Report) {
    const FUNCTION: &str = "tcp_collapse";
    let advised = report.checks.iter().any(|c| {
        c.suggestions
            .iter()
            .any(|s| s.contains(&format!("netlat histogram {FUNCTION}")))
    });
    if !advised || crate::system::privileges::check().is_err() {
        return;
    }
    // Once per process: --watch asks every interval, the answer stays.
    static REFUSED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let refused =
        REFUSED.get_or_init(|| crate::tracing::backend::attach::function_probes_refused(FUNCTION));
    if let Some(why) = refused {
        checks::without_tracing(report, FUNCTION, why);
    }
}

pub fn run(args: &DoctorArgs) -> anyhow::Result<()> {
    let root = Root::host();
    let mut out = std::io::stdout().lock();
    // Said on stderr every time, so a wait is never a silent one.
    let Some(every) = args.watch else {
        eprintln!(
            "netlat: doctor sampling /proc and /sys: two readings {} apart...",
            humantime::format_duration(args.window)
        );
        let mut report = measure(&root, args.window);
        advise_for_this_kernel(&mut report);
        report.at = Some(now_rfc3339());
        let text = if args.json {
            render::json(&report).context("cannot encode the report as JSON")? + "\n"
        } else {
            render::render(&report)
        };
        out.write_all(text.as_bytes())
            .context("cannot write the report")?;
        return Ok(());
    };
    // Like the notes' `while true; do ...; sleep 5; done`: each interval
    // judged on its own deltas. Ctrl-C, SIGTERM or SIGHUP end it with exit
    // 0. The handlers are installed whatever was inherited: a background
    // job of a non-interactive shell starts with SIGINT ignored, and was
    // then deaf to `kill -INT`.
    eprintln!(
        "netlat: doctor sampling /proc and /sys every {} until Ctrl-C",
        humantime::format_duration(every)
    );
    crate::commands::stop::runtime()?.block_on(async {
        // Before the NET_RX programs load (a second in a debug build): a
        // signal sent while they load must end the watch, not be lost.
        let mut stop = crate::commands::stop::Stop::install()?;
        let wait = net_rx_wait::NetRxWait::start();
        let mut before = take(&root, &wait);
        let mut start = Instant::now();
        loop {
            if stop.until(Some(start + every)).await == crate::commands::stop::Woke::Signal {
                return Ok(());
            }
            let end = Instant::now();
            let after = take(&root, &wait);
            let mut report = evaluate(&before, &after, end - start);
            advise_for_this_kernel(&mut report);
            let stamp = now_rfc3339();
            let text = if args.json {
                report.at = Some(stamp);
                render::json_line(&report).context("cannot encode the report as JSON")? + "\n"
            } else {
                render::render_watch(&report, &stamp)
            };
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("cannot write the report")?;
            (before, start) = (after, end);
        }
    })
}
