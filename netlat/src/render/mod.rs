//! Output formats: pure functions from a report to text.

pub mod compare;
pub mod info;
pub mod json;
pub mod slow;
pub mod text;

/// `s` with every control character (ESC, CR, BEL, ...) shown as an escape
/// like `\u{1b}`: text read from a file never drives the terminal.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::printable("tcp_collapse"), "tcp_collapse");
        assert_eq!(
            super::printable("a\u{1b}[2Jb\r\n\u{7}"),
            "a\\u{1b}[2Jb\\u{d}\\u{a}\\u{7}"
        );
    }
}
