//! Output formats: pure functions from a report to text.

pub mod compare;
pub mod info;
pub mod json;
pub mod slow;
pub mod text;
