//! wasmtime's own floor for a step component: instantiate and call `run` with nothing
//! of medic's around it (no WASI context, no journal, no limits, no timeout), in the
//! same engine. Benchmarks print it beside a real invocation, so the overhead medic adds
//! is a ratio measured in the same run rather than a figure a noisy machine can move.

use crate::bindings::newest;
use crate::{Sandbox, SandboxError, versions};
use medic_core::Invocation;
use std::path::Path;
use wasmtime::Store;
use wasmtime::component::Linker;

/// A component linked for bare calls: every import traps if called, so only steps that
/// make no host call (e.g. `echo`) can run this way. Made by [`Sandbox::bare`].
pub struct BareStep {
    engine: wasmtime::Engine,
    pre: newest::StepComponentPre<()>,
}

impl Sandbox {
    /// Links a component of the newest `medic:step` version for bare calls
    /// ([`BareStep::run`]), for benchmarks.
    ///
    /// # Errors
    /// The component cannot be read or compiled, is not of the newest version
    /// ([`SandboxError::Version`]), or cannot be linked.
    pub fn bare(&self, path: impl AsRef<Path>) -> Result<BareStep, SandboxError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let (component, version, _) = self.component(path, |_| {})?;
        if version != versions::WitVersion::NEWEST {
            return Err(SandboxError::Version {
                path: shown,
                message: format!(
                    "bare calls need medic:step@{}",
                    versions::WitVersion::NEWEST
                ),
            });
        }
        let link = || -> wasmtime::Result<BareStep> {
            let mut linker = Linker::<()>::new(&self.engine);
            linker.define_unknown_imports_as_traps(&component)?;
            let pre = newest::StepComponentPre::new(linker.instantiate_pre(&component)?)?;
            Ok(BareStep {
                engine: self.engine.clone(),
                pre,
            })
        };
        link().map_err(|e| SandboxError::Link {
            path: shown,
            version,
            message: format!("{e:#}"),
        })
    }
}

impl BareStep {
    /// Instantiates the component in a fresh store and calls `run(invocation)` once.
    ///
    /// # Errors
    /// A trap (including a call to any import) or an error returned by the step, as text.
    pub async fn run(&self, invocation: &Invocation) -> Result<(), String> {
        let mut store = Store::new(&self.engine, ());
        // The engine interrupts on epochs; a bare call is never interrupted.
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let invocation = crate::attempt::to_wit(invocation, 0);
        match instance
            .medic_step_step()
            .call_run(&mut store, &invocation)
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.message),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}
