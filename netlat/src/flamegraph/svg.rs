//! Folded stacks to an SVG flame graph, drawn by inferno (the Rust port of
//! FlameGraph's flamegraph.pl).

use std::collections::BTreeMap;

use inferno::{
    differential,
    flamegraph::{
        self, Options,
        color::{BasicPalette, Palette},
    },
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

fn lines(folded: &BTreeMap<String, u64>) -> Vec<u8> {
    crate::flamegraph::fold::to_text(folded).into_bytes()
}

/// A differential flame graph (FlameGraph's difffolded.pl, by inferno):
/// frame widths are the slow calls' samples, red where a frame takes a
/// bigger share of the slow calls than of the fast ones, blue where
/// smaller. The fast profile is scaled to the slow one's total, or
/// everything would be blue for having fewer samples.
pub fn render_diff(
    fast: &BTreeMap<String, u64>,
    slow: &BTreeMap<String, u64>,
    title: &str,
    subtitle: &str,
) -> std::io::Result<Vec<u8>> {
    let mut diffed = Vec::new();
    differential::from_readers(
        differential::Options {
            normalize: true,
            strip_hex: false,
        },
        &lines(fast)[..],
        &lines(slow)[..],
        &mut diffed,
    )?;
    let mut options = Options::default();
    options.title = title.to_owned();
    options.subtitle = Some(subtitle.to_owned());
    options.count_name = "samples".to_owned();
    let text = String::from_utf8_lossy(&diffed);
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, text.lines(), &mut svg)?;
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

    #[test]
    fn a_differential_graph_colours_what_grew_red() {
        let mut fast = BTreeMap::new();
        fast.insert("net_rx_action;napi_poll".to_owned(), 90);
        fast.insert("net_rx_action;tcp_collapse".to_owned(), 10);
        let mut slow = BTreeMap::new();
        slow.insert("net_rx_action;tcp_collapse".to_owned(), 45);
        slow.insert("net_rx_action;napi_poll".to_owned(), 5);
        let svg =
            String::from_utf8(render_diff(&fast, &slow, "diff", "slow vs fast").unwrap()).unwrap();
        assert!(svg.trim_end().ends_with("</svg>"));
        // inferno writes the change of each frame into its tooltip.
        let frame = |name: &str| {
            let i = svg.find(&format!("<title>{name} (")).expect(name);
            svg[i..i + 120].to_owned()
        };
        assert!(
            frame("tcp_collapse").contains("+"),
            "{}",
            frame("tcp_collapse")
        );
        assert!(frame("napi_poll").contains("-"), "{}", frame("napi_poll"));
    }
}
