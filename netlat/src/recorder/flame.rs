//! A capture's flame graph: the samples taken inside its slow calls, drawn
//! on request (serve's /captures/ID/flamegraph.svg, `captures show --svg`)
//! rather than stored, so a capture costs its JSON only.

use std::time::Duration;

use super::document::Capture;
use crate::{
    flamegraph::svg,
    render::slow::{Zone, wall_clock_rfc3339},
};

#[derive(Debug, thiserror::Error)]
pub enum FlameError {
    #[error("capture {id} has no stack samples inside its slow calls: no flame graph to draw")]
    NoSamples { id: String },
    #[error("cannot draw the flame graph of capture {id}: {why}")]
    Render { id: String, why: String },
}

/// The SVG of `capture.stacks.slow`, titled with the function, threshold
/// and capture time.
pub fn render(capture: &Capture) -> Result<Vec<u8>, FlameError> {
    let stacks = &capture.stacks;
    if stacks.slow.is_empty() {
        return Err(FlameError::NoSamples {
            id: capture.id.clone(),
        });
    }
    let title = format!(
        "Kernel stacks in {} calls slower than {}, captured {}",
        capture.function,
        humantime::format_duration(Duration::from_nanos(capture.threshold_ns)),
        wall_clock_rfc3339(capture.window.start_unix_ns, Zone::Utc)
    );
    let samples: u64 = stacks.slow.values().sum();
    let subtitle = format!(
        "{samples} samples at {} Hz on {} (Linux {}), capture {}",
        stacks.frequency_hz, capture.host, capture.kernel, capture.id
    );
    svg::render(&stacks.slow, &title, &subtitle).map_err(|e| FlameError::Render {
        id: capture.id.clone(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::fixture;

    #[test]
    fn titled_with_function_threshold_and_time() {
        let capture = fixture::capture(1_796_267_520_123_456_789, 2);
        let svg = String::from_utf8(render(&capture).unwrap()).unwrap();
        assert_eq!(fixture::svg_root(&svg), "svg");
        assert!(
            svg.contains(
                "Kernel stacks in net_rx_action calls slower than 5ms, captured 2026-12-03T03:12:00.123456Z"
            ),
            "title"
        );
        assert!(svg.contains("tcp_collapse"));
        let mut empty = capture;
        empty.stacks.slow.clear();
        assert!(matches!(render(&empty), Err(FlameError::NoSamples { .. })));
    }
}
