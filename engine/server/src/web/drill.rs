//! Drills from a run's page (docs/drills.md): record the run as a drill file (a
//! download), and replay it against the workflows medic serves now, showing the report.
//!
//! The replay runs in this process with medic-drill, exactly as `medic drill run` does:
//! its own engine on a virtual clock over an in-memory journal, every outgoing request
//! answered from the recording at the journal's chokepoint (never the network: `live`
//! is never set here), secrets as placeholders. The finished drill run is kept in the
//! store as a drill (`[drill] …`, `drill: true`) and indexed as one, so the runs list
//! shows it only under "drills"; it never goes through the service's engine, so it
//! opens no incident, counts in no `/metrics`, and reaches no chat.

use super::postmortem::{download, file_name};
use super::run::load;
use super::session::Session;
use super::view::Chrome;
use super::{CsrfForm, csrf_refused, html, index, message};
use crate::Service;
use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use medic_core::{Entry, Event, JournalStore, Redactor};
use medic_drill::matcher::Divergence;
use medic_drill::outcome::StepOutcome;
use medic_drill::{DrillFile, Env, Options, Report, Setup, Syntax};
use std::sync::Arc;
use std::time::Duration;

/// Longest a replay may take before it is given up (a step that sleeps in real time
/// inside its component, say); nothing is kept then.
const REPLAY_LIMIT: Duration = Duration::from_secs(120);

/// The drill file of run `id`. Secret values medic knows (those its workflows are
/// granted) are redacted again, in case one reached the journal some way the engine
/// could not see, as `medic drill record` does with `MEDIC_SECRET_*`.
fn record(svc: &Service, id: &str, entries: &[Entry]) -> Result<DrillFile, String> {
    let source = svc.config.secret_source().map_err(|e| e.to_string())?;
    let recorded = match entries.first().map(|e| &e.event) {
        Some(Event::RunCreated(c)) => Some(&c.workflow),
        _ => None,
    };
    let names = recorded
        .into_iter()
        .chain(svc.workflows.iter().map(|w| &w.workflow))
        .flat_map(|w| w.steps.iter().flat_map(|s| s.secrets.iter()));
    let redactor = Redactor::new(names.filter_map(|n| source.get(n).map(|v| (n.clone(), v))));
    medic_drill::record(id, entries, &redactor).map_err(|e| e.to_string())
}

/// `POST /ui/runs/{id}/drill`: the run as a drill file (YAML), to save and commit.
pub(crate) async fn record_file(
    State(svc): State<Arc<Service>>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.csrf_ok(form.csrf.as_deref()) {
        return csrf_refused();
    }
    let loaded = match load(&svc, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match record(&svc, &id, &loaded.entries) {
        Ok(drill) => download(
            "application/yaml; charset=utf-8",
            &file_name("drill", &id, "yaml"),
            medic_drill::write(&drill, Syntax::Yaml),
        ),
        Err(e) => message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No drill",
            format!("run {id} cannot be recorded as a drill: {e}"),
        ),
    }
}

