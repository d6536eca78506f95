//! Errors as the single line netlat prints.

use std::io;

/// An error and its sources on one line.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s.replace('\n', " ")
}

/// "Operation not permitted", without std's " (os error 1)" suffix.
pub fn errno_text(errno: i32) -> String {
    io_text(&io::Error::from_raw_os_error(errno))
}

pub fn io_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}
