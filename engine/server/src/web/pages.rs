//! The runs list, an incident, and the approvals page.

use super::html;
use super::index::{self, Filter};
use super::session::{Session, urlencode};
use super::view::{self, Chrome, RunRow};
use crate::Service;
use crate::incident::IncidentRecord;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use medic_core::gates::may_decide;
use medic_core::{JournalStore, RunMeta, codec};
use serde::Deserialize;
use std::sync::Arc;

/// Runs per page: a phone screen or two.
const PAGE_SIZE: usize = 50;

/// Whether htmx (the live refresh) asked, so only the changing part is sent.
pub(crate) fn wants_fragment(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

fn store_error(e: impl std::fmt::Display) -> Response {
    let page = view::Message {
        title: "The store could not be read".into(),
        message: format!("{e}. The runs go on; reload in a moment."),
    };
    html(StatusCode::SERVICE_UNAVAILABLE, page.render())
}

pub(crate) fn row(meta: &RunMeta, incident: &str) -> RunRow {
    RunRow {
        id: meta.id.clone(),
        workflow: meta.workflow.clone(),
        status: meta.status.as_str().to_string(),
        incident: incident.to_string(),
        incident_title: meta.incident_title.clone(),
        created: view::when(meta.created_ms),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunsQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    incident: String,
    /// `YYYY-MM-DDTHH:MM` (UTC), as a `datetime-local` field sends it.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    drills: String,
    before: Option<String>,
}

/// `YYYY-MM-DDTHH:MM[:SS]` (UTC) to milliseconds since the epoch.
pub(crate) fn parse_utc(s: &str) -> Option<u64> {
    let s = s.trim();
    let (date, time) = s.split_once('T').unwrap_or((s, "00:00"));
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm) = (t.next()??, t.next()??);
    let ss = t.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 24 + hh) * 60 + mm) * 60 + ss)
        .ok()
        .map(|secs| secs * 1000)
}

fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// `GET /ui/runs`: newest first, filtered, one keyset page at a time.
pub(crate) async fn runs(
    State(svc): State<Arc<Service>>,
    session: Session,
    Query(q): Query<RunsQuery>,
    headers: HeaderMap,
) -> Response {
    let filter = Filter {
        status: nonempty(&q.status),
        workflow: nonempty(&q.workflow),
        incident: nonempty(&q.incident),
        from_ms: parse_utc(&q.from),
        to_ms: parse_utc(&q.to),
        drills: q.drills == "only",
    };
    let worker = svc.clone();
    let before = q.before.clone();
    let f = filter.clone();
    let page = tokio::task::spawn_blocking(move || {
        worker.web.ensure_indexed(&worker.store)?;
        index::page(&worker.store, &f, before.as_deref(), PAGE_SIZE)
    })
    .await;
    let page = match page {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return store_error(e),
        Err(e) => return store_error(e),
    };
    let shown = view::RunsFilter {
        status: q.status.clone(),
        workflow: q.workflow.clone(),
        incident: q.incident.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        drills: filter.drills,
    };
    let query = [
        ("status", &q.status),
        ("workflow", &q.workflow),
        ("incident", &q.incident),
        ("from", &q.from),
        ("to", &q.to),
        ("drills", &q.drills),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}={}", urlencode(v)))
    .collect::<Vec<_>>()
    .join("&");
    let fragment_url = match &q.before {
        Some(b) => format!("/ui/runs?{query}&before={}", urlencode(b)),
        None => format!("/ui/runs?{query}"),
    };
    let list = view::RunsList {
        rows: page
            .rows
            .iter()
            .map(|r| row(&r.meta, &r.incident))
            .collect(),
        filter: shown,
        query,
        older: page.older,
        is_first: q.before.is_none(),
        scan_limited: page.scan_limited,
        fragment_url,
    };
    if wants_fragment(&headers) {
        return html(StatusCode::OK, view::RunsFragment { list }.render());
    }
    let mut workflows: Vec<String> = svc
        .workflows
        .iter()
        .map(|w| w.workflow.name.clone())
        .collect();
    workflows.sort();
    workflows.dedup();
    let page = view::RunsPage {
        chrome: Chrome {
            user: session.user,
            csrf: session.csrf,
            section: "runs",
        },
        list,
        workflows,
    };
    html(StatusCode::OK, page.render())
}

