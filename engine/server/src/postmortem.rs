//! Postmortem drafts on the API: `GET /api/runs/{id}/postmortem` and
//! `GET /api/incidents/{id}/postmortem`, `?format=md|json|html|svg` (default `md`).
//! The facts come from medic-postmortem; the Markdown uses the team's template when
//! `[postmortem] template` is configured.

use crate::Service;
use crate::api::blocking;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::incident::IncidentRecord;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use medic_core::{Entry, JournalStore, StoreError, codec};
use medic_postmortem::{Format, Postmortem};
use medic_store::SledStore;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub(crate) struct FormatQuery {
    format: Option<String>,
}

/// The journals of every run of incident `id`: the runs its incident record lists (the
/// service's incidents, by fingerprint), or else every run created for an incident with
/// that id (runs started by `medic run`). Empty when there are none.
///
/// # Errors
/// The store's, reading records or journals.
pub fn incident_journals(
    store: &SledStore,
    id: &str,
) -> Result<Vec<(String, Vec<Entry>)>, StoreError> {
    let mut runs: Vec<String> = Vec::new();
    for (_, v) in store.scan(IncidentRecord::PREFIX)? {
        // A record that does not decode is someone else's problem: the runs still tell.
        if let Ok(r) = codec::decode::<IncidentRecord>(&v)
            && r.fingerprint == id
        {
            runs = r.runs;
        }
    }
    if runs.is_empty() {
        for meta in store.runs()? {
            let entries = store.entries(&meta.id)?;
            if let Some(Entry {
                event: medic_core::Event::RunCreated(created),
                ..
            }) = entries.first()
                && created.incident.id == id
            {
                runs.push(meta.id);
            }
        }
    }
    runs.into_iter()
        .map(|run| Ok((run.clone(), store.entries(&run)?)))
        .collect()
}

/// `GET /api/runs/{id}/postmortem`: the draft of one run.
pub(crate) async fn run_postmortem(
    State(svc): State<Arc<Service>>,
    Path(id): Path<String>,
    Query(q): Query<FormatQuery>,
    _: Caller,
) -> Result<Response, ApiError> {
    let worker = svc.clone();
    let run = id.clone();
    let entries = blocking(move || Ok(worker.store.entries(&run)?)).await?;
    respond(&svc, vec![(id, entries)], q.format.as_deref())
}

/// `GET /api/incidents/{id}/postmortem`: one draft over every run of the incident.
pub(crate) async fn incident_postmortem(
    State(svc): State<Arc<Service>>,
    Path(id): Path<String>,
    Query(q): Query<FormatQuery>,
    _: Caller,
) -> Result<Response, ApiError> {
    let worker = svc.clone();
    let incident = id.clone();
    let journals = blocking(move || Ok(incident_journals(&worker.store, &incident)?)).await?;
    if journals.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no incident with id {id} (or it started no run)"
        )));
    }
    respond(&svc, journals, q.format.as_deref())
}

fn respond(
    svc: &Service,
    journals: Vec<(String, Vec<Entry>)>,
    format: Option<&str>,
) -> Result<Response, ApiError> {
    let format = format
        .map_or(Some(Format::Markdown), Format::parse)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "format `{}`: medic writes postmortems as md, json, html or svg",
                format.unwrap_or_default()
            ))
        })?;
    let pm = draft(svc, journals).map_err(ApiError::Unprocessable)?;
    let body = match format {
        Format::Markdown => markdown(svc, &pm).map_err(ApiError::Unprocessable)?,
        _ => pm.render(format),
    };
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// The draft over `journals`, linked under `external_url` when one is configured: the
/// one behind the API and the web view's postmortem page.
///
/// # Errors
/// A journal that is not a run's, in words.
pub(crate) fn draft(
    svc: &Service,
    journals: Vec<(String, Vec<Entry>)>,
) -> Result<Postmortem, String> {
    let pm = Postmortem::from_journals(journals).map_err(|e| e.to_string())?;
    Ok(match &svc.config.external_url {
        Some(url) => pm.with_external_url(url),
        None => pm,
    })
}

/// The Markdown draft: the team's template when `[postmortem] template` is configured,
/// else the built-in one.
///
/// # Errors
/// The team's template cannot be read or does not render (naming the file and line).
pub(crate) fn markdown(svc: &Service, pm: &Postmortem) -> Result<String, String> {
    let Some(path) = &svc.config.postmortem.template else {
        return Ok(pm.markdown());
    };
    let path = svc.config.base.join(path);
    let template = std::fs::read_to_string(&path)
        .map_err(|e| format!("postmortem template {}: {e}", path.display()))?;
    pm.render_template(&path.display().to_string(), &template)
        .map_err(|e| e.to_string())
}

/// `run.*` in workflow templates: the run's links under `external_url`, and its metrics.
pub(crate) fn run_context(external_url: Option<String>) -> medic_core::RunContext {
    Arc::new(move |run, entries| {
        medic_postmortem::run_context(run, entries, external_url.as_deref())
    })
}
