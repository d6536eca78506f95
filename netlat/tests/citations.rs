//! What netlat says and its sources cite public documents by name ("The
//! story of one latency spike", Linkerd's network-performance notes), never
//! the project's internal labels for them (the word seed or issue, then a
//! number).

use std::path::{Path, PathBuf};

/// `seed` or `issue`, then at most one of ` -_`, an optional `#`, a digit.
fn internal_label(line: &str) -> Option<&str> {
    let lower = line.to_ascii_lowercase();
    for word in ["seed", "issue"] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(word) {
            let start = from + at;
            let rest = &lower.as_bytes()[start + word.len()..];
            let rest = match rest.first() {
                Some(b' ' | b'-' | b'_') => &rest[1..],
                _ => rest,
            };
            let rest = rest.strip_prefix(b"#").unwrap_or(rest);
            if rest.first().is_some_and(u8::is_ascii_digit) {
                return Some(&line[start..(start + word.len() + 3).min(line.len())]);
            }
            from = start + word.len();
        }
    }
    None
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else if ["rs", "md", "txt", "json", "yml", "yaml", "toml"]
            .iter()
            .any(|ext| path.extension().is_some_and(|e| e == *ext))
        {
            out.push(path);
        }
    }
}

#[test]
fn label_finder_finds_labels() {
    // Put together at run time, so this file holds no label itself and is
    // scanned like every other.
    for (word, rest) in [
        ("seed", " 003"),
        ("Seed", " 000's"),
        ("seed", "-003"),
        ("seed", "_003"),
        ("issue", " 6"),
        ("issue", " #13"),
    ] {
        let labelled = format!("{word}{rest}");
        assert!(internal_label(&labelled).is_some(), "{labelled}");
    }
    for fine in [
        "a seed crate",
        "issues",
        "the seeds",
        "an issue with 6 parts",
    ] {
        assert!(internal_label(fine).is_none(), "{fine}");
    }
}

#[test]
fn no_internal_labels_in_code_docs_or_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut all = Vec::new();
    for part in [
        "netlat",
        "netlat-common",
        "netlat-ebpf",
        "netlat-testkit",
        "xtask",
        "deploy",
    ] {
        files(&root.join(part), &mut all);
    }
    all.push(root.join("README.md"));
    let mut found = Vec::new();
    for path in &all {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if let Some(label) = internal_label(line) {
                found.push(format!("{}:{}: {label}", path.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "internal labels:\n{}", found.join("\n"));
}