/// `GET /ui/incidents/{id}`: the incident's current occurrence and its runs.
pub(crate) async fn incident(
    State(svc): State<Arc<Service>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let worker = svc.clone();
    let key = [IncidentRecord::PREFIX, id.as_bytes()].concat();
    let found = tokio::task::spawn_blocking(move || {
        let Some(raw) = worker.store.get(&key)? else {
            return Ok(None);
        };
        let rec: IncidentRecord =
            codec::decode(&raw).map_err(|e| medic_core::StoreError::Corrupt {
                path: "incident".into(),
                key: String::from_utf8_lossy(&key).into_owned(),
                source: e,
            })?;
        let mut runs = Vec::new();
        for r in &rec.runs {
            if let Some(m) = worker.store.run(r)? {
                runs.push(row(&m, &rec.fingerprint));
            }
        }
        Ok::<_, medic_core::StoreError>(Some((rec, runs)))
    })
    .await;
    let (rec, runs) = match found {
        Ok(Ok(Some(x))) => x,
        Ok(Ok(None)) => {
            let page = view::Message {
                title: "No such incident".into(),
                message: format!("medic has no incident with id {id}."),
            };
            return html(StatusCode::NOT_FOUND, page.render());
        }
        Ok(Err(e)) => return store_error(e),
        Err(e) => return store_error(e),
    };
    let i = &rec.incident;
    let page = view::IncidentPage {
        chrome: Chrome {
            user: session.user,
            csrf: session.csrf,
            section: "runs",
        },
        id: rec.fingerprint.clone(),
        title: i.title.clone(),
        severity: i.severity.clone(),
        status: i.status.as_str().to_string(),
        source: i.source.clone(),
        occurrence: rec.generation + 1,
        first_seen: view::when(rec.first_seen_ms),
        last_seen: view::when(rec.last_seen_ms),
        resolved: rec.resolved_ms.map(view::when),
        alerts: rec.alerts,
        labels: i
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        runs,
    };
    html(StatusCode::OK, page.render())
}

/// `GET /ui/approvals`: every gate waiting for people, soonest deadline first.
pub(crate) async fn approvals(
    State(svc): State<Arc<Service>>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let gates = svc
        .web
        .waiting_gates()
        .into_iter()
        .map(|g| view::WaitingView {
            may_decide: may_decide(&g.approvers, &session.user),
            approvers: if g.approvers.is_empty() {
                "anyone signed in".into()
            } else {
                g.approvers.join(", ")
            },
            deadline: view::when(g.deadline_ms),
            on_deadline: g.on_deadline.past().to_string(),
            run: g.run,
            step: g.step,
            workflow: g.workflow,
            incident_title: g.incident_title,
            prompt: g.prompt,
            deadline_ms: g.deadline_ms,
        })
        .collect();
    let body = view::ApprovalsBody {
        gates,
        csrf: session.csrf.clone(),
    };
    if wants_fragment(&headers) {
        return html(StatusCode::OK, view::ApprovalsFragment { body }.render());
    }
    let page = view::ApprovalsPage {
        chrome: Chrome {
            user: session.user,
            csrf: session.csrf,
            section: "approvals",
        },
        body,
    };
    html(StatusCode::OK, page.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_parse_like_datetime_local_fields() {
        assert_eq!(parse_utc("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_utc("2026-11-30T03:12"), Some(1_796_008_320_000));
        assert_eq!(
            parse_utc("2026-02-30T03:12:07").map(|m| m % 60_000),
            Some(7_000)
        );
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(parse_utc("2026-13-01T00:00"), None);
    }
}
