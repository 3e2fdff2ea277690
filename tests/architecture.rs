//! The layers of the crate, checked from the source: reads every file under `src/` and
//! `workers/`, finds what each imports of the crate (`use crate::x`, `crate::x::` paths,
//! `super::` chains that leave a layer, `use crate::{a, b}` groups) and fails, naming file
//! and line, when a layer imports one it must not, or when the top-level modules import
//! each other in a cycle.
//!
//! The layers: `domain` is pure; `queue` is the job runtime and
//! knows no application; `store` is SQL and knows no HTTP or job runtime; `config` is read
//! by everyone and reads no one; `api` calls the filing lifecycle, never a job handler.

#[path = "architecture/graph.rs"]
mod graph;
#[path = "architecture/scan.rs"]
mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use graph::{a_cycle_in, strongly_connected};
use scan::{Token, imports_of, tokens};

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
