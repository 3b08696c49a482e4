//! The module layering stays true: every `crate::` path in `src/` points to the same layer or
//! one below, and the modules of one layer import each other without a cycle.
//!
//! The layers are the ones the crate docs' "Architecture" section shows. A new top-level module
//! must be given a layer here, so the picture cannot drift without this test noticing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. A module may import its own layer (without a cycle) and any layer below.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "primitives",
        &[
            "error",
            "ids",
            "secret",
            "clock",
            "crypto",
            "runtime",
            "http",
            "audit",
            "identity",
            "directory",
            "route",
        ],
    ),
    ("store", &["store"]),
    ("protocol", &["oauth"]),
    ("context", &["context"]),
    (
        "capabilities",
        &[
            "provider",
            "policy",
            "session",
            "binding",
            "connection",
            "login",
            "visitor",
        ],
    ),
    ("facade", &["broker"]),
    ("integrations", &["axum", "testing"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src/`: `src/login/mod.rs` is `["login"]`,
/// `src/login/callback.rs` is `["login", "callback"]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("file below src/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The top-level modules a line of code names through `crate::` (or `$crate::`), including
/// every member of a `crate::{a::X, b}` group, and through `super::` chains that climb out of
/// the file's own top-level module.
fn referenced(line: &str, path: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let bytes: Vec<char> = line.chars().collect();
    let text: String = bytes.iter().collect();
    let mut i = 0;
    while let Some(pos) = text[i..].find("crate::") {
        let start = i + pos;
        let preceded_by_ident = text[..start].chars().last().is_some_and(is_ident);
        i = start + "crate::".len();
        if preceded_by_ident {
            continue;
        }
        let rest = &text[i..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut element_start = true;
            let mut ident = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        element_start = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 1 && element_start {
                    if is_ident(c) {
                        ident.push(c);
                        continue;
                    }
                    if !ident.is_empty() {
                        out.push(std::mem::take(&mut ident));
                        element_start = false;
                    }
                }
            }
            if !ident.is_empty() {
                out.push(ident);
            }
        } else {
            let ident: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            if !ident.is_empty() {
                out.push(ident);
            }
        }
    }
    // `super::super::x` from src/a/b.rs reaches the crate root's `x`.
    let mut j = 0;
    while let Some(pos) = text[j..].find("super::") {
        let start = j + pos;
        j = start + 1;
        if text[..start].chars().last().is_some_and(is_ident) || text[..start].ends_with("::") {
            continue;
        }
        let mut rest = &text[start..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        // The file's own module path, minus the file itself for a non-mod.rs file, is where
        // `super` is counted from.
        if ups >= path.len() {
            let ident: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            if !ident.is_empty() {
                out.push(ident);
            }
        }
    }
    out
}

fn code_lines(source: &str) -> impl Iterator<Item = &str> {
    source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| l.split(" // ").next().unwrap_or(l))
}

/// Top-level module -> the top-level modules it names, with one example file for each edge.
fn import_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let top_level: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_path(&src, f).first().cloned())
        .filter(|m| m != "lib")
        .collect();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        let path = module_path(&src, file);
        let Some(me) = path.first().cloned() else {
            continue;
        };
        if me == "lib" {
            continue;
        }
        let source = std::fs::read_to_string(file).expect("source is UTF-8");
        let edges = graph.entry(me.clone()).or_default();
        for line in code_lines(&source) {
            for target in referenced(line, &path) {
                if target != me && top_level.contains(&target) {
                    let shown = file
                        .strip_prefix(&src)
                        .unwrap_or(file)
                        .display()
                        .to_string();
                    edges.entry(target).or_insert(shown);
                }
            }
        }
    }
    graph
}

#[test]
fn every_module_has_a_layer() {
    let missing: Vec<String> = import_graph()
        .into_keys()
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a layer in tests/architecture.rs: {missing:?}"
    );
}

#[test]
fn imports_only_look_down() {
    let mut upward = Vec::new();
    for (from, edges) in import_graph() {
        let Some(from_layer) = layer_of(&from) else {
            continue;
        };
        for (to, file) in edges {
            if let Some(to_layer) = layer_of(&to)
                && to_layer > from_layer
            {
                upward.push(format!(
                    "{from} ({}) imports {to} ({}) in src/{file}",
                    LAYERS[from_layer].0, LAYERS[to_layer].0
                ));
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}

#[test]
fn no_cycle_between_modules() {
    let graph = import_graph();
    // Depth-first search with colours; the first back edge found is reported with its cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|m| m == next).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(node, &graph, &mut state, &mut stack) {
                panic!("module cycle: {}", cycle.join(" -> "));
            }
        }
    }
}

/// The rule of [`imports_only_look_down`] for the layers below the capabilities alone, so that a
/// failure there names the lower layer at once.
#[test]
fn the_layers_below_the_capabilities_only_look_down() {
    let capabilities = LAYERS
        .iter()
        .position(|(name, _)| *name == "capabilities")
        .expect("a capabilities layer");
    let mut upward = Vec::new();
    for (from, edges) in import_graph() {
        let Some(from_layer) = layer_of(&from) else {
            continue;
        };
        if from_layer >= capabilities {
            continue;
        }
        for (to, file) in edges {
            if layer_of(&to).is_some_and(|to_layer| to_layer > from_layer) {
                upward.push(format!("{from} imports {to} in src/{file}"));
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}

/// The capabilities' own edges ordered (Kahn's algorithm), so that a cycle among them is named
/// with every capability in it; [`no_cycle_between_modules`] covers every module.
#[test]
fn the_capabilities_import_each_other_without_a_cycle() {
    let capabilities: BTreeSet<&str> = LAYERS
        .iter()
        .find(|(name, _)| *name == "capabilities")
        .map(|(_, mods)| mods.iter().copied().collect())
        .expect("a capabilities layer");
    let graph = import_graph();
    // Kahn's algorithm on the capabilities' own edges: whatever cannot be ordered is a cycle.
    let mut remaining: BTreeMap<&str, BTreeSet<&str>> = capabilities
        .iter()
        .map(|m| {
            let deps = graph
                .get(*m)
                .into_iter()
                .flat_map(|e| e.keys())
                .map(String::as_str)
                .filter(|d| capabilities.contains(d) && d != m)
                .collect();
            (*m, deps)
        })
        .collect();
    loop {
        let ready: Vec<&str> = remaining
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(m, _)| *m)
            .collect();
        if ready.is_empty() {
            break;
        }
        for m in ready {
            remaining.remove(m);
            for deps in remaining.values_mut() {
                deps.remove(m);
            }
        }
    }
    assert!(
        remaining.is_empty(),
        "capabilities in (or importing) a cycle: {:?}",
        remaining.keys().collect::<Vec<_>>()
    );
}

#[test]
fn the_checker_sees_grouped_and_super_imports() {
    let at_file = vec!["login".to_owned(), "callback".to_owned()];
    assert_eq!(
        referenced(
            "use crate::{error::Error, ids::{TenantId, UserId}};",
            &at_file
        ),
        ["error", "ids"]
    );
    assert_eq!(
        referenced("let x = $crate::Error::Config;", &at_file),
        ["Error"]
    );
    assert_eq!(
        referenced("use super::super::store::key;", &at_file),
        ["store"]
    );
    assert!(referenced("use super::PendingLogin;", &at_file).is_empty());
    assert!(referenced("let my_crate::x = 1;", &at_file).is_empty());
}
