//! The module graphs of netlat, netlat-ebpf and xtask, checked without
//! building anything: no import cycle between modules (top-level modules
//! and their direct children), and netlat's `model/` imports nothing from
//! `tracing/` or `system/` and opens no file.
//!
//! A small reader of rustfmt'd source, not a Rust parser: it follows
//! `use crate::...` and `use super::...` trees (nested braces included),
//! `crate::a::b` paths in code, and skips comments, string literals and
//! each file's trailing `#[cfg(test)]` module (tests may reach across).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// A module as the graph sees it: `tracing/backend` for anything under
/// `tracing/backend/`, `cli` for `cli.rs`.
type Node = String;

fn source_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `tracing/backend/attach.rs` is
/// `[tracing, backend, attach]`, `tracing/mod.rs` is `[tracing]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

/// The code of a file without comments, string and char literals, and
/// its trailing test module.
fn code_of(text: &str) -> String {
    // rustfmt'd: the attribute at column 0, the module on the next line,
    // private or `pub(crate)` (a test module other tests borrow from).
    let test_module = ["mod ", "pub(crate) mod ", "pub mod "]
        .iter()
        .filter_map(|m| text.find(&format!("\n#[cfg(test)]\n{m}")))
        .min();
    let text = match test_module {
        Some(i) => &text[..i],
        None => text,
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |j| j + 2);
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].bytes().take_while(|&b| b == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            i += rest[body..]
                .find(&close)
                .map_or(rest.len(), |j| body + j + close.len());
            out.push_str("\"\"");
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            i = j + 1;
            out.push_str("\"\"");
        } else if bytes[i] == b'\'' && (rest.get(2..3) == Some("'") || rest.starts_with("'\\")) {
            // A char literal ('x', '\n', '\''); a lifetime has no closing quote.
            let j = rest[2..].find('\'').map_or(rest.len(), |j| j + 3);
            i += j;
            out.push_str("' '");
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Expands a use tree (`a::{b, c::{d, e}}`, `a::b as c`, `a::*`) into its
/// paths, each as its segments.
fn expand_use_tree(tree: &str) -> Vec<Vec<String>> {
    // Renames go first (`e as f` is e), then the spaces.
    let mut tokens = Vec::new();
    let mut words = tree.split_whitespace();
    while let Some(word) = words.next() {
        if word == "as" {
            // The new name, and whatever punctuation was glued to it.
            let renamed = words.next().unwrap_or_default();
            tokens.push(renamed.trim_start_matches(is_ident_char).to_owned());
        } else {
            tokens.push(word.to_owned());
        }
    }
    let tree = tokens.concat();
    let mut out = Vec::new();
    expand_into(&tree, &mut Vec::new(), &mut out);
    out
}

fn expand_into(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree.find('{') {
        Some(open) => {
            let head = &tree[..open];
            let inner = tree[open + 1..]
                .strip_suffix('}')
                .unwrap_or(&tree[open + 1..]);
            let depth = prefix.len();
            prefix.extend(segments(head));
            for item in split_top_level(inner) {
                expand_into(item, prefix, out);
            }
            prefix.truncate(depth);
        }
        None => {
            let mut full = prefix.clone();
            full.extend(segments(tree));
            if !full.is_empty() {
                out.push(full);
            }
        }
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .filter(|s| !s.is_empty() && *s != "*" && *s != "self")
        .map(str::to_owned)
        .collect()
}

/// Splits `a, b::{c, d}, e` at the commas outside braces.
fn split_top_level(list: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&list[start..]);
    items.into_iter().filter(|s| !s.is_empty()).collect()
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every path a file's code names from `crate::` or `super::`, resolved to
/// absolute segments (without `crate`).
///
/// `super` of `a/b.rs` and of `a/b/mod.rs` (module a::b both) is `a`.
fn referenced_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let resolve = |mut segs: Vec<String>| -> Option<Vec<String>> {
        let first = segs.first()?.clone();
        match first.as_str() {
            "crate" => {
                segs.remove(0);
                Some(segs)
            }
            "super" => {
                let mut base = module.to_vec();
                while segs.first().is_some_and(|s| s == "super") {
                    segs.remove(0);
                    base.pop()?;
                }
                base.extend(segs);
                Some(base)
            }
            _ => None,
        }
    };
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let at_word = i == 0 || !is_ident_byte(bytes[i - 1]);
        if at_word && rest.starts_with("use ") {
            let end = rest.find(';').unwrap_or(rest.len());
            for path in expand_use_tree(&rest[4..end]) {
                paths.extend(resolve(path));
            }
            i += end;
        } else if at_word && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let len = rest
                .bytes()
                .take_while(|&b| is_ident_byte(b) || b == b':')
                .count();
            paths.extend(resolve(segments(&rest[..len])));
            i += len.max(1);
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    paths
}

/// The node of a path: its longest prefix of at most two segments that
/// is a module (`tracing::backend::attach::Tracer` -> `tracing/backend`,
/// `tracing::Thing` re-exported from tracing/mod.rs -> `tracing`).
fn node_of(path: &[String], modules: &BTreeSet<Node>) -> Option<Node> {
    (1..=path.len().min(2))
        .rev()
        .map(|n| path[..n].join("/"))
        .find(|candidate| modules.contains(candidate))
}

/// The module graph of one crate's `src` (the crate root excluded: every
/// module may use what the root declares).
fn graph_of(crate_dir: &str) -> BTreeMap<Node, BTreeSet<Node>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(crate_dir)
        .join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let files: Vec<(Vec<String>, String)> = files
        .iter()
        .filter(|f| {
            let root = f.parent() == Some(src.as_path())
                && (f.ends_with("main.rs") || f.ends_with("lib.rs"));
            !root && !f.ends_with("layering.rs")
        })
        .map(|f| {
            let relative = f.strip_prefix(&src).expect("under src");
            let text =
                std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            (module_path(relative), code_of(&text))
        })
        .collect();
    let modules: BTreeSet<Node> = files
        .iter()
        .filter(|(m, _)| !m.is_empty())
        .map(|(m, _)| m[..m.len().min(2)].join("/"))
        .collect();
    let mut graph: BTreeMap<Node, BTreeSet<Node>> = BTreeMap::new();
    for (module, code) in &files {
        let Some(from) = node_of(module, &modules) else {
            continue;
        };
        let edges = graph.entry(from.clone()).or_default();
        for path in referenced_paths(code, module) {
            if let Some(to) = node_of(&path, &modules)
                && to != from
            {
                edges.insert(to);
            }
        }
    }
    graph
}

