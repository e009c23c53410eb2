//! Finding the component a step `uses`.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

/// Resolves `uses` to a component file. A value with a `/` or ending in `.wasm` is a
/// path relative to the workflow file; anything else is a name looked up as
/// `<name>.wasm` (or cargo's `<name_with_underscores>.wasm`) in each steps directory.
pub fn component(uses: &str, workflow_dir: &Path, dirs: &[PathBuf]) -> Result<PathBuf> {
    if uses.contains('/') || uses.ends_with(".wasm") {
        let p = workflow_dir.join(uses);
        if p.is_file() {
            return Ok(p.canonicalize().unwrap_or(p));
        }
        bail!("component file {} does not exist", p.display());
    }
    let names = [
        format!("{uses}.wasm"),
        format!("{}.wasm", uses.replace('-', "_")),
    ];
    for dir in dirs {
        for n in &names {
            let p = dir.join(n);
            if p.is_file() {
                return Ok(p.canonicalize().unwrap_or(p));
            }
        }
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    bail!(
        "no component named {uses} (looked for {}) in: {}",
        names[0],
        if searched.is_empty() {
            "no steps directories (use --steps DIR)".to_string()
        } else {
            searched.join(", ")
        }
    )
}
