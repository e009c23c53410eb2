//! Everything wasmtime: medic's step sandbox.
//!
//! A [`Sandbox`] owns one wasmtime engine (component model, async, pooling allocator,
//! epoch interruption), a linker with exactly the imports a step may use, and a compile
//! cache on disk. Each step attempt gets a fresh instance from a cached `InstancePre`,
//! under the step's memory and wall-time limits. Components built against any released
//! version of the `medic:step` WIT package are accepted ([`WitVersion`]). Whatever the guest does — loop, trap,
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

#![warn(missing_docs)]

mod attempt;
mod bindings;
mod cache;
mod floor;
mod instance;
mod tls;
mod versions;

use cache::CompileCache;
pub use floor::BareStep;
use instance::InstanceState;
use medic_core::AttemptHost;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
pub use tls::{TlsDestination, TlsError, TlsSettings, normalise_host};
use versions::StepPre;
pub use versions::WitVersion;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, UpdateDeadline};

/// Largest memory limit a step may ask for; the pooling allocator reserves this much
/// address space per slot.
pub const MAX_MEMORY_BYTES: u64 = 1 << 30;

/// Bytes of each pooled linear memory (and table) kept resident between instances.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;

/// Epoch tick: the granularity of wall-time limits on running guest code.
const TICK: Duration = Duration::from_millis(10);

/// Components at least this large take seconds to compile (Python and JS runtimes are
/// 13-22 MB and take ~10 s; a Rust step of 300 KB takes 0.3 s): worth a notice.
const SLOW_COMPILE_BYTES: u64 = 2 << 20;

/// How a [`Sandbox`] is set up; `SandboxConfig::default()` suits tests and tools.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where precompiled components are kept. `None`: compile in memory every time.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling instance allocator (faster instantiation).
    pub pooling: bool,
    /// How many instances may exist at once with pooling.
    pub max_instances: u32,
    /// Say on stderr, once per component, that a large component not yet in the cache
    /// is being compiled, so a first run that pauses for seconds explains itself.
    pub announce_compiles: bool,
    /// TLS per destination for the steps' HTTPS requests (private CAs, client
    /// certificates); destinations without settings trust the public web roots.
    pub tls: TlsSettings,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            cache_dir: None,
            pooling: true,
            max_instances: 128,
            announce_compiles: false,
            tls: TlsSettings::default(),
        }
    }
}

/// Why a component cannot be loaded, linked or described. Every variant names the
/// component's path.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The file cannot be read.
    #[error("component {path}: cannot read: {message}")]
    Read {
        /// The component's path.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// The file is not a WebAssembly component wasmtime can compile.
    #[error("component {path}: not a valid component: {message}")]
    Compile {
        /// The component's path.
        path: String,
        /// wasmtime's error.
        message: String,
    },
    /// The component exports no `medic:step/step` interface, or one of a version this
    /// host does not support.
    #[error("component {path}: {message}")]
    Version {
        /// The component's path.
        path: String,
        /// Which versions it exports and which this host supports.
        message: String,
    },
    /// The component does not implement the `medic:step` world of the version it
    /// exports, or imports something a step may not have.
    #[error("component {path}: does not fit medic:step@{version}: {message}")]
    Link {
        /// The component's path.
        path: String,
        /// The version it exports.
        version: WitVersion,
        /// What does not fit.
        message: String,
    },
    /// `describe()` trapped or returned something unusable.
    #[error("component {path}: describe() failed: {message}")]
    Describe {
        /// The component's path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The wasmtime engine itself could not be set up.
    #[error("sandbox engine: {0}")]
    Engine(String),
}

/// What `describe()` returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The step's name, e.g. `k8s-rollout`.
    pub name: String,
    /// Its version (semver text).
    pub version: String,
    /// One line saying what it does.
    pub summary: String,
    /// JSON Schema of its `with:` parameters.
    pub params_schema: serde_json::Value,
    /// Hosts it may need (advisory; the workflow's `allow:` grants).
    pub hosts: Vec<String>,
    /// Secrets it may read (advisory; the workflow's `secrets:` grants).
    pub secrets: Vec<String>,
    /// The `medic:step` version the component was built against.
    pub wit_version: WitVersion,
}

