//! Folded stacks to an SVG flame graph, drawn by inferno (the Rust port of
//! FlameGraph's flamegraph.pl).

use std::collections::BTreeMap;

use inferno::flamegraph::{
    self, Options,
    color::{BasicPalette, Palette},
};

/// Fails on an empty profile: inferno has nothing to draw.
pub fn render(
    folded: &BTreeMap<String, u64>,
    title: &str,
    subtitle: &str,
) -> std::io::Result<Vec<u8>> {
    let mut options = Options::default();
    options.title = title.to_owned();
    options.subtitle = Some(subtitle.to_owned());
    options.colors = Palette::Basic(BasicPalette::Hot);
    options.count_name = "samples".to_owned();
    let lines: Vec<String> = folded
        .iter()
        .map(|(path, n)| format!("{path} {n}"))
        .collect();
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_svg_with_every_frame_and_the_title() {
        let mut folded = BTreeMap::new();
        folded.insert("__do_softirq;net_rx_action;tcp_collapse".to_owned(), 5);
        folded.insert("__do_softirq;net_rx_action;napi_poll".to_owned(), 2);
        let svg = String::from_utf8(render(&folded, "netlat test", "7 samples").unwrap()).unwrap();
        assert!(svg.starts_with("<?xml"), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for name in ["netlat test", "tcp_collapse", "net_rx_action", "napi_poll"] {
            assert!(svg.contains(name), "{name} missing");
        }
    }

    #[test]
    fn an_empty_profile_is_an_error_not_an_empty_picture() {
        assert!(render(&BTreeMap::new(), "nothing", "0 samples").is_err());
    }
}
