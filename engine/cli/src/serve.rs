//! `medic serve`: load the engine config and workflows, then serve until SIGTERM.

use crate::app::Ctx;
use anyhow::{Context, Result, bail};
use medic_server::{LoadedWorkflow, ServeConfig, Service};
use std::path::Path;
use std::process::ExitCode;

/// Every `*.yaml`/`*.yml` in `dir`, parsed and with components resolved. Any error stops
/// start-up: a service must not run half its runbooks.
fn load_workflows(ctx: &Ctx, dir: &Path) -> Result<Vec<LoadedWorkflow>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read workflows directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let dirs = ctx.step_dirs(dir);
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        let shown = file.display().to_string();
        let src = std::fs::read_to_string(&file).with_context(|| format!("cannot read {shown}"))?;
        let doc = match medic_model::parse_workflow(&shown, &src) {
            Ok(d) => d,
            Err(diags) => {
                problems.extend(diags.iter().map(|d| d.to_string()));
                continue;
            }
        };
        let mut components = std::collections::BTreeMap::new();
        for (i, s) in doc.workflow.steps.iter().enumerate() {
            match crate::resolve::component(&s.uses, dir, &dirs) {
                Ok(p) => {
                    components.insert(s.id.clone(), p.display().to_string());
                }
                Err(e) => {
                    let pos = doc
                        .locate(&format!("steps[{i}].uses"))
                        .map(|p| format!(":{}:{}", p.line, p.column))
                        .unwrap_or_default();
                    problems.push(format!("{shown}{pos}: steps[{i}].uses: {e:#}"));
                }
            }
        }
        out.push(LoadedWorkflow {
            workflow: doc.workflow,
            file: shown,
            components,
        });
    }
    if !problems.is_empty() {
        bail!("workflows not loaded:\n{}", problems.join("\n"));
    }
    Ok(out)
}

pub async fn serve(
    ctx: &Ctx,
    config: &Path,
    workflows: &Path,
    listen: Option<String>,
) -> Result<ExitCode> {
    let mut config = ServeConfig::load(config)?;
    if let Some(l) = listen {
        config.listen = l;
    }
    let loaded = load_workflows(ctx, workflows)?;
    let store = ctx.store()?;
    let sandbox = ctx.sandbox()?;
    let listen = config.listen.clone();
    let svc = Service::new(store, sandbox, config, loaded.clone()).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!(
        "medic serving on http://{} with {} workflows ({})",
        listener.local_addr()?,
        loaded.len(),
        loaded
            .iter()
            .map(|w| w.workflow.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let processor = tokio::spawn(medic_server::process(svc.clone()));
    let app = medic_server::router(svc.clone());
    let stopping = svc.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Intake answers 503 from now on; in-flight attempts are journalled and
            // resume (by replay) at the next start.
            stopping.stop_intake();
            println!("medic: stopping; unfinished runs resume at the next start");
        })
        .await?;
    processor.abort();
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
