//! `POST /api/runs/{id}/gates/{step}`: people decide a human gate.
//!
//! The decision is checked against the run as journalled (the gate must be open, the
//! caller one of its approvers), then posted to the run's mailbox; the run's own driver
//! journals it, so the journal keeps a single writer. Answers 202 once the decision is
//! durably stored: the timeline shows it a moment later.

use crate::Service;
use crate::api::blocking;
use crate::auth::Caller;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use medic_core::{JournalStore, Message, RunState, StoreError, gates};
use medic_model::Decision;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Longest comment kept on the timeline.
pub(crate) const MAX_COMMENT: usize = 2000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    decision: String,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

/// The handler: who decides comes from the token (a personal one) or the body (a
/// system token naming the person).
pub(crate) async fn decide(
    State(svc): State<Arc<Service>>,
    Path((run, step)): Path<(String, String)>,
    who: Caller,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: Body = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "body must be JSON like {{\"decision\": \"approve\", \"by\": \"alice\", \"comment\": \"...\"}}: {e}"
        ))
    })?;
    let decision = Decision::parse(&body.decision).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "`decision` is `{}`: write `approve` or `reject`",
            body.decision
        ))
    })?;
    let by = match (who, body.by) {
        (Caller::User(name), Some(by)) if by != name => {
            return Err(ApiError::Forbidden(format!(
                "this token belongs to {name}: it cannot decide as {by}"
            )));
        }
        (Caller::User(name), _) => name,
        (Caller::Service, Some(by)) if !by.trim().is_empty() => by.trim().to_string(),
        (Caller::Service, _) => {
            return Err(ApiError::BadRequest(
                "say who decides: add \"by\": \"<name>\" (or use a personal token from [users] in the engine config)".into(),
            ));
        }
    };
    if body.comment.as_ref().is_some_and(|c| c.len() > MAX_COMMENT) {
        return Err(ApiError::Unprocessable(format!(
            "`comment` is too long: at most {MAX_COMMENT} bytes"
        )));
    }
    let (run2, step2, by2) = (run.clone(), step.clone(), by.clone());
    blocking(move || {
        check_and_post(&svc, &run2, &step2, decision, &by2, body.comment)??;
        Ok(())
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"run": run, "step": step, "decision": decision.as_str(),
            "by": by, "status": "accepted"}),
        ),
    ))
}

/// Checks a decision against the run as journalled (`gates::check_decision`: the gate is
/// open, `by` is one of its approvers) and posts it to the run's mailbox. The API and the
/// web view both decide through here, so they enforce the same rules. Blocking (store
/// reads and a flushed write): call it off the async workers.
pub(crate) fn check_and_post(
    svc: &Arc<Service>,
    run: &str,
    step: &str,
    decision: Decision,
    by: &str,
    comment: Option<String>,
) -> Result<Result<(), gates::Refusal>, StoreError> {
    let entries = svc.store.entries(run)?;
    let state = RunState::fold(run, &entries).map_err(|e| StoreError::Io {
        path: "journal".into(),
        message: e.to_string(),
    })?;
    if let Err(refusal) = gates::check_decision(&state, step, by) {
        return Ok(Err(refusal));
    }
    let message = Message::GateDecision {
        step: step.to_string(),
        decision,
        by: by.to_string(),
        comment,
    };
    svc.post(run, &message).map_err(|e| StoreError::Io {
        path: "mailbox".into(),
        message: e.to_string(),
    })?;
    Ok(Ok(()))
}
