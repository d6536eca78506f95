//! Output formats: pure functions from a report to text.

pub mod json;
pub mod text;
