//! The house rule "no import cycles", checked on the source: modules (one per file) that name
//! each other through `crate::` or `super::` paths must not form a cycle. A module and its
//! own ancestors are exempt (a parent declares its children; children use its helpers).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every file module of the library, by its path from the crate root.
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts == ["main"] || parts.first().is_some_and(|p| p == "bin") {
                continue;
            }
            if parts == ["lib"] || parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            out.insert(parts, std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

fn ident_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// The paths a file names through `crate::` or `super::`, resolved from module `me`, with
/// one level of `::{a, b::c}` groups expanded. Test modules and comments are left out.
fn named_paths(me: &Module, text: &str) -> Vec<Module> {
    let text = text.split("#[cfg(test)]").next().unwrap();
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for (at, head) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut base: Module = if head == "crate::" {
            Vec::new()
        } else {
            me[..me.len().saturating_sub(1)].to_vec()
        };
        let mut rest = &code[at + head.len()..];
        let mut path = Vec::new();
        loop {
            let n = ident_len(rest);
            if n == 0 {
                break;
            }
            let id = &rest[..n];
            if id == "super" && path.is_empty() {
                base.pop();
            } else {
                path.push(id.to_string());
            }
            rest = &rest[n..];
            match rest.strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        let prefix: Module = base.into_iter().chain(path).collect();
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let item = item.trim().trim_start_matches('{');
                let parts: Vec<String> = item
                    .split("::")
                    .map(|p| p[..ident_len(p)].to_string())
                    .filter(|p| !p.is_empty() && p != "self")
                    .collect();
                let mut p = prefix.clone();
                p.extend(parts);
                out.push(p);
            }
        }
        out.push(prefix);
    }
    out
}

/// Modules that depend on each other in a cycle (strongly connected groups of two or more).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for next in &edges[&m] {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&Module, BTreeSet<Module>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut groups: Vec<Vec<Module>> = Vec::new();
    for m in edges.keys() {
        if !reaches[m].contains(m) || groups.iter().any(|g| g.contains(m)) {
            continue;
        }
        let group = edges
            .keys()
            .filter(|o| reaches[m].contains(*o) && reaches[*o].contains(m))
            .cloned()
            .collect();
        groups.push(group);
    }
    groups
}

fn import_graph(mods: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut edges: BTreeMap<Module, BTreeSet<Module>> =
        mods.keys().map(|m| (m.clone(), BTreeSet::new())).collect();
    for (me, text) in mods {
        for path in named_paths(me, text) {
            // The longest module prefix the path names.
            let Some(target) = (0..=path.len())
                .rev()
                .map(|k| path[..k].to_vec())
                .find(|p| mods.contains_key(p))
            else {
                continue;
            };
            let related = me.starts_with(&target) || target.starts_with(me);
            if !related {
                edges.get_mut(me).unwrap().insert(target);
            }
        }
    }
    edges
}

#[test]
fn the_library_has_no_import_cycles() {
    let mods = modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(mods.len() > 40, "found only {} modules", mods.len());
    let edges = import_graph(&mods);
    // The checker sees real edges (a broken parser would find no cycle anywhere).
    let data = vec!["train".to_string(), "job".to_string()];
    assert!(edges[&data].contains(&vec!["data".to_string()]));
    let found = cycles(&edges);
    let names: Vec<String> = found
        .iter()
        .map(|g| {
            g.iter()
                .map(|m| m.join("::"))
                .collect::<Vec<_>>()
                .join(" ↔ ")
        })
        .collect();
    assert!(names.is_empty(), "import cycles: {names:#?}");
}

#[test]
fn the_checker_finds_a_cycle_through_a_group_and_super() {
    let mods: BTreeMap<Module, String> = [
        (vec![], String::new()),
        (vec!["a".into()], "use crate::{b::Thing, c};".into()),
        (vec!["b".into()], "fn f() { super::a::g() }".into()),
        (vec!["c".into()], "// crate::a::x in a comment".into()),
    ]
    .into_iter()
    .collect();
    let found = cycles(&import_graph(&mods));
    assert_eq!(
        found,
        vec![vec![vec!["a".to_string()], vec!["b".to_string()]]]
    );
}
