//! The postmortem draft in the web view: `/ui/runs/{id}/postmortem` and
//! `/ui/incidents/{id}/postmortem`, with the timeline picture inline, and the Markdown
//! draft as a download (`…/postmortem.md`). The facts are medic-postmortem's, built by
//! the same function as `GET /api/…/postmortem` (`crate::postmortem::draft`), so the page,
//! the download and the API never disagree.
//!
//! Escaping: every fact goes through askama's HTML escaping; the picture is inserted as
//! is, because medic-postmortem writes it with the `svg` crate, which escapes every text
//! node (step ids, prompts, the incident title) and sets attributes only to numbers and
//! fixed names (tested with an incident titled `<script>`).

use super::session::Session;
use super::view::Chrome;
use super::{html, message};
use crate::Service;
use crate::postmortem::{draft, incident_journals, markdown};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medic_core::{Entry, JournalStore, StoreError};
use medic_postmortem::{Facts, Metric, Postmortem};
use std::sync::Arc;

/// Which draft: one run's, or every run of an incident merged.
#[derive(Debug, Clone)]
enum Subject {
    Run(String),
    Incident(String),
}

impl Subject {
    fn id(&self) -> &str {
        match self {
            Subject::Run(id) | Subject::Incident(id) => id,
        }
    }

    /// The page it was opened from (the "back" link) and its own address.
    fn page(&self) -> String {
        match self {
            Subject::Run(id) => format!("/ui/runs/{}", super::session::urlencode(id)),
            Subject::Incident(id) => format!("/ui/incidents/{}", super::session::urlencode(id)),
        }
    }
}

#[derive(Template)]
#[template(path = "web/postmortem.html")]
struct PostmortemPage<'a> {
    chrome: Chrome,
    back: String,
    back_label: &'static str,
    download: String,
    facts: &'a Facts,
    metrics: Vec<(&'static str, &'a Metric)>,
    svg: String,
    multi: bool,
}

/// A file name made of the id's safe characters: `postmortem-<id>.md`.
pub(crate) fn file_name(prefix: &str, id: &str, ext: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!("{prefix}-{safe}.{ext}")
}

/// A file to save rather than a page to show: `Content-Disposition: attachment`.
pub(crate) fn download(content_type: &'static str, name: &str, body: String) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // `name` is made of [A-Za-z0-9._-] (file_name), so it needs no quoting rules.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Reads the journals (off the async workers) and builds the draft, or the page that
/// says why there is none.
async fn load(svc: &Arc<Service>, subject: &Subject) -> Result<Postmortem, Response> {
    let worker = svc.clone();
    let s = subject.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        match &s {
            Subject::Run(id) => Ok(vec![(id.clone(), worker.store.entries(id)?)]),
            Subject::Incident(id) => incident_journals(&worker.store, id),
        }
    })
    .await;
    let journals: Vec<(String, Vec<Entry>)> = match read {
        Ok(Ok(j)) if !j.is_empty() && j.iter().any(|(_, e)| !e.is_empty()) => j,
        Ok(Ok(_)) | Ok(Err(StoreError::NoSuchRun(_))) => {
            let what = match subject {
                Subject::Run(id) => format!("medic has no run with id {id}."),
                Subject::Incident(id) => {
                    format!("medic has no incident with id {id}, or it started no run.")
                }
            };
            return Err(message(StatusCode::NOT_FOUND, "No postmortem", what));
        }
        Ok(Err(e)) => {
            return Err(message(
                StatusCode::SERVICE_UNAVAILABLE,
                "The journal could not be read",
                e.to_string(),
            ));
        }
        Err(e) => {
            return Err(message(
                StatusCode::SERVICE_UNAVAILABLE,
                "The journal could not be read",
                e.to_string(),
            ));
        }
    };
    draft(svc, journals).map_err(|e| {
        message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "No postmortem",
            format!("medic could not write a postmortem draft: {e}"),
        )
    })
}

async fn page(svc: Arc<Service>, session: Session, subject: Subject) -> Response {
    let pm = match load(&svc, &subject).await {
        Ok(pm) => pm,
        Err(r) => return r,
    };
    let facts = pm.facts();
    let m = &facts.metrics;
    let page = PostmortemPage {
        chrome: Chrome {
            user: session.user,
            csrf: session.csrf,
            section: "runs",
        },
        back: subject.page(),
        back_label: match subject {
            Subject::Run(_) => "the run",
            Subject::Incident(_) => "the incident",
        },
        download: format!("{}/postmortem.md", subject.page()),
        metrics: vec![
            ("Time to detect", &m.time_to_detect),
            ("Time to communicate", &m.time_to_communicate),
            ("Time to mitigate", &m.time_to_mitigate),
            ("Time to verified", &m.time_to_verified),
            ("Time to resolve", &m.time_to_resolve),
            ("Waiting on people", &m.waiting_on_people),
        ],
        multi: facts.runs.len() > 1,
        svg: pm.svg(),
        facts,
    };
    html(StatusCode::OK, page.render())
}

async fn markdown_file(svc: Arc<Service>, subject: Subject) -> Response {
    let pm = match load(&svc, &subject).await {
        Ok(pm) => pm,
        Err(r) => return r,
    };
    match markdown(&svc, &pm) {
        Ok(md) => download(
            "text/markdown; charset=utf-8",
            &file_name("postmortem", subject.id(), "md"),
            md,
        ),
        Err(e) => message(StatusCode::UNPROCESSABLE_ENTITY, "No Markdown draft", e),
    }
}

/// `GET /ui/runs/{id}/postmortem`.
pub(crate) async fn run_page(
    State(svc): State<Arc<Service>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    page(svc, session, Subject::Run(id)).await
}

/// `GET /ui/incidents/{id}/postmortem`.
pub(crate) async fn incident_page(
    State(svc): State<Arc<Service>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    page(svc, session, Subject::Incident(id)).await
}

/// `GET /ui/runs/{id}/postmortem.md`: the Markdown draft, as a file.
pub(crate) async fn run_markdown(
    State(svc): State<Arc<Service>>,
    _: Session,
    Path(id): Path<String>,
) -> Response {
    markdown_file(svc, Subject::Run(id)).await
}

/// `GET /ui/incidents/{id}/postmortem.md`: the Markdown draft, as a file.
pub(crate) async fn incident_markdown(
    State(svc): State<Arc<Service>>,
    _: Session,
    Path(id): Path<String>,
) -> Response {
    markdown_file(svc, Subject::Incident(id)).await
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn download_names_keep_only_safe_characters() {
        assert_eq!(
            file_name("postmortem", "checkout-1a2b", "md"),
            "postmortem-checkout-1a2b.md"
        );
        assert_eq!(
            file_name("drill", "a\"b/c\r\nd", "yaml"),
            "drill-a_b_c__d.yaml"
        );
    }
}
