//! The layers of the crate, checked from the source: reads every file under `src/` and
//! `workers/`, finds what each imports of the crate (`use crate::x`, `crate::x::` paths,
//! `super::` chains that leave a layer, `use crate::{a, b}` groups) and fails, naming file
//! and line, when a layer imports one it must not, or when the top-level modules import
//! each other in a cycle.
//!
//! The layers (see `docs/decisions.md`): `domain` is pure; `queue` is the job runtime and
//! knows no application; `store` is SQL and knows no HTTP or job runtime; `config` is read
//! by everyone and reads no one; `api` calls the filing lifecycle, never a job handler.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One import of a crate module: where it is written and which top-level module it names.
#[derive(Debug, Clone)]
struct Import {
    file: String,
    line: usize,
    /// The top-level module of the importing file (`queue` for `src/queue/amqp/relay.rs`).
    from: String,
    /// The top-level module imported (`app` for `use crate::app::Services`).
    to: String,
    /// The path as resolved, e.g. `crate::app::Services`.
    path: String,
}

/// The tree to check: this crate, or `BEIAN_ARCHITECTURE_ROOT` (to run the rules against
/// another checkout, e.g. the commit before a change).
fn root() -> PathBuf {
    std::env::var_os("BEIAN_ARCHITECTURE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/queue/amqp/relay.rs` is `[queue, amqp, relay]`,
/// `src/queue/mod.rs` is `[queue]`, `workers/sms_send.rs` is `[workers, sms_send]` (lib.rs
/// mounts `workers/` as `crate::workers`). `None` for the crate roots.
fn module_path(relative: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.first().map(String::as_str) {
        Some("src") => {
            parts.remove(0);
        }
        Some("workers") => {}
        _ => return None,
    }
    let last = parts.pop()?;
    let stem = last.trim_end_matches(".rs");
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return None;
    }
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    Some(parts)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// Tokens with their line numbers; comments, strings and char literals removed.
fn tokens(text: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && raw_string_at(&chars, i) {
            // r"..." or r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some('\n') => {
                        line += 1;
                        j += 1;
                    }
                    Some(_) => j += 1,
                }
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if chars.get(i) == Some(&'\n') {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('a', '\n', '\'') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1; // a lifetime: the name follows as an identifier
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Token::Ident(chars[start..i].iter().collect()), line));
        } else if c == ':' && next == Some(':') {
            out.push((Token::PathSep, line));
            i += 2;
        } else {
            out.push((Token::Punct(c), line));
            i += 1;
        }
    }
    out
}

fn raw_string_at(chars: &[char], i: usize) -> bool {
    // `r` must start a token (not the end of an identifier like `for`).
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// The crate modules a file names, resolved to absolute paths (`crate::x::y`), with their
/// lines. `module` is the file's own module path; inline `mod name { ... }` blocks extend it.
fn imports_of(file: &str, module: &[String], text: &str) -> Vec<(Vec<String>, usize)> {
    let toks = tokens(text);
    let mut out = Vec::new();
    // The module path at each brace depth (inline modules push a name).
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut depth = 0usize;
    let mut pending_mod: Option<String> = None;
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        match tok {
            Token::Punct('{') => {
                depth += 1;
                if let Some(name) = pending_mod.take() {
                    stack.push((depth, name));
                }
                i += 1;
                continue;
            }
            Token::Punct('}') => {
                if stack.last().is_some_and(|(d, _)| *d == depth) {
                    stack.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
                continue;
            }
            Token::Punct(';') => pending_mod = None,
            Token::Ident(word) if word == "mod" => {
                if let Some((Token::Ident(name), _)) = toks.get(i + 1) {
                    pending_mod = Some(name.clone());
                    i += 2;
                    continue;
                }
            }
            _ => {}
        }
        // A path start: `crate::` or `super::` (not preceded by `::`, which would make it
        // a segment of a longer path such as `beian::crate`).
        let preceded_by_sep = i > 0 && toks[i - 1].0 == Token::PathSep;
        let here: Vec<String> = module
            .iter()
            .cloned()
            .chain(stack.iter().map(|(_, n)| n.clone()))
            .collect();
        let base = match tok {
            Token::Ident(w) if w == "crate" && !preceded_by_sep => Some((Vec::new(), i + 1)),
            Token::Ident(w) if w == "super" && !preceded_by_sep => {
                let mut base = here.clone();
                let mut j = i;
                let mut ok = true;
                while matches!(&toks.get(j), Some((Token::Ident(w), _)) if w == "super")
                    && toks.get(j + 1).map(|t| &t.0) == Some(&Token::PathSep)
                {
                    if base.pop().is_none() {
                        ok = false;
                    }
                    j += 2;
                }
                if ok {
                    // `j` is past the last `super::`; the resolver below expects the `::`.
                    Some((base, j - 1))
                } else {
                    eprintln!("{file}:{line}: `super::` goes above the crate root");
                    None
                }
            }
            _ => None,
        };
        let Some((base, sep)) = base else {
            i += 1;
            continue;
        };
        if toks.get(sep).map(|t| &t.0) != Some(&Token::PathSep) {
            i += 1;
            continue;
        }
        let mut paths = Vec::new();
        let end = resolve(&toks, sep + 1, base, &mut paths);
        for path in paths {
            out.push((path, *line));
        }
        i = end.max(i + 1);
    }
    out
}

/// Reads the rest of a path after `::` (an identifier chain, or a `{ ... }` group, nested)
/// and collects the paths it names. Returns the index after it.
fn resolve(
    toks: &[(Token, usize)],
    mut i: usize,
    mut path: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Token::Ident(name)) => {
                if name != "self" {
                    path.push(name.clone());
                }
                i += 1;
                if toks.get(i).map(|t| &t.0) == Some(&Token::PathSep) {
                    i += 1;
                    continue;
                }
                out.push(path);
                return i;
            }
            Some(Token::Punct('{')) => {
                i += 1;
                loop {
                    match toks.get(i).map(|t| &t.0) {
                        None => return i,
                        Some(Token::Punct('}')) => return i + 1,
                        Some(Token::Punct(',')) => i += 1,
                        Some(_) => i = resolve(toks, i, path.clone(), out),
                    }
                }
            }
            Some(Token::Punct('*')) => {
                out.push(path);
                return i + 1;
            }
            _ => {
                out.push(path);
                return i;
            }
        }
    }
}

