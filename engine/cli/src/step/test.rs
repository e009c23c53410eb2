//! `medic step test`: one attempt of a component, outside any workflow, with everything
//! it did shown. The attempt runs exactly as in a run (same sandbox, grants, limits and
//! journaling host), journalled into a throwaway in-memory store that is then read back.

use super::report::{Report, StepResult};
use crate::app::Ctx;
use anyhow::{Context, Result, bail};
use medic_core::{
    AttemptHost, AttemptRequest, AttemptResult, Grants, Invocation, MemoryStore, ResolvedLimits,
    RunJournal, SecretSource, StaticSecrets, StepRunner, Store, SystemClock,
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

    let store = Arc::new(MemoryStore::new());
    let journal = RunJournal::scratch(store.clone(), Arc::new(SystemClock), RUN_ID)?;
    let source: Arc<dyn SecretSource> = Arc::new(StaticSecrets(secrets.clone()));
    let host = AttemptHost::standalone(journal, STEP_ID, secrets.keys().cloned().collect(), source);
    let redactor = host.redactor().clone();
    let invocation = Invocation {
        run_id: RUN_ID.into(),
        step_id: STEP_ID.into(),
        attempt: 1,
        idempotency_key: medic_core::idempotency_key(RUN_ID, STEP_ID),
        phase,
        incident,
        params: params.to_string(),
        drill: false,
    };
    let request = AttemptRequest {
        component: component.display().to_string(),
        invocation: invocation.clone(),
        grants: Grants {
            secrets: secrets.keys().cloned().collect(),
            allow: args.allow.clone(),
        },
        limits: ResolvedLimits {
            timeout_ms,
            ..ResolvedLimits::default()
        },
    };
    let started = Instant::now();
    let result = sandbox.run(request, host.clone()).await;
    let elapsed = started.elapsed();
    // Grant violations and journal failures fail the attempt, as the executor does.
    let result = match (result, host.violations(), host.fatal()) {
        (_, _, Some(fatal)) => AttemptResult::Failed(medic_core::Failure::new(
            fatal.kind(),
            false,
            fatal.to_string(),
        )),
        (r, v, None) if v.is_empty() => r,
        (_, v, None) => AttemptResult::Failed(medic_core::Failure::new(
            medic_core::FailureKind::StepError,
            false,
            v.join("; "),
        )),
    };
    let entries = store.entries(RUN_ID)?;
    let report = Report::new(
        component,
        describe,
        &invocation,
        &params,
        &args.allow,
        &entries,
        StepResult::from(result),
        elapsed,
        &redactor,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
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