/// One step, recording against replay.
struct StepRow {
    id: String,
    phase: String,
    original: String,
    replay: String,
    changed: bool,
    why: Option<String>,
    /// Provider calls the replay made that the recording did not (`+`), and the other way.
    added: Vec<String>,
    removed: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/drill_report.html")]
struct ReportPage {
    chrome: Chrome,
    run: String,
    kept_as: Option<String>,
    verdict: &'static str,
    verdict_class: &'static str,
    report: Report,
    /// (what, original, replay).
    figures: Vec<(&'static str, String, String)>,
    steps: Vec<StepRow>,
    divergences: Vec<Divergence>,
    text: String,
}

/// `succeeded (2 attempts)`, `approved by alice`, `skipped` (as the text report says it).
fn summary(s: &StepOutcome) -> String {
    if let Some(d) = &s.decision {
        return d.clone();
    }
    match s.attempts {
        0 => s.status.clone(),
        1 => format!("{} (1 attempt)", s.status),
        n => format!("{} ({n} attempts)", s.status),
    }
}

fn step_rows(report: &Report) -> Vec<StepRow> {
    let o = report.original.as_ref();
    let r = &report.replay;
    let mut ids: Vec<&str> = r.steps.iter().map(|s| s.id.as_str()).collect();
    for s in o.map(|o| o.steps.as_slice()).unwrap_or(&[]) {
        if !ids.contains(&s.id.as_str()) {
            ids.push(&s.id);
        }
    }
    ids.into_iter()
        .map(|id| {
            let a = o.and_then(|o| o.steps.iter().find(|s| s.id == id));
            let b = r.steps.iter().find(|s| s.id == id);
            let calls_a = a.map(|s| s.calls.as_slice()).unwrap_or(&[]);
            let calls_b = b.map(|s| s.calls.as_slice()).unwrap_or(&[]);
            let changed = o.is_some() && (a.map(summary) != b.map(summary) || calls_a != calls_b);
            StepRow {
                id: id.to_string(),
                phase: b.or(a).map(|s| s.phase.as_str()).unwrap_or("").to_string(),
                original: match (o, a) {
                    (None, _) => "no recording".into(),
                    (Some(_), None) => "not in the recording".into(),
                    (Some(_), Some(a)) => summary(a),
                },
                replay: b.map_or_else(|| "not in this workflow".into(), summary),
                changed,
                why: b.and_then(|s| s.why.clone()),
                added: calls_b
                    .iter()
                    .filter(|c| o.is_some() && !calls_a.contains(c))
                    .cloned()
                    .collect(),
                removed: calls_a
                    .iter()
                    .filter(|c| !calls_b.contains(c))
                    .cloned()
                    .collect(),
            }
        })
        .collect()
}

/// `POST /ui/runs/{id}/drill/run`: records the run as a drill and replays it, in virtual
/// time, against the workflow of the same name medic serves now; shows the report.
pub(crate) async fn run(
    State(svc): State<Arc<Service>>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.csrf_ok(form.csrf.as_deref()) {
        return csrf_refused();
    }
    let loaded = match load(&svc, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let entries = &loaded.entries;
    let finished = loaded.state.is_finished();
    if !finished {
        return message(
            StatusCode::CONFLICT,
            "Not finished yet",
            format!(
                "Run {id} has not finished: replay it as a drill once it has (recording its drill file works now)."
            ),
        );
    }
    let drill = match record(&svc, &id, entries) {
        Ok(d) => d,
        Err(e) => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "No drill",
                format!("run {id} cannot be recorded as a drill: {e}"),
            );
        }
    };
    let name = drill
        .workflow
        .as_ref()
        .map(|w| w.name.clone())
        .unwrap_or_default();
    let Some(current) = svc.workflows.iter().find(|w| w.workflow.name == name) else {
        return message(
            StatusCode::CONFLICT,
            "No current workflow",
            format!(
                "medic serves no workflow named {name} now, so there is nothing to replay run {id} against. Record the drill file and run it with `medic drill run FILE --workflow FILE`."
            ),
        );
    };
    let setup = Setup {
        workflow: current.workflow.clone(),
        workflow_file: current.file.clone(),
        components: current.components.clone(),
    };
    let Ok(_one_at_a_time) = svc.web.drills.try_acquire() else {
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            "A drill is running",
            "medic is replaying another drill right now; try again in a moment.".into(),
        );
    };
    let opts = Options::default();
    let store: Arc<dyn JournalStore> = svc.store.clone();
    let env = Env {
        store: Some(store),
        runner: svc.runner.clone(),
        secrets: None,
        observer: None,
    };
    let replayed = tokio::time::timeout(
        REPLAY_LIMIT,
        medic_drill::replay::run(&drill, &setup, &opts, &env),
    )
    .await;
    let replay = match replayed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The drill could not run",
                e.to_string(),
            );
        }
        Err(_) => {
            return message(
                StatusCode::GATEWAY_TIMEOUT,
                "The drill took too long",
                format!(
                    "The replay of run {id} did not finish within {} s and was stopped; nothing was kept. Run it with `medic drill run` to watch it (`--speed`).",
                    REPLAY_LIMIT.as_secs()
                ),
            );
        }
    };
    if let Some(kept) = &replay.kept_as {
        index_drill(&svc, kept, &replay.entries).await;
    }
    let report = match Report::new(&drill, &setup, &opts, &replay) {
        Ok(r) => r,
        Err(e) => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "No report",
                format!("the drill ran but its journal does not fold into a run: {e}"),
            );
        }
    };
    let t = |o: Option<medic_drill::Offset>| o.map_or_else(|| "—".to_string(), |d| d.to_string());
    let o = report.original.as_ref();
    let r = &report.replay;
    let figures = vec![
        (
            "Time to restore",
            o.map_or("—".into(), |o| t(o.time_to_restore)),
            t(r.time_to_restore),
        ),
        (
            "Time to verified",
            o.map_or("—".into(), |o| t(o.time_to_verified)),
            t(r.time_to_verified),
        ),
        (
            "Run",
            o.map_or("—".into(), |o| o.status.clone()),
            r.status.clone(),
        ),
        (
            "Duration",
            o.map_or("—".into(), |o| o.duration.to_string()),
            r.duration.to_string(),
        ),
    ];
    let page = ReportPage {
        chrome: Chrome {
            user: session.user,
            csrf: session.csrf,
            section: "runs",
        },
        run: id,
        kept_as: replay.kept_as.clone(),
        verdict: report.verdict.as_str(),
        verdict_class: match report.verdict {
            medic_drill::Verdict::DidNotRestore => "failed",
            medic_drill::Verdict::RestoredDifferently => "gate",
            _ => "succeeded",
        },
        steps: step_rows(&report),
        divergences: report.divergences.clone(),
        text: report.text(),
        figures,
        report,
    };
    html(StatusCode::OK, page.render())
}

/// Puts the kept drill run in the runs list's index as a drill: it was written straight
/// to the store, not through the inbox, whose batch indexes the runs it creates.
async fn index_drill(svc: &Arc<Service>, kept: &str, entries: &[Entry]) {
    let Some(Entry {
        event: Event::RunCreated(created),
        ..
    }) = entries.first()
    else {
        return;
    };
    let (worker, run, created) = (svc.clone(), kept.to_string(), created.clone());
    // A missing index record is written again by the next backfill: not worth a failure.
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(Some(meta)) = worker.store.run(&run) {
            let _ = index::record(&worker.store, &run, meta.created_ms, &created);
        }
    })
    .await;
}
