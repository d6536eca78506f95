//! `netlat report`'s page as one self-contained HTML file: the styles,
//! the scripts and the run's data inlined, nothing fetched, so it opens
//! from file:// and can be mailed or attached to a ticket as it is.

use super::page_data::PageData;

const TEMPLATE: &str = include_str!("page.html");
const CSS: &str = include_str!("page.css");
/// In load order: the ported computations, the flame graph, the page.
const SCRIPTS: [&str; 3] = [
    include_str!("stats.js"),
    include_str!("flame.js"),
    include_str!("page.js"),
];

/// The whole page for `data`.
pub fn page(data: &PageData) -> String {
    let json = script_safe_json(data);
    let title = escape_html(&data.title);
    let js = SCRIPTS.join("\n");
    let mut out = String::with_capacity(TEMPLATE.len() + CSS.len() + js.len() + json.len());
    // One pass over the template, so nothing substituted (a title holding
    // "{{DATA}}") is ever read as a placeholder itself.
    let mut rest = TEMPLATE;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .expect("page.html closes every placeholder");
        match &after[..end] {
            "TITLE" => out.push_str(&title),
            "CSS" => out.push_str(CSS),
            "JS" => out.push_str(&js),
            "DATA" => out.push_str(&json),
            other => panic!("page.html has an unknown placeholder {other}"),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The data as JSON that cannot end its `<script>` element: `<`, `>` and
/// `&` occur only inside JSON strings, where `\u003c` is the same string,
/// so a task named `</script>` stays text.
fn script_safe_json(data: &PageData) -> String {
    // Plain strings and numbers: serializing cannot fail.
    let json = serde_json::to_string(data).expect("page data serializes");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            _ => out.push(c),
        }
    }
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::page_data::{MetaSection, PageRun, PageSlow, PageWindow};

    fn data(title: &str, task: &str) -> PageData {
        PageData {
            title: title.into(),
            runs: vec![PageRun {
                name: "run".into(),
                source: "recording",
                function: "net_rx_action".into(),
                backend: "fentry".into(),
                host: "h".into(),
                kernel: "6.1".into(),
                cpus: 2,
                netlat_version: "0.1.0".into(),
                start_unix_ms: 1.0e12,
                duration_ns: 1_000_000_000,
                interval_ns: 1_000_000_000,
                threshold_ns: Some(2_000_000),
                unit: "us",
                unit_ns: 1_000,
                buckets: vec![[3_000_000, 3_145_727]],
                windows: vec![PageWindow {
                    t: 0,
                    n: 1,
                    sum: 3_000_000,
                    min: 3_000_000,
                    max: 3_000_000,
                    b: vec![[0, 1]],
                }],
                slow: vec![PageSlow {
                    t: 0,
                    d: 3_000_000,
                    w: 0,
                    cpu: 0,
                    context: "softirq".into(),
                    task: task.into(),
                    socket: None,
                    line: format!("3ms {task}"),
                }],
                stacks: vec![],
                samples: vec![],
                frequency_hz: 0,
                slow_only: false,
                meta: vec![MetaSection {
                    title: "Sysctls".into(),
                    rows: vec![["a&b".into(), "<1>".into()]],
                }],
            }],
        }
    }

    fn data_element(page: &str) -> &str {
        let open = r#"<script type="application/json" id="netlat-data">"#;
        let start = page.find(open).expect("data element") + open.len();
        let len = page[start..].find("</script>").expect("data element ends");
        &page[start..start + len]
    }

    #[test]
    fn a_task_named_like_a_closing_tag_stays_inside_the_data() {
        let d = data("run", "</script><script>alert(1)</script> 1/1 & co");
        let page = page(&d);
        let json = data_element(&page);
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        assert!(json.contains(r"\u003c/script\u003e"), "{json}");
        // The escapes are the same JSON: the page reads back what was given.
        let back: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back, serde_json::to_value(&d).unwrap());
    }

    #[test]
    fn the_title_is_text_and_no_placeholder_is_left() {
        let page = page(&data("<b>{{DATA}}</b> & more", "t 1/1"));
        assert!(page.contains("<title>&lt;b&gt;{{DATA}}&lt;/b&gt; &amp; more</title>"));
        assert!(!page.contains("{{CSS}}") && !page.contains("{{JS}}"));
        // The title's own, in <title>, <h1> and the data.
        assert_eq!(page.matches("{{").count(), 3);
    }

    #[test]
    fn the_page_is_self_contained() {
        let page = page(&data("run", "t 1/1"));
        for attr in ["src=", "href="] {
            for quote in ["\"", "'", ""] {
                for scheme in ["http://", "https://", "//"] {
                    let needle = format!("{attr}{quote}{scheme}");
                    assert!(!page.contains(&needle), "{needle} in the page");
                }
            }
        }
        assert!(!page.contains("<link") && !page.contains("@import"));
        assert!(!page.contains("<script src"));
        // The scripts and styles are inline; none can close its own element.
        for script in SCRIPTS {
            assert!(!script.contains("</script"), "a script closes its element");
        }
        assert!(!CSS.contains("</style"));
        assert!(page.contains("window.netlatReport"));
    }
}
