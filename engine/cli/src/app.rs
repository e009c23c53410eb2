//! Wiring: data directory, store, sandbox and engine for the commands that run steps.

use anyhow::{Context, Result, bail};
use medic_core::timeline::Timeline;
use medic_core::{Executor, JournalStore, NewRun, RunStatus, SystemClock};
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
fn engine(
    ctx: &Ctx,
    store: Arc<dyn JournalStore>,
    sandbox: Arc<Sandbox>,
    prefix_run_ids: bool,
) -> Executor {
    let timelines: Mutex<HashMap<String, Timeline>> = Mutex::new(HashMap::new());
    // `run.url` and `run.postmortem_url` in templates: where people reach medic's API.
    let external_url = std::env::var("MEDIC_EXTERNAL_URL").ok();
    Executor::new(
        store,
        sandbox,
        Arc::new(SystemClock),
        ctx.env.secrets.clone(),
    )
    .with_run_context(Arc::new(move |run, entries| {
        medic_postmortem::run_context(run, entries, external_url.as_deref())
    }))
    .with_observer(Arc::new(move |meta, entry| {
        let run = &meta.id;
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
    let now = medic_core::clock::rfc3339(medic_core::Clock::now_ms(&SystemClock));
    let incidents = incidents_from_file(alert_path, &loaded.workflow, &now)?;

    let store = ctx.store()?;
    let sandbox = ctx.sandbox()?;
    let unfinished = medic_core::unfinished_runs(store.as_ref())?;
    let several = !unfinished.is_empty() || incidents.len() > 1;
    let engine = Arc::new(engine(ctx, store, sandbox, several));
    let mut resumed = Vec::new();
    for id in unfinished {
        println!("resuming unfinished run {id}");
        let e = engine.clone();
        resumed.push(tokio::spawn(async move { (e.drive(&id).await, id) }));
    }
    let workflow_file = workflow_path
        .canonicalize()
        .unwrap_or(workflow_path.to_path_buf())
        .display()
        .to_string();
    let mut started = Vec::new();
    for incident in incidents {
        println!("incident {} — {}", incident.id, incident.title);
        for note in &incident.notes {
            println!("  note: {note}");
        }
        let id = engine.create_run(NewRun {
            workflow: loaded.workflow.clone(),
            workflow_file: workflow_file.clone(),
            incident,
            components: loaded.components.clone(),
            drill: false,
        })?;
        let e = engine.clone();
        let run = id.clone();
        started.push((id, tokio::spawn(async move { e.drive(&run).await })));
    }
    let mut worst = RunStatus::Succeeded;
    let mut ids = Vec::new();
    for (id, handle) in started {
        let status = handle.await?.with_context(|| format!("run {id}"))?;
        if status != RunStatus::Succeeded {
            worst = status;
        }
        ids.push(id);
    }
    for r in resumed {
        let (res, rid) = r.await?;
        res.with_context(|| format!("resumed run {rid}"))?;
    }
    for id in ids {
        println!();
        crate::runs::print_summary(engine.store().as_ref(), &id)?;
    }
    Ok(exit_for(worst))
}

/// The incidents an alert file opens for `workflow`, read by medic-intake exactly as
/// `medic serve` reads a webhook (format detected: Alertmanager, Grafana, PagerDuty or
/// medic's own document) and named as `medic serve` names them (`group-by` included).
/// `now` (RFC 3339) stands in for a missing start time.
pub fn incidents_from_file(
    path: &Path,
    workflow: &medic_model::Workflow,
    now: &str,
) -> Result<Vec<medic_model::Incident>> {
    let alerts = read_alert_file(path)?;
    let incidents = medic_intake::incidents_for(&alerts, workflow, now);
    if incidents.is_empty() {
        bail!(
            "alert {}: no alert in it fires ({} resolved), so there is nothing to run",
            path.display(),
            alerts.len()
        );
    }
    Ok(incidents)
}

/// Every alert of an alert file, in any format medic-intake detects.
pub fn read_alert_file(path: &Path) -> Result<Vec<medic_intake::Alert>> {
    let body =
        std::fs::read(path).with_context(|| format!("cannot read alert {}", path.display()))?;
    medic_intake::read_any(&body)
        .and_then(medic_intake::Batch::into_alerts)
        .with_context(|| format!("alert {}", path.display()))
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
        // Cancelled: the incident resolved by itself; nothing failed.
        RunStatus::Succeeded | RunStatus::Cancelled => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