fn graph() -> BTreeMap<Node, BTreeSet<Node>> {
    graph_of(".")
}

/// Strongly connected components with more than one node (Tarjan).
fn cycles(graph: &BTreeMap<Node, BTreeSet<Node>>) -> Vec<Vec<Node>> {
    struct State<'a> {
        graph: &'a BTreeMap<Node, BTreeSet<Node>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<Node>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found.sort();
    s.found
}

#[test]
fn reads_nested_use_trees_and_paths_in_code() {
    let code = code_of(
        "use crate::{a::b, c::{d, e as f}};\nuse super::g::{self, h};\n// use crate::no;\nfn x() { let s = \"crate::no\"; crate::i::j(); }\n",
    );
    let module = ["m".to_owned(), "n".to_owned()];
    let paths: Vec<String> = referenced_paths(&code, &module)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(paths, ["a::b", "c::d", "c::e", "m::g", "m::g::h", "i::j"]);
}

/// No cycle in netlat, in its eBPF programs, or in xtask.
#[test]
fn no_import_cycle_between_modules() {
    for (crate_dir, at_least) in [(".", 20), ("../netlat-ebpf", 5), ("../xtask", 10)] {
        let graph = graph_of(crate_dir);
        assert!(
            graph.len() >= at_least,
            "too few modules found in {crate_dir}: {graph:?}"
        );
        let describe = |cycle: &Vec<Node>| {
            cycle
                .iter()
                .map(|v| {
                    let into: Vec<&str> = graph[v]
                        .iter()
                        .filter(|w| cycle.contains(w))
                        .map(String::as_str)
                        .collect();
                    format!("{v} -> {}", into.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let found: Vec<String> = cycles(&graph).iter().map(describe).collect();
        assert!(
            found.is_empty(),
            "import cycles in {crate_dir}: {}",
            found.join(" | ")
        );
    }
}

#[test]
fn model_imports_nothing_from_tracing_or_system() {
    let graph = graph();
    let upward: Vec<String> = graph
        .iter()
        .filter(|(from, _)| from.as_str() == "model" || from.starts_with("model/"))
        .flat_map(|(from, to)| {
            to.iter()
                .filter(|t| {
                    ["tracing", "system"]
                        .iter()
                        .any(|l| *t == l || t.starts_with(&format!("{l}/")))
                })
                .map(move |t| format!("{from} -> {t}"))
        })
        .collect();
    assert!(upward.is_empty(), "model/ must be pure: {upward:?}");
}

/// Pure also means no file is opened there: the callers read, model/ is
/// handed the text or the values.
#[test]
fn model_reads_no_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model");
    let mut files = Vec::new();
    source_files(&dir, &mut files);
    assert!(files.len() > 5, "found {files:?}");
    let io: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text =
                std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let code = code_of(&text);
            [
                "std::fs",
                "fs::",
                "File::",
                "OpenOptions",
                "read_dir",
                "std::io::stdin",
            ]
            .iter()
            .filter(|w| code.contains(*w))
            .map(|w| format!("{}: {w}", f.display()))
            .collect::<Vec<_>>()
        })
        .collect();
    assert!(io.is_empty(), "model/ must not read files: {io:?}");
}
