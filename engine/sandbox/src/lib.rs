//! Everything wasmtime: medic's step sandbox.
//!
//! A [`Sandbox`] owns one wasmtime engine (component model, async, pooling allocator,
//! epoch interruption), a linker with exactly the imports a step may use, and a compile
//! cache on disk. Each step attempt gets a fresh instance from a cached `InstancePre`,
//! under the step's memory and wall-time limits. Whatever the guest does — loop, trap,
//! allocate without bound, return garbage — becomes a failed attempt with a reason; it
//! never takes the engine down.
//!
//! ```no_run
//! # async fn demo(request: medic_core::AttemptRequest, host: medic_core::AttemptHost) {
//! use medic_core::StepRunner;
//! let sandbox = medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap();
//! let manifest = sandbox.describe("steps/http-probe.wasm").await.unwrap();
//! println!("{} {}", manifest.name, manifest.summary);
//! let result = sandbox.run(request, host).await;
//! # }
//! ```

mod bindings;
mod cache;
mod host;

use async_trait::async_trait;
use bindings::v0_1_0::{StepComponentPre, medic::step::types as wit};
use cache::CompileCache;
use host::StepData;
use medic_core::{
    AttemptHost, AttemptRequest, AttemptResult, Failure, FailureKind, Invocation, StepRunner,
};
use medic_model::{IncidentStatus, Phase};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, UpdateDeadline};

/// Largest memory limit a step may ask for; the pooling allocator reserves this much
/// address space per slot.
pub const MAX_MEMORY_BYTES: u64 = 1 << 30;

/// Epoch tick: the granularity of wall-time limits on running guest code.
const TICK: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where precompiled components are kept. `None`: compile in memory every time.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling instance allocator (faster instantiation).
    pub pooling: bool,
    /// How many instances may exist at once with pooling.
    pub max_instances: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            cache_dir: None,
            pooling: true,
            max_instances: 128,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("component {path}: cannot read: {message}")]
    Read { path: String, message: String },
    #[error("component {path}: not a valid component: {message}")]
    Compile { path: String, message: String },
    /// The component does not implement the `medic:step` world this host speaks, or
    /// imports something a step may not have.
    #[error("component {path}: does not fit medic:step@0.1.0: {message}")]
    Link { path: String, message: String },
    #[error("component {path}: describe() failed: {message}")]
    Describe { path: String, message: String },
    #[error("sandbox engine: {0}")]
    Engine(String),
}

/// What `describe()` returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub params_schema: serde_json::Value,
    pub hosts: Vec<String>,
    pub secrets: Vec<String>,
}

struct Loaded {
    pre: StepComponentPre<StepData>,
    /// (modified time, length) of the file it was loaded from.
    stamp: (Option<SystemTime>, u64),
    /// When the stamp was last compared with the file: at most once a second, so the
    /// warm invocation path does no file-system call.
    checked: Mutex<Instant>,
}

/// How long a loaded component is trusted before its file is looked at again.
const RECHECK: Duration = Duration::from_secs(1);