/// Every import of a crate module between top-level modules, across `src/` and `workers/`.
fn all_imports() -> Vec<Import> {
    let root = root();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("workers"), &mut files);
    let mut out = Vec::new();
    for path in files {
        let relative = path.strip_prefix(&root).unwrap().to_path_buf();
        let Some(module) = module_path(&relative) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let file = relative.display().to_string();
        for (target, line) in imports_of(&file, &module, &text) {
            let Some(to) = target.first() else {
                continue; // `crate::{...}` names were resolved one by one; `crate::*`: none
            };
            out.push(Import {
                file: file.clone(),
                line,
                from: module[0].clone(),
                to: to.clone(),
                path: format!("crate::{}", target.join("::")),
            });
        }
    }
    out
}

/// Fails listing every import from `layer` of a module in `forbidden`.
fn forbid(layer: &str, forbidden: &[&str], why: &str) {
    let found: Vec<String> = all_imports()
        .into_iter()
        .filter(|i| i.from == layer && forbidden.contains(&i.to.as_str()))
        .map(|i| format!("  {}:{}: {} imports {}", i.file, i.line, i.from, i.path))
        .collect();
    assert!(
        found.is_empty(),
        "`{layer}` must not import {}: {why}\n{}",
        forbidden.join(", "),
        found.join("\n")
    );
}

