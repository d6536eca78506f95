//! `netlat info` as text: one aligned table of capabilities, then the
//! backend each traced function would get.

use std::fmt::Write as _;

use crate::{model::info::InfoReport, tracing::capabilities::Status};

pub fn text(r: &InfoReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "netlat {}", r.version);
    let _ = writeln!(out, "kernel {} ({})", r.kernel, r.arch);
    if !r.root {
        let _ = writeln!(
            out,
            "not root: the answers marked \"needs root\" come only from a run with sudo"
        );
    }
    let _ = writeln!(out, "\nWhat this kernel offers netlat:");
    let name_width = r
        .capabilities
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for c in &r.capabilities {
        let _ = writeln!(
            out,
            "  {:name_width$}  {:10}  {}",
            c.name,
            c.answer.status.word(),
            c.answer.detail
        );
    }
    let _ = writeln!(
        out,
        "\nBackend picked by {} (--backend auto):",
        r.picked_by.join(", ")
    );
    let fn_width = r
        .backends
        .iter()
        .map(|p| p.function.len())
        .max()
        .unwrap_or(0);
    for p in &r.backends {
        let skipped: Vec<String> = p
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.backend, s.reason))
            .collect();
        let line = match (p.status, &p.backend) {
            (Status::Yes, Some(backend)) => {
                let mut line = format!(
                    "{backend:10}  {}",
                    p.detail.as_deref().unwrap_or(backend.as_str())
                );
                if !skipped.is_empty() {
                    let _ = write!(line, " (skipped {})", skipped.join("; "));
                }
                line
            }
            (status, _) => format!(
                "{:10}  {}",
                if status == Status::No {
                    "none"
                } else {
                    status.word()
                },
                p.reason.as_deref().unwrap_or("")
            ),
        };
        let _ = writeln!(out, "  {:fn_width$}  {line}", p.function);
    }
    out
}

pub fn json(r: &InfoReport) -> String {
    // Plain strings and numbers: serializing cannot fail.
    serde_json::to_string_pretty(r).expect("info serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::info::{Capability, INFO_SCHEMA_VERSION, Pick, Skipped},
        tracing::capabilities::Answer,
    };

    fn report(root: bool) -> InfoReport {
        let cap = |key: &str, name: &str, status, detail: &str| Capability {
            key: key.into(),
            name: name.into(),
            answer: Answer {
                status,
                detail: detail.into(),
            },
        };
        InfoReport {
            schema: INFO_SCHEMA_VERSION,
            version: "0.1.0 (commit abc, aya 0.14.0)".into(),
            kernel: "6.18.0".into(),
            arch: "x86_64".into(),
            root,
            capabilities: vec![
                cap(
                    "kprobes",
                    "kprobes",
                    Status::No,
                    "kprobes are not available",
                ),
                cap(
                    "raw_tp",
                    "raw_tp",
                    if root { Status::Yes } else { Status::NeedsRoot },
                    "attached",
                ),
            ],
            picked_by: vec!["histogram".into(), "serve".into()],
            backends: vec![
                Pick {
                    function: "net_rx_action".into(),
                    status: Status::Yes,
                    backend: Some("raw_tp".into()),
                    detail: Some("raw_tp irq:softirq_entry/exit".into()),
                    skipped: vec![],
                    reason: None,
                },
                Pick {
                    function: "tcp_collapse".into(),
                    status: Status::No,
                    backend: None,
                    detail: None,
                    skipped: vec![Skipped {
                        backend: "fentry".into(),
                        reason: "refused".into(),
                    }],
                    reason: Some("fentry: refused; kprobe: not available".into()),
                },
            ],
        }
    }

    #[test]
    fn text_aligns_one_row_per_check_and_function() {
        let text = text(&report(true));
        assert_eq!(
            text,
            "netlat 0.1.0 (commit abc, aya 0.14.0)\n\
             kernel 6.18.0 (x86_64)\n\
             \n\
             What this kernel offers netlat:\n  \
             kprobes  no          kprobes are not available\n  \
             raw_tp   yes         attached\n\
             \n\
             Backend picked by histogram, serve (--backend auto):\n  \
             net_rx_action  raw_tp      raw_tp irq:softirq_entry/exit\n  \
             tcp_collapse   none        fentry: refused; kprobe: not available\n"
        );
    }

    #[test]
    fn text_says_which_answers_need_root() {
        let text = text(&report(false));
        assert!(
            text.contains("not root: the answers marked \"needs root\""),
            "{text}"
        );
        assert!(text.contains("raw_tp   needs root  attached"), "{text}");
    }

    #[test]
    fn json_keys_checks_and_functions() {
        let v: serde_json::Value = serde_json::from_str(&json(&report(true))).unwrap();
        assert_eq!(v["capabilities"]["kprobes"]["status"], "no");
        assert_eq!(v["capabilities"]["raw_tp"]["status"], "yes");
        assert_eq!(v["capabilities"]["raw_tp"]["name"], "raw_tp");
        assert_eq!(v["backends"]["net_rx_action"]["backend"], "raw_tp");
        assert_eq!(v["backends"]["tcp_collapse"]["status"], "no");
        assert_eq!(
            v["backends"]["tcp_collapse"]["skipped"][0]["backend"],
            "fentry"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&report(false))).unwrap();
        assert_eq!(v["capabilities"]["raw_tp"]["status"], "needs_root");
        assert_eq!(v["root"], false);
    }
}
