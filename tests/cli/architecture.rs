//! The modules keep to the layers `ARCHITECTURE.md` draws: every `crate::` path in `src/`
//! points to a lower layer, so data flows one way and no two modules use each other.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The layer of each module, read from the table in ARCHITECTURE.md.
fn layers() -> BTreeMap<String, u32> {
    let text = fs::read_to_string("ARCHITECTURE.md").unwrap();
    let table = text
        .split("layer  modules\n")
        .nth(1)
        .expect("ARCHITECTURE.md has the table of layers");
    let mut layers = BTreeMap::new();
    for line in table.lines().take_while(|l| !l.starts_with("```")) {
        let mut words = line.split_whitespace();
        let layer: u32 = words.next().unwrap().parse().unwrap();
        for module in words {
            layers.insert(module.to_string(), layer);
        }
    }
    layers
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules a source text names as `crate::NAME` (in paths and in `use crate::{…}`).
fn used(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let name = item.trim().split("::").next().unwrap_or("");
                names.push(name.to_string());
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.push(rest[..end].to_string());
        }
    }
    names.retain(|n| !n.is_empty() && n.chars().next().unwrap().is_ascii_lowercase());
    names
}

#[test]
fn modules_use_only_lower_layers() {
    let layers = layers();
    assert!(layers.len() >= 14, "{layers:?}");
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix("src").unwrap();
        let first = relative
            .iter()
            .next()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let layer = *layers
            .get(&module)
            .unwrap_or_else(|| panic!("src/{module} is in no layer of ARCHITECTURE.md"));
        let text = fs::read_to_string(&file).unwrap();
        // Unit tests may reach anywhere.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for name in used(code) {
            if name == module {
                continue;
            }
            match layers.get(&name) {
                Some(&other) if other < layer => {}
                _ => wrong.push(format!("{} uses crate::{name}", file.display())),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "against ARCHITECTURE.md's layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_tenant_client_neither_prints_nor_draws() {
    // auth0/ is bytes in, bytes out: progress and traces go to callbacks.
    let mut files = Vec::new();
    sources(Path::new("src/auth0"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for word in ["indicatif", "println!", "eprintln!", "print!(", "eprint!("] {
            assert!(!code.contains(word), "{} uses {word}", file.display());
        }
    }
}
