//! `medic step test`: one attempt of a component, outside any workflow, with everything
//! it did shown. The component runs as the only step of a run of its own
//! (`NewRun::standalone`) through the executor's own attempt (`Executor::attempt_once`): same
//! sandbox, grants, limits, journaling host and outcome rule as in a workflow run,
//! journalled into a throwaway in-memory store that is then read back.

use super::report::{Report, StepResult};
use crate::app::Ctx;
use anyhow::{Context, Result, bail};
use medic_core::attempt::{self, Outcome};
use medic_core::{
    Event, Executor, MemoryStore, NewRun, RunState, SecretSource, StaticSecrets, SystemClock,
};
use medic_model::Phase;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

pub struct TestArgs {
    pub component: PathBuf,
    pub params: String,
    pub incident: Option<PathBuf>,
    pub allow: Vec<String>,
    pub secrets: Vec<String>,
    pub phase: String,
    pub timeout: String,
    pub json: bool,
    pub journal: bool,
}

/// Used when no `--incident` is given: a typical page, so templated steps have labels.
pub const SAMPLE_INCIDENT: &str = r#"{
  "title": "CheckoutErrorRate: 5xx above 5% on checkout",
  "severity": "critical",
  "labels": {"alertname": "CheckoutErrorRate", "service": "checkout", "env": "prod"},
  "annotations": {"summary": "5xx above 5% for 5 minutes", "runbook": "https://runbooks.example/checkout"},
  "startsAt": "2026-11-22T03:00:00Z"
}"#;

const RUN_ID: &str = "step-test";
const STEP_ID: &str = "step";

pub async fn run(ctx: &Ctx, args: TestArgs) -> Result<ExitCode> {
    let params = read_params(&args.params)?;
    let now = medic_core::clock::rfc3339(medic_core::Clock::now_ms(&SystemClock));
    // The same reader as `medic run --alert` and `medic serve`: the first alert's incident.
    let alerts = match &args.incident {
        Some(p) => crate::app::read_alert_file(p).context("--incident")?,
        None => medic_intake::simple::parse(SAMPLE_INCIDENT.as_bytes())
            .context("the sample incident")?,
    };
    let incident = alerts
        .iter()
        .find(|a| a.status == medic_model::IncidentStatus::Firing)
        .or(alerts.first())
        .map(|a| a.to_incident(&now))
        .context("--incident: the payload holds no alert")?;
    let phase = Phase::parse(&args.phase).with_context(|| {
        format!(
            "--phase {}: expected one of {}",
            args.phase,
            Phase::ALL.map(Phase::as_str).join(", ")
        )
    })?;
    let timeout_ms = medic_model::units::parse_duration_ms(&args.timeout).with_context(|| {
        format!(
            "--timeout {}: expected a duration such as 30s or 2m",
            args.timeout
        )
    })?;
    let secrets = parse_secrets(&args.secrets)?;
    let component = args.component.as_path();
    if !component.is_file() {
        bail!("component {}: no such file", component.display());
    }

    let sandbox = ctx.sandbox()?;
    let describe = sandbox.describe(component).await;

    let mut step = attempt::standalone_step(STEP_ID, phase, &component.display().to_string());
    step.with = params.clone();
    step.timeout_ms = Some(timeout_ms);
    step.secrets = secrets.keys().cloned().collect();
    step.allow = args.allow.clone();
    let new = NewRun::standalone(step, component.display().to_string(), incident);

    let store = Arc::new(MemoryStore::new());
    let source: Arc<dyn SecretSource> = Arc::new(StaticSecrets(secrets.clone()));
    let engine = Executor::new(store.clone(), sandbox, Arc::new(SystemClock), source);
    engine.create_run_as(RUN_ID.into(), new)?;
    let started = Instant::now();
    let outcome = engine.attempt_once(RUN_ID).await?;
    let elapsed = started.elapsed();
    let (state, entries) = RunState::load_with_journal(store.as_ref(), RUN_ID)?;
    // What the step was given, as the attempt's request: rendered params as journalled.
    let rendered = entries
        .iter()
        .find_map(|e| match &e.event {
            Event::AttemptStarted { params, .. } => Some(params.clone()),
            _ => None,
        })
        .unwrap_or(params);
    let spec = &state.workflow.steps[0];
    let invocation = attempt::request(&state, spec, 1, &rendered, &Default::default()).invocation;
    let redactor = medic_core::Redactor::new(secrets);
    let result = match outcome {
        Outcome::Succeeded(output) => StepResult::Done(output),
        Outcome::Failed {
            failure,
            retry_after_ms: Some(ms),
        } => StepResult::RetryAfter {
            ms,
            reason: failure.message,
        },
        Outcome::Failed { failure, .. } => StepResult::Failed {
            kind: failure.kind.as_str().to_string(),
            retryable: failure.retryable,
            message: failure.message,
        },
    };
    let report = Report::new(
        component,
        describe,
        &invocation,
        &rendered,
        &args.allow,
        &entries,
        result,
        elapsed,
        &redactor,
    );
    if args.json {
        let mut v = report.to_json();
        if args.journal {
            // Redacted once more, as everything printed: `with:` is journalled as given.
            v["journal"] = redactor.json(&serde_json::to_value(&entries)?);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", report.to_text());
        if args.journal {
            println!("\njournal ({} entries):", entries.len());
            for e in &entries {
                let event = redactor.text(&serde_json::to_string(&e.event)?);
                println!("  #{:<4} {event}", e.seq);
            }
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--params`: JSON text, or the path of a file holding it.
fn read_params(arg: &str) -> Result<serde_json::Value> {
    match serde_json::from_str(arg) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            let path = Path::new(arg);
            if !path.is_file() {
                bail!("--params: neither JSON ({json_err}) nor a file that exists: {arg}");
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--params: cannot read {arg}"))?;
            serde_json::from_str(&text).with_context(|| format!("--params: {arg} is not JSON"))
        }
    }
}

/// `--secret NAME=VALUE`, each one granted to the step.
fn parse_secrets(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in args {
        // Never echo the argument: it holds the secret value.
        let Some((name, value)) = a.split_once('=') else {
            bail!("--secret: expected NAME=VALUE (the value is not shown here)");
        };
        if name.is_empty() {
            bail!("--secret: empty NAME in NAME=VALUE");
        }
        out.insert(name.to_string(), value.to_string());
    }
    Ok(out)
}