pub struct Sandbox {
    engine: Engine,
    linker: Linker<StepData>,
    cache: CompileCache,
    loaded: Mutex<HashMap<PathBuf, Arc<Loaded>>>,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let mut c = Config::new();
        c.wasm_component_model(true);
        c.epoch_interruption(true);
        if config.pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(config.max_instances)
                .total_core_instances(config.max_instances * 8)
                .total_memories(config.max_instances * 4)
                .total_tables(config.max_instances * 8)
                .total_stacks(config.max_instances)
                .max_memory_size(MAX_MEMORY_BYTES as usize)
                .max_memories_per_component(16)
                .max_tables_per_component(32)
                .max_core_instances_per_component(64)
                .table_elements(100_000);
            c.allocation_strategy(pool);
        }
        let engine = Engine::new(&c).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        let link = |l: &mut Linker<StepData>| -> wasmtime::Result<()> {
            wasmtime_wasi::p2::add_to_linker_async(l)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)?;
            bindings::v0_1_0::medic::step::host::add_to_linker::<_, HasSelf<_>>(l, |d| d)?;
            bindings::v0_1_0::medic::step::types::add_to_linker::<_, HasSelf<_>>(l, |d| d)?;
            Ok(())
        };
        link(&mut linker).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        start_epoch_ticker(&engine);
        let cache = CompileCache::new(&engine, config.cache_dir);
        Ok(Sandbox {
            engine,
            linker,
            cache,
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// Loads (compiling or reading the compile cache) and links a component. Cached in
    /// memory per path until the file changes.
    fn load(&self, path: &Path) -> Result<Arc<Loaded>, SandboxError> {
        if let Some(l) = self.loaded.lock().expect("loaded lock").get(path) {
            let mut checked = l.checked.lock().expect("checked lock");
            if checked.elapsed() < RECHECK {
                return Ok(l.clone());
            }
            *checked = Instant::now();
        }
        let shown = path.display().to_string();
        let read_err = |e: std::io::Error| SandboxError::Read {
            path: shown.clone(),
            message: e.to_string(),
        };
        let md = std::fs::metadata(path).map_err(read_err)?;
        let stamp = (md.modified().ok(), md.len());
        if let Some(l) = self.loaded.lock().expect("loaded lock").get(path)
            && l.stamp == stamp
        {
            return Ok(l.clone());
        }
        let bytes = std::fs::read(path).map_err(read_err)?;
        let (component, _cached) =
            self.cache
                .load(&self.engine, &bytes)
                .map_err(|e| SandboxError::Compile {
                    path: shown.clone(),
                    message: format!("{e:#}"),
                })?;
        let pre = self.link(&component).map_err(|e| SandboxError::Link {
            path: shown.clone(),
            message: format!("{e:#}"),
        })?;
        let loaded = Arc::new(Loaded {
            pre,
            stamp,
            checked: Mutex::new(Instant::now()),
        });
        self.loaded
            .lock()
            .expect("loaded lock")
            .insert(path.to_path_buf(), loaded.clone());
        Ok(loaded)
    }

    fn link(&self, component: &Component) -> wasmtime::Result<StepComponentPre<StepData>> {
        StepComponentPre::new(self.linker.instantiate_pre(component)?)
    }

    /// Compiles (or loads from cache) a component, reporting whether it was cached.
    pub fn warm(&self, path: impl AsRef<Path>) -> Result<(), SandboxError> {
        self.load(path.as_ref()).map(|_| ())
    }

    /// Calls the component's `describe()`.
    pub async fn describe(&self, path: impl AsRef<Path>) -> Result<Manifest, SandboxError> {
        let path = path.as_ref();
        let loaded = self.load(path)?;
        let fail = |message: String| SandboxError::Describe {
            path: path.display().to_string(),
            message,
        };
        let mut store = self.store(None, Vec::new(), 64 << 20, Duration::from_secs(10), 0);
        let m = async {
            let inst = loaded.pre.instantiate_async(&mut store).await?;
            inst.medic_step_step().call_describe(&mut store).await
        }
        .await
        .map_err(|e| fail(format!("{e:#}")))?;
        let params_schema = serde_json::from_str(&m.params_schema)
            .map_err(|e| fail(format!("params-schema is not JSON: {e}")))?;
        Ok(Manifest {
            name: m.name,
            version: m.version,
            summary: m.summary,
            params_schema,
            hosts: m.capabilities.hosts,
            secrets: m.capabilities.secrets,
        })
    }

    fn store(
        &self,
        host: Option<AttemptHost>,
        allow: Vec<String>,
        memory_bytes: u64,
        timeout: Duration,
        seed: u128,
    ) -> Store<StepData> {
        let mut store = Store::new(
            &self.engine,
            StepData::new(host, allow, memory_bytes, timeout, seed),
        );
        store.limiter(|d| &mut d.limiter);
        // Check the wall-clock deadline on every epoch tick; yield in between so the
        // async timeout around the call can also fire.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("medic-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawn epoch ticker thread");
}

#[async_trait]
impl StepRunner for Sandbox {
    async fn run(&self, request: AttemptRequest, host: AttemptHost) -> AttemptResult {
        let limits = request.limits;
        if limits.memory_bytes > MAX_MEMORY_BYTES {
            return failed(
                FailureKind::Component,
                false,
                format!(
                    "memory limit {} bytes is over the engine maximum {MAX_MEMORY_BYTES}",
                    limits.memory_bytes
                ),
            );
        }
        let loaded = match self.load(Path::new(&request.component)) {
            Ok(l) => l,
            Err(e) => return failed(FailureKind::Component, false, e.to_string()),
        };
        let timeout = Duration::from_millis(limits.timeout_ms);
        // Deterministic per attempt, so a replay sees the same insecure seed.
        let seed = u128::from_str_radix(&request.invocation.idempotency_key, 16).unwrap_or(0)
            ^ u128::from(request.invocation.attempt);
        let mut store = self.store(
            Some(host),
            request.grants.allow.clone(),
            limits.memory_bytes,
            timeout,
            seed,
        );
        let invocation = to_wit(&request.invocation);
        let result = tokio::time::timeout(timeout, async {
            let inst = loaded.pre.instantiate_async(&mut store).await?;
            inst.medic_step_step()
                .call_run(&mut store, &invocation)
                .await
        })
        .await;
        let timed_out = || {
            failed(
                FailureKind::Timeout,
                true,
                format!(
                    "timed out after {} (the step's timeout)",
                    medic_model::units::format_duration_ms(limits.timeout_ms)
                ),
            )
        };
        match result {
            Err(_) => timed_out(),
            Ok(Err(trap)) => {
                if let Some(bytes) = store.data().limiter.hit {
                    return failed(
                        FailureKind::MemoryLimit,
                        false,
                        format!(
                            "memory limit: the step tried to grow its memory to {bytes} bytes; limit is {} bytes",
                            limits.memory_bytes
                        ),
                    );
                }
                if matches!(
                    trap.downcast_ref::<wasmtime::Trap>(),
                    Some(wasmtime::Trap::Interrupt)
                ) {
                    return timed_out();
                }
                failed(
                    FailureKind::Trap,
                    false,
                    format!("trap: {}", trap_message(&trap)),
                )
            }
            Ok(Ok(Err(e))) => failed(FailureKind::StepError, e.retryable, e.message),
            Ok(Ok(Ok(wit::Outcome::RetryAfter(r)))) => AttemptResult::RetryAfter {
                ms: r.ms,
                reason: r.reason,
            },
            Ok(Ok(Ok(wit::Outcome::Done(json)))) => {
                if json.len() as u64 > limits.output_bytes {
                    return failed(
                        FailureKind::OutputTooLarge,
                        false,
                        format!(
                            "output too large: {} bytes; limit is {} bytes (limits.output)",
                            json.len(),
                            limits.output_bytes
                        ),
                    );
                }
                match serde_json::from_str(&json) {
                    Ok(v) => AttemptResult::Done(v),
                    Err(e) => failed(
                        FailureKind::InvalidOutput,
                        false,
                        format!("output is not JSON: {e}"),
                    ),
                }
            }
        }
    }
}

/// The first line of a trap's chain plus its root cause, without a backtrace.
fn trap_message(e: &wasmtime::Error) -> String {
    let top = e.to_string();
    let root = e.root_cause().to_string();
    if root == top {
        top
    } else {
        format!("{top}: {root}")
    }
}

fn failed(kind: FailureKind, retryable: bool, message: String) -> AttemptResult {
    AttemptResult::Failed(Failure::new(kind, retryable, message))
}

fn to_wit(i: &Invocation) -> wit::Invocation {
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| wit::Pair {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    };
    wit::Invocation {
        run_id: i.run_id.clone(),
        step_id: i.step_id.clone(),
        attempt: i.attempt,
        idempotency_key: i.idempotency_key.clone(),
        phase: match i.phase {
            Phase::Detect => wit::Phase::Detect,
            Phase::Communicate => wit::Phase::Communicate,
            Phase::Restore => wit::Phase::Restore,
            Phase::Verify => wit::Phase::Verify,
            Phase::FollowUp => wit::Phase::FollowUp,
        },
        incident: wit::Incident {
            id: i.incident.id.clone(),
            title: i.incident.title.clone(),
            severity: i.incident.severity.clone(),
            status: match i.incident.status {
                IncidentStatus::Firing => wit::IncidentStatus::Firing,
                IncidentStatus::Resolved => wit::IncidentStatus::Resolved,
            },
            labels: pairs(&i.incident.labels),
            annotations: pairs(&i.incident.annotations),
            started_at: i.incident.started_at.clone(),
            source: i.incident.source.clone(),
        },
        params: i.params.clone(),
        drill: i.drill,
    }
}
