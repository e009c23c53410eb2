//! Wiring: data directory, store, sandbox and engine for the commands that run steps.

use anyhow::{Context, Result};
use medic_core::timeline::Timeline;
use medic_core::{Engine, NewRun, RunStatus, Store, SystemClock};
use medic_sandbox::{Sandbox, SandboxConfig};
use medic_store::SledStore;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Ctx {
    pub data: PathBuf,
    pub cache: PathBuf,
    steps: Vec<PathBuf>,
    /// What `--config` says about this environment (vars, TLS, kubeconfig, secrets).
    pub env: Arc<crate::environment::Environment>,
}

impl Ctx {
    pub fn new(data: Option<PathBuf>, cache: Option<PathBuf>, steps: Vec<PathBuf>) -> Result<Ctx> {
        let data = match data {
            Some(d) => d,
            None => default_data_dir()?,
        };
        let cache = cache.unwrap_or_else(|| data.join("cache"));
        Ok(Ctx {
            data,
            cache,
            steps,
            env: Arc::default(),
        })
    }

    /// This context in the environment of `--config FILE` (none: the default one).
    pub fn with_config(self, config: Option<&Path>) -> Result<Ctx> {
        Ok(self.with_environment(crate::environment::Environment::load(config)?))
    }

    /// This context in `env`.
    pub fn with_environment(mut self, env: crate::environment::Environment) -> Ctx {
        self.env = Arc::new(env);
        self
    }

    pub fn store(&self) -> Result<Arc<SledStore>> {
        std::fs::create_dir_all(&self.data)
            .with_context(|| format!("cannot create data directory {}", self.data.display()))?;
        Ok(Arc::new(SledStore::open(self.data.join("store"))?))
    }

    pub fn sandbox(&self) -> Result<Arc<Sandbox>> {
        Ok(Arc::new(Sandbox::new(SandboxConfig {
            cache_dir: Some(self.cache.clone()),
            announce_compiles: true,
            tls: self.env.tls.clone(),
            ..SandboxConfig::default()
        })?))
    }

    /// Steps directories for a workflow, in search order.
    pub fn step_dirs(&self, workflow_dir: &Path) -> Vec<PathBuf> {
        let mut dirs = self.steps.clone();
        if let Ok(env) = std::env::var("MEDIC_STEPS") {
            dirs.extend(env.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
        }
        dirs.push(workflow_dir.join("steps"));
        dirs.push(self.data.join("steps"));
        dirs
    }
}

fn default_data_dir() -> Result<PathBuf> {
    if let Ok(x) = std::env::var("XDG_DATA_HOME")
        && !x.is_empty()
    {
        return Ok(PathBuf::from(x).join("medic"));
    }
    let home =
        std::env::var("HOME").context("no --data, MEDIC_DATA or HOME to put medic's data in")?;
    Ok(PathBuf::from(home).join(".local/share/medic"))
}

/// An engine that prints each journal entry as a timeline line as soon as it is durable.
fn engine(ctx: &Ctx, store: Arc<dyn Store>, sandbox: Arc<Sandbox>, prefix_run_ids: bool) -> Engine {
    let timelines: Mutex<HashMap<String, Timeline>> = Mutex::new(HashMap::new());
    // `run.url` and `run.postmortem_url` in templates: where people reach medic's API.
    let external_url = std::env::var("MEDIC_EXTERNAL_URL").ok();
    Engine::new(
        store,
        sandbox,
        Arc::new(SystemClock),
        ctx.env.secrets.clone(),
    )
    .with_run_context(Arc::new(move |run, entries| {
        medic_postmortem::run_context(run, entries, external_url.as_deref())
    }))
    .with_observer(Arc::new(move |run, entry| {
        let mut t = timelines.lock().expect("timeline lock");
        if let Some(line) = t.entry(run.to_string()).or_default().line(entry) {
            if prefix_run_ids {
                println!("[{run}] {line}");
            } else {
                println!("{line}");
            }
        }
    }))
}

pub async fn run(ctx: &Ctx, workflow_path: &Path, alert_path: &Path) -> Result<ExitCode> {
    let loaded = match crate::load::load_workflow(ctx, workflow_path) {
        Ok(l) => l,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let alert = std::fs::read_to_string(alert_path)
        .with_context(|| format!("cannot read alert {}", alert_path.display()))?;
    let now = medic_core::clock::rfc3339(medic_core::Clock::now_ms(&SystemClock));
    let incident = medic_model::alert::incident_from_json(&alert, &now)
        .with_context(|| format!("alert {}", alert_path.display()))?;

    let store = ctx.store()?;
    let sandbox = ctx.sandbox()?;
    let unfinished = medic_core::unfinished_runs(store.as_ref())?;
    let engine = Arc::new(engine(ctx, store, sandbox, !unfinished.is_empty()));
    let mut resumed = Vec::new();
    for id in unfinished {
        println!("resuming unfinished run {id}");
        let e = engine.clone();
        resumed.push(tokio::spawn(async move { (e.drive(&id).await, id) }));
    }
    let id = engine.create_run(NewRun {
        workflow: loaded.workflow,
        workflow_file: workflow_path
            .canonicalize()
            .unwrap_or(workflow_path.to_path_buf())
            .display()
            .to_string(),
        incident,
        components: loaded.components,
        drill: false,
    })?;
    let status = engine.drive(&id).await?;
    for r in resumed {
        let (res, rid) = r.await?;
        res.with_context(|| format!("resumed run {rid}"))?;
    }
    println!();
    crate::runs::print_summary(engine.store().as_ref(), &id)?;
    Ok(exit_for(status))
}

pub async fn resume(ctx: &Ctx) -> Result<ExitCode> {
    let store = ctx.store()?;
    let sandbox = ctx.sandbox()?;
    let engine = Arc::new(engine(ctx, store, sandbox, true));
    let ids = engine.unfinished_runs()?;
    if ids.is_empty() {
        println!("no unfinished runs");
        return Ok(ExitCode::SUCCESS);
    }
    let mut worst = RunStatus::Succeeded;
    let handles: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let e = engine.clone();
            tokio::spawn(async move { (e.drive(&id).await, id) })
        })
        .collect();
    for h in handles {
        let (res, id) = h.await?;
        let status = res.with_context(|| format!("run {id}"))?;
        println!("run {id}: {}", status.as_str());
        if status == RunStatus::Failed {
            worst = RunStatus::Failed;
        }
    }
    Ok(exit_for(worst))
}

fn exit_for(status: RunStatus) -> ExitCode {
    match status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
