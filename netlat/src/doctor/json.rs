//! The report for machines: the same facts as the text, as JSON.

use super::checks::Report;

/// Pretty JSON for one report.
pub fn render(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// One line per report (JSON Lines), for `--watch`.
pub fn render_line(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string(report)
}
