//! Compile once: precompiled components live on disk, keyed by the component's content
//! hash and the engine's compatibility hash (wasmtime version + config), so a changed
//! component or a new medic build never loads a stale artifact.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) struct CompileCache {
    /// `None`: compile in memory every time.
    dir: Option<PathBuf>,
    compat: String,
}

impl CompileCache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        // DefaultHasher::new() uses fixed keys, so this is stable across processes.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        CompileCache {
            dir,
            compat: format!("{:016x}", h.finish()),
        }
    }

    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Loads a component from `bytes`, from the disk cache when possible; `compiling`
    /// is called just before a compile starts (it can take ~10 s for a large component).
    /// Returns the component and whether it came from the cache.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        compiling: impl FnOnce(),
    ) -> wasmtime::Result<(Component, bool)> {
        let Some(dir) = &self.dir else {
            compiling();
            return Ok((Component::new(engine, bytes)?, false));
        };
        let key = hex::encode(Sha256::digest(bytes));
        let file = dir.join(format!("{key}-{}.cwasm", self.compat));
        if file.exists() {
            match deserialize_file(engine, &file) {
                Ok(c) => return Ok((c, true)),
                // A truncated or foreign file: fall through and rebuild it.
                Err(_) => {
                    let _ = std::fs::remove_file(&file);
                }
            }
        }
        compiling();
        let compiled = engine.precompile_component(bytes)?;
        // Best effort: a read-only cache dir costs compile time, not correctness.
        if std::fs::create_dir_all(dir).is_ok() {
            let tmp = dir.join(format!(".{key}-{}.{}.tmp", self.compat, std::process::id()));
            if std::fs::write(&tmp, &compiled).is_ok() {
                let _ = std::fs::rename(&tmp, &file);
            }
        }
        Ok((deserialize(engine, &compiled)?, false))
    }
}

#[expect(
    unsafe_code,
    reason = "loading precompiled code: the file is ours, named by content hash and engine compatibility hash, written atomically"
)]
fn deserialize_file(engine: &Engine, file: &Path) -> wasmtime::Result<Component> {
    // SAFETY: see the reason above; wasmtime additionally checks the header's engine fingerprint.
    unsafe { Component::deserialize_file(engine, file) }
}

#[expect(
    unsafe_code,
    reason = "the bytes were produced by precompile_component on this same engine a moment ago"
)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: see the reason above.
    unsafe { Component::deserialize(engine, bytes) }
}