/// The top-level modules of the crate (`lib.rs` declares them).
fn top_level_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let toks = tokens(&lib);
    toks.windows(2)
        .filter_map(|w| match (&w[0].0, &w[1].0) {
            (Token::Ident(m), Token::Ident(name)) if m == "mod" => Some(name.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_scanner_finds_every_form_of_import() {
    let text = r#"
        //! use crate::commented::Out;
        use crate::store::{Db, jobs::{self, open_counts}};
        use crate::{app::Services, config};
        fn f() { let s = "crate::in_a_string::X"; crate::clock::Clock::system(); }
        mod inner {
            use super::super::api::AppState;
            use super::helper;
        }
        use super::super::workers::registry;
    "#;
    let module = vec!["queue".to_string(), "amqp".to_string()];
    let found: Vec<(String, usize)> = imports_of("x.rs", &module, text)
        .into_iter()
        .map(|(p, l)| (p.join("::"), l))
        .collect();
    let expect = [
        ("store::Db", 3),
        ("store::jobs", 3),
        ("store::jobs::open_counts", 3),
        ("app::Services", 4),
        ("config", 4),
        ("clock::Clock::system", 5),
        ("queue::api::AppState", 7), // super::super from queue::amqp::inner is queue
        ("queue::amqp::helper", 8),
        ("workers::registry", 10),
    ];
    let expect: Vec<(String, usize)> = expect.iter().map(|(p, l)| (p.to_string(), *l)).collect();
    assert_eq!(found, expect);
}

#[test]
fn domain_imports_nothing_of_the_other_layers() {
    let others: Vec<String> = top_level_modules()
        .into_iter()
        .filter(|m| m != "domain")
        .collect();
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    forbid(
        "domain",
        &others,
        "the domain rules are pure (no I/O, no HTTP, no jobs, no configuration)",
    );
}

#[test]
fn queue_knows_no_application() {
    forbid(
        "queue",
        &["app", "api", "workers", "services", "filings"],
        "the job runtime is generic over its context; the application hands it a pool, a \
         clock, its settings, the registry of job kinds and the cron table",
    );
}

#[test]
fn store_knows_no_http_and_no_job_runtime() {
    forbid(
        "store",
        &["api", "app", "workers", "queue"],
        "the store is SQL; view types belong to `api`, the runtime calls the store (not the \
         other way round)",
    );
}

#[test]
fn config_reads_no_one() {
    forbid(
        "config",
        &["workers", "app", "api"],
        "configuration checks syntax; which queues and schedules exist is checked at start",
    );
}

#[test]
fn api_calls_no_job_handler() {
    forbid(
        "api",
        &["workers"],
        "handlers call the filing lifecycle, which the jobs call too",
    );
}

#[test]
fn no_cycle_among_top_level_modules() {
    let modules = top_level_modules();
    // One example import per edge, for the message.
    let mut edges: BTreeMap<String, BTreeMap<String, Import>> = BTreeMap::new();
    for import in all_imports() {
        if import.from == import.to || !modules.contains(&import.to) {
            continue;
        }
        edges
            .entry(import.from.clone())
            .or_default()
            .entry(import.to.clone())
            .or_insert(import);
    }
    let cycles = strongly_connected(&modules, &edges);
    let mut report = Vec::new();
    for component in &cycles {
        let cycle = a_cycle_in(component, &edges);
        let mut text = format!(
            "modules in one cycle: {}\n  for example: {}\n  the imports among them (one per pair):",
            component.iter().cloned().collect::<Vec<_>>().join(", "),
            cycle.join(" -> ")
        );
        for (from, targets) in &edges {
            if !component.contains(from) {
                continue;
            }
            for (to, i) in targets {
                if component.contains(to) {
                    text.push_str(&format!(
                        "\n    {}:{}: {from} imports {}",
                        i.file, i.line, i.path
                    ));
                }
            }
        }
        report.push(text);
    }
    assert!(
        report.is_empty(),
        "the top-level modules import each other in a cycle:\n{}",
        report.join("\n")
    );
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn strongly_connected(
    nodes: &BTreeSet<String>,
    edges: &BTreeMap<String, BTreeMap<String, Import>>,
) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, Import>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        next: usize,
        out: Vec<BTreeSet<String>>,
    }
    fn visit(s: &mut State<'_>, v: &str) {
        s.index.insert(v.to_string(), s.next);
        s.low.insert(v.to_string(), s.next);
        s.next += 1;
        s.stack.push(v.to_string());
        s.on_stack.insert(v.to_string());
        let targets: Vec<String> = s
            .edges
            .get(v)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for w in targets {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let low = s.low[v].min(s.low[&w]);
                s.low.insert(v.to_string(), low);
            } else if s.on_stack.contains(&w) {
                let low = s.low[v].min(s.index[&w]);
                s.low.insert(v.to_string(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = w == v;
                component.insert(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for node in nodes {
        if !s.index.contains_key(node) {
            visit(&mut s, node);
        }
    }
    s.out
}

/// One cycle through a strongly connected component: a breadth-first walk back to its
/// first module.
fn a_cycle_in(
    component: &BTreeSet<String>,
    edges: &BTreeMap<String, BTreeMap<String, Import>>,
) -> Vec<String> {
    let start = component.iter().next().unwrap().clone();
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.clone()]);
    while let Some(v) = queue.pop_front() {
        for w in edges.get(&v).map(|m| m.keys()).into_iter().flatten() {
            if !component.contains(w) {
                continue;
            }
            if *w == start {
                let mut path = vec![start.clone()];
                let mut at = v.clone();
                while at != start {
                    path.push(at.clone());
                    at = previous[&at].clone();
                }
                path.push(start.clone());
                let last = path.len() - 1;
                path[1..last].reverse();
                return path;
            }
            if !previous.contains_key(w) && *w != start {
                previous.insert(w.clone(), v.clone());
                queue.push_back(w.clone());
            }
        }
    }
    component.iter().cloned().collect()
}