/// What [`Sandbox::precompile`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precompiled {
    /// The `medic:step` version the component was built against.
    pub wit_version: WitVersion,
    /// True when the compiled code came from the on-disk cache.
    pub from_cache: bool,
    /// Compile (or cache load) plus link.
    pub elapsed: Duration,
}

struct Loaded {
    pre: StepPre,
    /// (modified time, length) of the file it was loaded from.
    stamp: (Option<SystemTime>, u64),
    /// When the stamp was last compared with the file: at most once a second, so the
    /// warm invocation path does no file-system call.
    checked: Mutex<Instant>,
}

/// How long a loaded component is trusted before its file is looked at again.
const RECHECK: Duration = Duration::from_secs(1);

/// The step runner: one wasmtime engine, linker and compile cache for every attempt.
/// Implements [`medic_core::StepRunner`].
pub struct Sandbox {
    engine: Engine,
    linker: Linker<InstanceState>,
    cache: CompileCache,
    loaded: Mutex<HashMap<PathBuf, Arc<Loaded>>>,
    announce_compiles: bool,
    /// Components already announced as compiling, so each is announced once.
    announced: Mutex<HashSet<PathBuf>>,
    /// One lock per component path while it loads: runs starting together on an
    /// uncached Python or JS component (~10-20 s to compile) wait for one compile
    /// instead of each doing its own.
    loading: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
    /// Components compiled (not read from the disk cache) by this sandbox.
    compiles: std::sync::atomic::AtomicU64,
    tls: TlsSettings,
}

