//! Latency over time, for `netlat report`: recordings (and serve's
//! captures, `slow --json` output) turned into one self-contained HTML
//! page (a heat map of time x latency, the slow calls on it, and the
//! histogram, calls and flame graph of any range selected) or a static
//! SVG heat map.

pub mod html;
pub mod page_data;
