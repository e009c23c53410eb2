//! Finding the tools that turn a step project into a component. Python and JavaScript
//! tools live where medic's `scripts/toolchain-polyglot` installs them
//! (`$MEDIC_TOOLCHAINS`, default `~/.cache/medic/toolchains`), or on PATH.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const COMPONENTIZE_PY: &str = "0.25.1";
pub const COMPONENTIZE_JS: &str = "0.23.0";

fn toolchains() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("MEDIC_TOOLCHAINS")
        && !d.is_empty()
    {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/medic/toolchains"))
}

fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}

/// `tool` at `<toolchains>/<rel>`, else on PATH, else an error naming how to install it.
fn find(tool: &str, rel: &str, install: &str) -> Result<PathBuf> {
    let fixed = toolchains().map(|t| t.join(rel));
    if let Some(p) = &fixed
        && p.is_file()
    {
        return Ok(p.clone());
    }
    if let Some(p) = on_path(tool) {
        return Ok(p);
    }
    let looked = fixed
        .map(|p| format!("{} and ", p.display()))
        .unwrap_or_default();
    bail!(
        "{tool} not found (looked at {looked}on PATH): install it with `scripts/toolchain-polyglot` from the medic repository (set MEDIC_TOOLCHAINS to install elsewhere), or {install}"
    )
}

pub fn componentize_py() -> Result<PathBuf> {
    find(
        "componentize-py",
        "componentize-py/bin/componentize-py",
        &format!("`pip install componentize-py=={COMPONENTIZE_PY}`"),
    )
}

pub fn componentize_js() -> Result<PathBuf> {
    find(
        "componentize-js",
        "js/node_modules/.bin/componentize-js",
        &format!("`npm install -g @bytecodealliance/componentize-js@{COMPONENTIZE_JS}`"),
    )
}

/// Cargo plus the wasm32-wasip2 target (rustup does not fetch it by itself everywhere).
pub fn cargo_for_wasm(dir: &Path) -> Result<PathBuf> {
    let Some(cargo) = on_path("cargo") else {
        bail!(
            "cargo not found on PATH: install Rust (https://rustup.rs), then `rustup target add wasm32-wasip2`"
        );
    };
    let out = Command::new("rustc")
        .current_dir(dir)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output();
    let installed = match out {
        Ok(o) if o.status.success() => {
            let libdir = String::from_utf8_lossy(&o.stdout).trim().to_string();
            std::fs::read_dir(libdir).is_ok_and(|mut e| e.next().is_some())
        }
        _ => false,
    };
    if !installed {
        bail!(
            "the wasm32-wasip2 Rust target is not installed: run `rustup target add wasm32-wasip2`"
        );
    }
    Ok(cargo)
}
