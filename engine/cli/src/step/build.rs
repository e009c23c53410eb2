//! `medic step build [DIR]`: builds a step project into `dist/<name>.wasm` with its
//! language's tool, then compiles the component into medic's on-disk cache, so the first
//! `medic run` that uses it does not pause (Python and JS components take ~10 s).

use super::scaffold::Lang;
use super::toolchain;
use crate::app::Ctx;
use anyhow::{Context, Result, bail};
use medic_sandbox::{Sandbox, SandboxConfig};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub fn run(ctx: &Ctx, dir: &Path) -> Result<ExitCode> {
    let lang = detect(dir)?;
    let name = project_name(dir, lang)?;
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).with_context(|| format!("cannot create {}", dist.display()))?;
    let wasm = dist.join(format!("{name}.wasm"));

    let started = Instant::now();
    eprintln!("==> building {name} ({}) in {}", lang.name(), dir.display());
    match lang {
        Lang::Rust => build_rust(dir, &name, &wasm)?,
        Lang::Python => {
            let tool = toolchain::componentize_py()?;
            let tmp = dist.join(format!("{name}.wasm.tmp"));
            let mut cmd = Command::new(tool);
            cmd.current_dir(dir)
                .args([
                    "-d",
                    "wit",
                    "-w",
                    "step-component",
                    "componentize",
                    "app",
                    "-p",
                    ".",
                ])
                .arg("-o")
                .arg(abs(&tmp)?);
            exec(cmd, "componentize-py")?;
            rename(&tmp, &wasm)?;
        }
        Lang::Js => {
            let tool = toolchain::componentize_js()?;
            let tmp = dist.join(format!("{name}.wasm.tmp"));
            let mut cmd = Command::new(tool);
            cmd.current_dir(dir)
                .args([
                    "app.js",
                    "--wit",
                    "wit",
                    "--world-name",
                    "step-component",
                    "-o",
                ])
                .arg(abs(&tmp)?);
            exec(cmd, "componentize-js")?;
            rename(&tmp, &wasm)?;
        }
    }
    let built = started.elapsed();
    let size = std::fs::metadata(&wasm)
        .with_context(|| format!("the build left no {}", wasm.display()))?
        .len();

    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: Some(ctx.cache.clone()),
        ..SandboxConfig::default()
    })?;
    let first = with_progress(&format!("compiling {} for medic", wasm.display()), || {
        sandbox.precompile(&wasm)
    })?;
    // A second load now comes from the disk cache: what each engine start will pay.
    let cached = sandbox.precompile(&wasm)?;

    println!(
        "built    {} ({}, medic:step@{}) in {}",
        wasm.display(),
        size_text(size),
        first.wit_version,
        secs(built)
    );
    if first.from_cache {
        println!("compile  already in the cache (the component did not change)");
    } else {
        println!(
            "compile  {}, cached in {}",
            secs(first.elapsed),
            ctx.cache.display()
        );
    }
    println!(
        "load     {:.1} ms from the cache (what a `medic run` or `serve` start pays)",
        cached.elapsed.as_secs_f64() * 1e3
    );
    Ok(ExitCode::SUCCESS)
}

fn size_text(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{} KB", bytes.div_ceil(1000))
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn abs(p: &Path) -> Result<PathBuf> {
    Ok(std::env::current_dir()?.join(p))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))
}

/// The language, from the project's marker file.
pub fn detect(dir: &Path) -> Result<Lang> {
    if !dir.is_dir() {
        bail!("{}: no such directory", dir.display());
    }
    for lang in [Lang::Rust, Lang::Python, Lang::Js] {
        if dir.join(lang.marker()).is_file() {
            return Ok(lang);
        }
    }
    bail!(
        "{}: not a step project: expected Cargo.toml (Rust), app.py (Python) or app.js (JavaScript); `medic step new` creates one",
        dir.display()
    )
}

/// The package name from the project's manifest: `dist/<name>.wasm`.
fn project_name(dir: &Path, lang: Lang) -> Result<String> {
    let (file, table, key) = match lang {
        Lang::Rust => ("Cargo.toml", Some("[package]"), "name"),
        Lang::Python => ("pyproject.toml", Some("[project]"), "name"),
        Lang::Js => ("package.json", None, "\"name\""),
    };
    let path = dir.join(file);
    let fallback = || {
        dir.canonicalize()
            .ok()
            .and_then(|d| d.file_name()?.to_str().map(String::from))
            .unwrap_or_else(|| "step".into())
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(fallback());
    };
    if lang == Lang::Js {
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        return Ok(v["name"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(fallback));
    }
    let mut inside = table.is_none();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = Some(line) == table;
        } else if inside
            && let Some(rest) = line.strip_prefix(key)
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            return Ok(value.trim().trim_matches('"').to_string());
        }
    }
    Ok(fallback())
}

fn exec(mut cmd: Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status}); see its output above");
    }
    Ok(())
}

/// `cargo build`, reading the artifact's path from cargo's JSON messages so it works
/// wherever CARGO_TARGET_DIR points.
fn build_rust(dir: &Path, name: &str, wasm: &Path) -> Result<()> {
    let cargo = toolchain::cargo_for_wasm(dir)?;
    let out = Command::new(cargo)
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !out.status.success() {
        bail!("cargo build failed ({}); see its output above", out.status);
    }
    let crate_name = name.replace('-', "_");
    let artifact = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact" && m["target"]["name"] == crate_name.as_str()
        })
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"));
    let Some(artifact) = artifact else {
        bail!("cargo built no {crate_name}.wasm: is `crate-type = [\"cdylib\"]` in Cargo.toml?");
    };
    std::fs::copy(&artifact, wasm)
        .with_context(|| format!("cannot copy {} to {}", artifact.display(), wasm.display()))?;
    Ok(())
}

/// Runs `work`, showing that it is running: an elapsed-time spinner on a terminal, a
/// line before and after otherwise (logs, CI).
fn with_progress<T>(label: &str, work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    if !std::io::stderr().is_terminal() {
        eprintln!("==> {label}");
        let r = work();
        eprintln!("    done in {}", secs(started.elapsed()));
        return r;
    }
    let done = Arc::new(AtomicBool::new(false));
    let spinner = {
        let done = done.clone();
        let label = label.to_string();
        std::thread::spawn(move || {
            const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
            let mut i = 0;
            while !done.load(Ordering::Relaxed) {
                let mut e = std::io::stderr().lock();
                let _ = write!(
                    e,
                    "\r{} {label} {:.1} s",
                    FRAMES[i % FRAMES.len()],
                    started.elapsed().as_secs_f64()
                );
                let _ = e.flush();
                drop(e);
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            // Clear the spinner line.
            eprint!("\r\x1b[2K");
        })
    };
    let r = work();
    done.store(true, Ordering::Relaxed);
    let _ = spinner.join();
    eprintln!("==> {label}: {}", secs(started.elapsed()));
    r
}
