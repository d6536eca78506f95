//! `--json`: one document per report.

use crate::model::report::HistogramReport;

/// Pretty for a single result; one compact line per report for `--interval`,
/// so the stream can be read as JSON lines.
pub fn render(report: &HistogramReport, compact: bool) -> String {
    let text = if compact {
        serde_json::to_string(report)
    } else {
        serde_json::to_string_pretty(report)
    };
    // Serializing plain numbers and strings cannot fail.
    text.expect("report serializes") + "\n"
}
