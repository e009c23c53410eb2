//! `medic serve`: load the engine config and workflows, then serve until SIGTERM.

use crate::app::Ctx;
use anyhow::{Context, Result, bail};
use medic_core::LoadedWorkflow;
use medic_server::{ServeConfig, Service};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Every `*.yaml`/`*.yml` in `dir`, parsed and with components resolved. Any error stops
/// start-up: a service must not run half its runbooks.
fn load_workflows(ctx: &Ctx, dir: &Path) -> Result<Vec<LoadedWorkflow>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read workflows directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        match crate::load::load_workflow(ctx, &file) {
            Ok(w) => out.push(w),
            Err(p) => problems.extend(p),
        }
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
    let env = crate::environment::Environment::from_config(&config.environment())
        .context("config: [[tls]], [kubernetes] or [vars]")?;
    let ctx = &ctx.clone().with_environment(env);
    let loaded = load_workflows(ctx, workflows)?;
    let store = ctx.store()?;
    let sandbox = ctx.sandbox()?;
    let listen = config.listen.clone();
    let svc_grace_ms = config.shutdown_grace_ms().map_err(anyhow::Error::msg)?;
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
    let grace = Duration::from_millis(svc_grace_ms);
    let processor = tokio::spawn(medic_server::process(svc.clone()));
    let app = medic_server::router(svc.clone());
    let stopping = svc.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // Intake answers 503 from now on, no new attempt starts, and the attempts in
            // flight get the grace period to finish and be journalled. Runs are parked in
            // their journals and resume at the next start.
            println!(
                "medic: stopping: intake closed, waiting up to {} for step attempts in flight",
                medic_model::units::format_duration_ms(svc_grace_ms)
            );
            if stopping.shut_down(grace).await {
                println!("medic: stopped; unfinished runs resume at the next start");
            } else {
                println!(
                    "medic: stopped with attempts still running; they resume by replay at the next start"
                );
            }
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
