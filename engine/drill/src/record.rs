//! `medic drill record`: a drill file from a run's journal. The journal already holds
//! secret values redacted (`[redacted:NAME]`); recording redacts again with the values the
//! caller knows, blanks credential headers and credential-looking JSON fields, and drops
//! volatile headers, so a drill file is safe to commit.

use crate::format::{
    Answer, DrillBody, DrillFile, Exchange, FORMAT_VERSION, GateDecision, IncidentUpdate, Offset,
    Request,
};
use crate::outcome::Outcome;
use medic_core::{Entry, Event, HostCall, HttpOutcome, Redactor};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Headers that change on every exchange (or identify one): never kept, never compared.
pub const VOLATILE_HEADERS: &[&str] = &[
    "date",
    "server",
    "age",
    "expires",
    "last-modified",
    "etag",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "x-request-id",
    "request-id",
    "x-correlation-id",
    "traceparent",
    "tracestate",
    "x-amzn-requestid",
    "cf-ray",
    "x-runtime",
    "audit-id",
    "x-kubernetes-pf-flowschema-uid",
    "x-kubernetes-pf-prioritylevel-uid",
    "user-agent",
    // Derived from the URL, which is what matching compares.
    "host",
];

/// Headers that carry credentials: kept as a placeholder unless already redacted.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
];

/// JSON body fields whose values are credentials wherever they appear.
const CREDENTIAL_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "password",
    "client_secret",
    "api_key",
    "apikey",
    "secret",
    "token",
    "private_key",
];

/// Why a run cannot be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("run {0} has no journal")]
    /// The run has no journal entries.
    Empty(String),
    #[error("run {0}: entry 0 is not run_created (not a run journal)")]
    /// The journal does not start with `run_created`.
    NotARun(String),
    #[error(transparent)]
    /// The journal does not fold into a run.
    State(#[from] medic_core::StateError),
}

/// A drill file from `run`'s journal. `redactor` holds secret values the caller knows
/// (the engine's secret source): any that slipped into the journal are replaced too.
///
/// # Errors
/// The journal is empty or does not fold into a run.
pub fn record(run: &str, entries: &[Entry], redactor: &Redactor) -> Result<DrillFile, RecordError> {
    let first = entries
        .first()
        .ok_or_else(|| RecordError::Empty(run.to_string()))?;
    let Event::RunCreated(created) = &first.event else {
        return Err(RecordError::NotARun(run.to_string()));
    };
    let start = first.at_ms;
    let off = |ms: u64| Offset(ms.saturating_sub(start));
    let mut exchanges: Vec<Exchange> = Vec::new();
    let mut open: HashMap<(String, u32, u32), usize> = HashMap::new();
    let mut updates = Vec::new();
    let mut decisions = Vec::new();
    let mut opened: HashMap<String, u64> = HashMap::new();
    for e in &entries[1..] {
        match &e.event {
            Event::HostCall {
                step,
                attempt,
                call,
            } => match call {
                HostCall::HttpRequest {
                    id,
                    method,
                    url,
                    headers,
                    body,
                } => {
                    open.insert((step.clone(), *attempt, *id), exchanges.len());
                    exchanges.push(Exchange {
                        step: step.clone(),
                        attempt: *attempt,
                        at: off(e.at_ms),
                        request: Request {
                            method: method.clone(),
                            url: redactor.text(url),
                            headers: clean_headers(headers, redactor),
                            body: DrillBody::from_journal(body).map(|b| clean_body(b, redactor)),
                        },
                        // A request without a recorded response: the run stopped mid-call.
                        response: Answer {
                            status: None,
                            headers: BTreeMap::new(),
                            body: None,
                            error: Some("no response was recorded".into()),
                        },
                        latency: Offset(0),
                    });
                }
                HostCall::HttpResponse {
                    id,
                    outcome,
                    duration_ms,
                } => {
                    if let Some(i) = open.remove(&(step.clone(), *attempt, *id)) {
                        exchanges[i].response = answer(outcome, redactor);
                        exchanges[i].latency = Offset(*duration_ms);
                    }
                }
                _ => {}
            },
            Event::IncidentUpdated { status } => updates.push(IncidentUpdate {
                at: off(e.at_ms),
                status: *status,
            }),
            // Decisions by the deadline are the workflow's own doing; replay takes them again.
            Event::GateOpened { step, .. } => {
                opened.insert(step.clone(), e.at_ms);
            }
            Event::GateDecided {
                step,
                decision,
                by,
                by_deadline: false,
                comment,
            } => decisions.push(GateDecision {
                step: step.clone(),
                after: Offset(
                    e.at_ms
                        .saturating_sub(opened.get(step).copied().unwrap_or(e.at_ms)),
                ),
                decision: *decision,
                by: by.clone(),
                comment: comment.as_ref().map(|c| redactor.text(c)),
            }),
            _ => {}
        }
    }
    let original = Outcome::from_journal(run, entries)?;
    let mut incident = created.incident.clone();
    incident.title = redactor.text(&incident.title);
    Ok(DrillFile {
        medic_drill: FORMAT_VERSION,
        name: format!("{}: {}", created.workflow.name, incident.title),
        description: None,
        recorded_from: Some(run.to_string()),
        external_url: None,
        started_at_ms: start,
        incident,
        workflow_file: None,
        workflow: Some(created.workflow.clone()),
        incident_updates: updates,
        decisions,
        exchanges,
        matching: Default::default(),
        faults: Vec::new(),
        original: Some(original),
    })
}

fn answer(outcome: &HttpOutcome, redactor: &Redactor) -> Answer {
    match outcome {
        HttpOutcome::Response {
            status,
            headers,
            body,
        } => Answer {
            status: Some(*status),
            headers: clean_headers(headers, redactor),
            body: DrillBody::from_journal(body).map(|b| clean_body(b, redactor)),
            error: None,
        },
        HttpOutcome::Error { message } => Answer {
            status: None,
            headers: BTreeMap::new(),
            body: None,
            error: Some(redactor.text(message)),
        },
    }
}

/// Lower-case names, volatile headers dropped, credentials as placeholders.
pub fn clean_headers(
    headers: &[(String, String)],
    redactor: &Redactor,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        if VOLATILE_HEADERS.contains(&k.as_str()) {
            continue;
        }
        let v = redactor.text(v);
        let v = if CREDENTIAL_HEADERS.contains(&k.as_str()) && !v.contains("[redacted") {
            format!("[redacted:{k}]")
        } else {
            v
        };
        out.entry(k)
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

/// Known secret values and credential fields replaced by placeholders.
pub fn clean_body(body: DrillBody, redactor: &Redactor) -> DrillBody {
    match body {
        DrillBody::Json(v) => DrillBody::Json(clean_json(redactor.json(&v))),
        DrillBody::Text(t) => DrillBody::Text(redactor.text(&t)),
        b @ DrillBody::Base64(_) => b,
    }
}

/// Credential-looking fields (`access_token`, `password`, ...) as `[redacted:FIELD]`.
pub fn clean_json(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, x)| {
                    let credential = CREDENTIAL_FIELDS.contains(&k.to_ascii_lowercase().as_str())
                        && matches!(&x, Value::String(s) if !s.starts_with("[redacted"));
                    if credential {
                        let placeholder = Value::String(format!("[redacted:{k}]"));
                        (k, placeholder)
                    } else {
                        (k, clean_json(x))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(clean_json).collect()),
        other => other,
    }
}
