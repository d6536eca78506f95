//! Output formats: pure functions from a report to text.

pub mod capture;
pub mod compare;
pub mod doctor;
pub mod flamegraph;
pub mod histogram;
pub mod info;
pub mod net_rx;
pub mod slow;

/// Unicode's bidirectional formatting characters (UAX #9): they reorder
/// what follows on the line, so a file's text could make a table or an
/// error line read other than it is ("Trojan Source", CVE-2021-42574).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn is_unprintable(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `s` with every control character (ESC, CR, BEL, ...) and bidi control
/// shown as an escape like `\u{1b}`: text read from a file never drives
/// the terminal or reorders the line.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(is_unprintable) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if is_unprintable(c) {
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

    #[test]
    fn bidi_controls_are_escaped() {
        for c in [
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}',
            '\u{061c}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
        ] {
            let shown = super::printable(&format!("a{c}b")).into_owned();
            assert_eq!(shown, format!("a{}b", c.escape_unicode()));
        }
        // Right-to-left text itself is not a control: left as it is.
        assert_eq!(super::printable("שלום"), "שלום");
    }
}
