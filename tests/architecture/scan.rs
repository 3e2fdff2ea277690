//! The import scanner: Rust source to tokens (comments and literals dropped), and the crate
//! paths a file names (`crate::...`, `super::...` resolved against the file's module,
//! `{...}` groups expanded).

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// Tokens with their line numbers; comments, strings and char literals removed.
pub fn tokens(text: &str) -> Vec<(Token, usize)> {
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
pub fn imports_of(file: &str, module: &[String], text: &str) -> Vec<(Vec<String>, usize)> {
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
