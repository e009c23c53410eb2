//! Which `medic:step` versions this host accepts, how a component's version is found,
//! and the one place where older versions are adapted to the newest.
//!
//! The rest of the sandbox speaks only the newest version's types (`bindings::newest`).
//! A component built against an older version is linked with that version's bindings;
//! its invocation is narrowed from the newest (fields it does not know are dropped) and
//! its results, and its host calls, are widened to the newest. See docs/wit-versioning.md.

use crate::bindings::{newest, v0_1_0, v0_2_0};
use crate::instance::InstanceState;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Engine, Store};

/// A released version of the `medic:step` WIT package this host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WitVersion {
    /// `medic:step@0.1.0`, the first release.
    V0_1_0,
    /// `medic:step@0.2.0`: adds the attempt's deadline to the invocation.
    V0_2_0,
}

impl WitVersion {
    /// Every supported version, oldest first.
    pub const ALL: [WitVersion; 2] = [WitVersion::V0_1_0, WitVersion::V0_2_0];
    /// The version `medic step new` scaffolds against and the host speaks natively.
    pub const NEWEST: WitVersion = WitVersion::V0_2_0;

    /// The version as written in WIT, e.g. `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1_0 => "0.1.0",
            WitVersion::V0_2_0 => "0.2.0",
        }
    }

    /// The supported version written `s` (`0.2.0`), or `None`.
    pub fn parse(s: &str) -> Option<WitVersion> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// "0.1.0, 0.2.0": for error messages.
    pub fn supported_list() -> String {
        Self::ALL.map(WitVersion::as_str).join(", ")
    }
}

impl std::fmt::Display for WitVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name prefix of the interface every step exports: `medic:step/step@<version>`.
const STEP_EXPORT: &str = "medic:step/step@";

/// Finds the version a component was built against from the `medic:step/step` interface
/// it exports. With several exported versions, the newest supported one wins.
pub(crate) fn detect(engine: &Engine, component: &Component) -> Result<WitVersion, String> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    let versions: Vec<&str> = exports
        .iter()
        .filter_map(|name| name.strip_prefix(STEP_EXPORT))
        .collect();
    if let Some(v) = versions.iter().filter_map(|v| WitVersion::parse(v)).max() {
        return Ok(v);
    }
    let supported = WitVersion::supported_list();
    if versions.is_empty() {
        let shown = if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "not a medic step: it exports no `medic:step/step` interface (it exports {shown}); \
             build it against the `medic:step` WIT (supported versions: {supported})"
        ));
    }
    Err(format!(
        "built against medic:step@{}, which this medic does not support (supported versions: \
         {supported}); rebuild it against wit/{} or use a medic that supports it",
        versions.join(", medic:step@"),
        WitVersion::NEWEST
    ))
}

/// Adds every supported version's `medic:step` host interfaces to the linker. Minor
/// versions of a 0.x package are distinct names to wasmtime, so they coexist.
pub(crate) fn add_to_linker(l: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    v0_1_0::medic::step::host::add_to_linker::<_, HasSelf<_>>(l, |d| d)?;
    v0_1_0::medic::step::types::add_to_linker::<_, HasSelf<_>>(l, |d| d)?;
    v0_2_0::medic::step::host::add_to_linker::<_, HasSelf<_>>(l, |d| d)?;
    v0_2_0::medic::step::types::add_to_linker::<_, HasSelf<_>>(l, |d| d)?;
    Ok(())
}

/// A linked component, ready to instantiate, in the bindings of its own version.
pub(crate) enum StepPre {
    V0_1_0(v0_1_0::StepComponentPre<InstanceState>),
    V0_2_0(v0_2_0::StepComponentPre<InstanceState>),
}

impl StepPre {
    pub(crate) fn new(
        version: WitVersion,
        pre: InstancePre<InstanceState>,
    ) -> wasmtime::Result<Self> {
        Ok(match version {
            WitVersion::V0_1_0 => StepPre::V0_1_0(v0_1_0::StepComponentPre::new(pre)?),
            WitVersion::V0_2_0 => StepPre::V0_2_0(v0_2_0::StepComponentPre::new(pre)?),
        })
    }

    pub(crate) fn version(&self) -> WitVersion {
        match self {
            StepPre::V0_1_0(_) => WitVersion::V0_1_0,
            StepPre::V0_2_0(_) => WitVersion::V0_2_0,
        }
    }

    /// Instantiates and calls `describe()`.
    pub(crate) async fn describe(
        &self,
        store: &mut Store<InstanceState>,
    ) -> wasmtime::Result<newest::medic::step::types::Manifest> {
        Ok(match self {
            StepPre::V0_1_0(pre) => {
                let inst = pre.instantiate_async(&mut *store).await?;
                v0_1::manifest(inst.medic_step_step().call_describe(store).await?)
            }
            StepPre::V0_2_0(pre) => {
                let inst = pre.instantiate_async(&mut *store).await?;
                inst.medic_step_step().call_describe(store).await?
            }
        })
    }