impl Sandbox {
    /// Sets up the engine (pooling allocator, epoch ticker thread), the linker and the
    /// compile cache.
    ///
    /// # Errors
    /// [`SandboxError::Engine`] when wasmtime cannot be configured this way here (e.g. the
    /// pooling allocator cannot reserve its address space).
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
                .table_elements(100_000)
                // Reset a used slot's low memory and tables with memset instead of an
                // madvise that drops the pages: the next instance in the slot then takes
                // no page faults there. PAGEMAP_SCAN (Linux >= 6.7) limits the memset to
                // the pages the instance dirtied. Bounded per warm slot; see
                // docs/performance.md for the effect on invocation time and RSS.
                .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
                .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
                .pagemap_scan(wasmtime::Enabled::Auto);
            c.allocation_strategy(pool);
        }
        let engine = Engine::new(&c).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        let link = |l: &mut Linker<InstanceState>| -> wasmtime::Result<()> {
            wasmtime_wasi::p2::add_to_linker_async(l)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)?;
            versions::add_to_linker(l)
        };
        link(&mut linker).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        start_epoch_ticker(&engine);
        let cache = CompileCache::new(&engine, config.cache_dir);
        Ok(Sandbox {
            engine,
            linker,
            cache,
            loaded: Mutex::new(HashMap::new()),
            announce_compiles: config.announce_compiles,
            announced: Mutex::new(HashSet::new()),
            loading: Mutex::new(HashMap::new()),
            compiles: std::sync::atomic::AtomicU64::new(0),
            tls: config.tls,
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
        let md = std::fs::metadata(path).map_err(|e| SandboxError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let stamp = (md.modified().ok(), md.len());
        let current = |loaded: &Mutex<HashMap<PathBuf, Arc<Loaded>>>| {
            loaded
                .lock()
                .expect("loaded lock")
                .get(path)
                .filter(|l| l.stamp == stamp)
                .cloned()
        };
        if let Some(l) = current(&self.loaded) {
            return Ok(l);
        }
        let lock = self
            .loading
            .lock()
            .expect("loading lock")
            .entry(path.to_path_buf())
            .or_default()
            .clone();
        let _loading = lock.lock().expect("component load lock");
        // Whoever held the lock before us may have loaded it.
        if let Some(l) = current(&self.loaded) {
            return Ok(l);
        }
        let (pre, _) = self.compile_and_link(path, self.announce_compiles)?;
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

    /// Reads, compiles (or loads from the disk cache), detects the WIT version and links.
    /// Returns whether the compiled code came from the cache.
    fn compile_and_link(
        &self,
        path: &Path,
        announce: bool,
    ) -> Result<(StepPre, bool), SandboxError> {
        let (component, version, cached) = self.component(path, |len| {
            self.compiles
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if announce && len as u64 >= SLOW_COMPILE_BYTES {
                self.announce(path, len);
            }
        })?;
        let pre = self
            .link(&component, version)
            .map_err(|e| SandboxError::Link {
                path: path.display().to_string(),
                version,
                message: format!("{e:#}"),
            })?;
        Ok((pre, cached))
    }

    /// Reads and compiles (or loads from the disk cache) the component at `path`, and
    /// detects its WIT version. `compiling(len)` is called before a compile of `len`
    /// bytes; returns whether the compiled code came from the cache.
    pub(crate) fn component(
        &self,
        path: &Path,
        compiling: impl FnOnce(usize),
    ) -> Result<(wasmtime::component::Component, versions::WitVersion, bool), SandboxError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| SandboxError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let (component, cached) = self
            .cache
            .load(&self.engine, &bytes, || compiling(bytes.len()))
            .map_err(|e| SandboxError::Compile {
                path: shown.clone(),
                message: format!("{e:#}"),
            })?;
        let version = versions::detect(&self.engine, &component).map_err(|message| {
            SandboxError::Version {
                path: shown,
                message,
            }
        })?;
        Ok((component, version, cached))
    }

    /// How many components this sandbox compiled (rather than read from the disk cache).
    pub fn compiles(&self) -> u64 {
        self.compiles.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn announce(&self, path: &Path, len: usize) {
        if !self
            .announced
            .lock()
            .expect("announced lock")
            .insert(path.to_path_buf())
        {
            return;
        }
        let later = match self.cache.dir() {
            Some(d) => format!("later runs load it from the cache in {}", d.display()),
            None => "there is no compile cache, so every start compiles it again".into(),
        };
        eprintln!(
            "medic: compiling {} ({:.1} MB) for first use; this can take ~10 s; {later}",
            path.display(),
            len as f64 / 1e6
        );
    }

    fn link(&self, component: &Component, version: WitVersion) -> wasmtime::Result<StepPre> {
        StepPre::new(version, self.linker.instantiate_pre(component)?)
    }

    /// Compiles (or loads from cache) a component and links it, so its first invocation
    /// is fast.
    ///
    /// # Errors
    /// The component cannot be read, compiled or linked ([`SandboxError`]).
    pub fn warm(&self, path: impl AsRef<Path>) -> Result<(), SandboxError> {
        self.load(path.as_ref()).map(|_| ())
    }

    /// Compiles a component into the on-disk cache (or loads it from there) and links it,
    /// bypassing the in-memory cache so the time taken is the real cost of a cold start.
    /// `medic step build` calls it twice: the compile, then a cached load.
    ///
    /// # Errors
    /// The component cannot be read, compiled or linked ([`SandboxError`]).
    pub fn precompile(&self, path: impl AsRef<Path>) -> Result<Precompiled, SandboxError> {
        let started = Instant::now();
        let (pre, from_cache) = self.compile_and_link(path.as_ref(), false)?;
        Ok(Precompiled {
            wit_version: pre.version(),
            from_cache,
            elapsed: started.elapsed(),
        })
    }

    /// Calls the component's `describe()`.
    ///
    /// # Errors
    /// The component cannot be loaded, or `describe()` traps or returns a params schema
    /// that is not JSON ([`SandboxError::Describe`]).
    pub async fn describe(&self, path: impl AsRef<Path>) -> Result<Manifest, SandboxError> {
        let path = path.as_ref();
        let loaded = self.load(path)?;
        let fail = |message: String| SandboxError::Describe {
            path: path.display().to_string(),
            message,
        };
        let mut store = self.store(
            None,
            self.tls.clone(),
            Vec::new(),
            64 << 20,
            Duration::from_secs(10),
            0,
        );
        let m = loaded
            .pre
            .describe(&mut store)
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
            wit_version: loaded.pre.version(),
        })
    }

    fn store(
        &self,
        host: Option<AttemptHost>,
        tls: TlsSettings,
        allow: Vec<String>,
        memory_bytes: u64,
        timeout: Duration,
        seed: u128,
    ) -> Store<InstanceState> {
        let mut store = Store::new(
            &self.engine,
            InstanceState::new(host, allow, tls, memory_bytes, timeout, seed),
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