    /// Instantiates and calls `run()`. `invocation` is built by `make` once the
    /// instance exists, so `deadline-ms` excludes instantiation time.
    pub(crate) async fn run(
        &self,
        store: &mut Store<InstanceState>,
        make: impl FnOnce(&Store<InstanceState>) -> newest::medic::step::types::Invocation,
    ) -> wasmtime::Result<RunResult> {
        Ok(match self {
            StepPre::V0_1_0(pre) => {
                let inst = pre.instantiate_async(&mut *store).await?;
                let invocation = v0_1::invocation(make(store));
                match inst.medic_step_step().call_run(store, &invocation).await? {
                    Ok(o) => Ok(v0_1::outcome(o)),
                    Err(e) => Err(v0_1::step_error(e)),
                }
            }
            StepPre::V0_2_0(pre) => {
                let inst = pre.instantiate_async(&mut *store).await?;
                let invocation = make(store);
                inst.medic_step_step().call_run(store, &invocation).await?
            }
        })
    }
}

pub(crate) type RunResult =
    Result<newest::medic::step::types::Outcome, newest::medic::step::types::StepError>;

/// `medic:step@0.1.0` to and from the newest. 0.2.0 only added `invocation.deadline-ms`;
/// every other type is the same shape, field by field.
mod v0_1 {
    use crate::bindings::newest::medic::step::{host as new_host, types as new};
    use crate::bindings::v0_1_0::medic::step::{host, types as old};
    use crate::instance::InstanceState;

    /// Narrowing: a 0.1.0 step has no deadline-ms; it simply is not told.
    pub(super) fn invocation(i: new::Invocation) -> old::Invocation {
        old::Invocation {
            run_id: i.run_id,
            step_id: i.step_id,
            attempt: i.attempt,
            idempotency_key: i.idempotency_key,
            phase: match i.phase {
                new::Phase::Detect => old::Phase::Detect,
                new::Phase::Communicate => old::Phase::Communicate,
                new::Phase::Restore => old::Phase::Restore,
                new::Phase::Verify => old::Phase::Verify,
                new::Phase::FollowUp => old::Phase::FollowUp,
            },
            incident: old::Incident {
                id: i.incident.id,
                title: i.incident.title,
                severity: i.incident.severity,
                status: match i.incident.status {
                    new::IncidentStatus::Firing => old::IncidentStatus::Firing,
                    new::IncidentStatus::Resolved => old::IncidentStatus::Resolved,
                },
                labels: pairs(i.incident.labels),
                annotations: pairs(i.incident.annotations),
                started_at: i.incident.started_at,
                source: i.incident.source,
            },
            params: i.params,
            drill: i.drill,
        }
    }

    fn pairs(p: Vec<new::Pair>) -> Vec<old::Pair> {
        p.into_iter()
            .map(|p| old::Pair {
                key: p.key,
                value: p.value,
            })
            .collect()
    }

    pub(super) fn manifest(m: old::Manifest) -> new::Manifest {
        new::Manifest {
            name: m.name,
            version: m.version,
            summary: m.summary,
            params_schema: m.params_schema,
            capabilities: new::Capabilities {
                hosts: m.capabilities.hosts,
                secrets: m.capabilities.secrets,
            },
        }
    }

    pub(super) fn outcome(o: old::Outcome) -> new::Outcome {
        match o {
            old::Outcome::Done(json) => new::Outcome::Done(json),
            old::Outcome::RetryAfter(r) => new::Outcome::RetryAfter(new::RetryAfter {
                ms: r.ms,
                reason: r.reason,
            }),
        }
    }

    pub(super) fn step_error(e: old::StepError) -> new::StepError {
        new::StepError {
            message: e.message,
            retryable: e.retryable,
        }
    }

    fn level(l: old::Level) -> new::Level {
        match l {
            old::Level::Trace => new::Level::Trace,
            old::Level::Debug => new::Level::Debug,
            old::Level::Info => new::Level::Info,
            old::Level::Warn => new::Level::Warn,
            old::Level::Error => new::Level::Error,
        }
    }

    // The 0.1.0 host functions are the newest ones, unchanged.
    impl host::Host for InstanceState {
        fn log(&mut self, l: old::Level, message: String) -> wasmtime::Result<()> {
            new_host::Host::log(self, level(l), message)
        }

        fn secret(&mut self, name: String) -> wasmtime::Result<Option<String>> {
            new_host::Host::secret(self, name)
        }

        fn annotate(&mut self, message: String) -> wasmtime::Result<()> {
            new_host::Host::annotate(self, message)
        }

        fn state_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
            new_host::Host::state_get(self, key)
        }

        fn state_set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
            new_host::Host::state_set(self, key, value)
        }
    }

    impl old::Host for InstanceState {}
}
