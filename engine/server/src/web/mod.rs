//! The web view for the person on call, served by `medic serve` under `/ui`.
//!
//! Server-rendered HTML (askama templates under `engine/server/templates/web/`, escaped
//! by default) with htmx shipped inside the binary (`assets/`): every page and every
//! action works with JavaScript off; with it on, pages update themselves as the journal
//! grows, over Server-Sent Events, and fall back to polling, saying so, when the stream
//! drops.
//!
//! | page | what |
//! |---|---|
//! | `/ui/signin` | paste a personal token from `[users]`: a session cookie |
//! | `/ui/runs` | runs, newest first, filtered, in keyset pages |
//! | `/ui/runs/{id}` | a run: its open gate first, then steps with their calls |
//! | `/ui/incidents/{id}` | an incident, its occurrence and its runs |
//! | `/ui/approvals` | every waiting gate, soonest deadline first |
//! | `/ui/runs/{id}/postmortem`, `/ui/incidents/{id}/postmortem` | the postmortem draft, its picture, a Markdown download |
//! | `POST /ui/runs/{id}/drill`, `…/drill/run` | the run as a drill file; replayed against today's workflows |
//!
//! It is a module of the server rather than its own crate because it is the service
//! seen through a browser: it reads the same store, posts gate decisions through the
//! same check as the API, authenticates against the same `[users]`, and learns of
//! appends from the engine hooks the service installs. As a crate it would need either
//! the server (which nests it, a cycle) or a copy of the service's state behind a trait.
//!
//! ```no_run
//! # async fn demo(svc: std::sync::Arc<medic_server::Service>) {
//! // `medic_server::router` already nests the web view under /ui.
//! let app = medic_server::router(svc);
//! # let _ = app;
//! # }
//! ```

mod assets;
mod cache;
mod drill;
mod index;
mod live;
mod pages;
mod postmortem;
mod run;
mod session;
mod view;

pub(crate) use index::key as index_key;
pub(crate) use index::op as index_op;
pub(crate) use live::Live;

use crate::Service;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use session::{COOKIE, SIGNIN_COOKIE, Session, set_cookie};
use std::sync::Arc;

/// The web view's routes, relative to `/ui`.
pub(crate) fn router() -> Router<Arc<Service>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/runs") }))
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(run::page))
        .route("/runs/{id}/events", get(live::run_events))
        .route("/runs/{id}/steps/{step}/{what}", get(run::whole))
        .route("/runs/{id}/gates/{step}", post(run::decide))
        .route("/runs/{id}/postmortem", get(postmortem::run_page))
        .route("/runs/{id}/postmortem.md", get(postmortem::run_markdown))
        .route("/runs/{id}/drill", post(drill::record_file))
        .route("/runs/{id}/drill/run", post(drill::run))
        .route("/incidents/{id}", get(pages::incident))
        .route("/incidents/{id}/postmortem", get(postmortem::incident_page))
        .route(
            "/incidents/{id}/postmortem.md",
            get(postmortem::incident_markdown),
        )
        .route("/approvals", get(pages::approvals))
        .route("/events", get(live::all_events))
        .route("/assets/{file}", get(assets::serve))
}

/// An HTML answer; templates never fail on data, so a render error is a bug shown
/// plainly rather than a blank page.
/// A page that only says `title` and `message` (a run not found, a refusal), with `status`.
pub(crate) fn message(status: StatusCode, title: &str, message: String) -> Response {
    let page = view::Message {
        title: title.into(),
        message,
    };
    html(status, askama::Template::render(&page))
}

pub(crate) fn html(status: StatusCode, rendered: Result<String, askama::Error>) -> Response {
    match rendered {
        Ok(body) => {
            let mut r = (status, Html(body)).into_response();
            // Pages hold run details: never cached by a shared proxy, never framed.
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            r.headers_mut()
                .insert("x-frame-options", header::HeaderValue::from_static("DENY"));
            r
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("medic could not render this page: {e}"),
        )
            .into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct SigninQuery {
    next: Option<String>,
    /// Set on the page's own same-site reload (see `signin_page`).
    again: Option<String>,
}

/// Only pages of the web view are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/ui/runs")
        .to_string()
}

async fn signin_page(
    State(svc): State<Arc<Service>>,
    Query(q): Query<SigninQuery>,
    headers: HeaderMap,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if Session::find(&svc, &headers).is_some() {
        return Redirect::to(&next).into_response();
    }
    // A link from a chat is a cross-site navigation, which carries no SameSite=Strict
    // cookie: reload once from this page (same-site) so a signed-in person goes straight on.
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let reload = (cross_site && q.again.is_none())
        .then(|| format!("/ui/signin?again=1&next={}", session::urlencode(&next)));
    signin_form(&headers, &next, reload, None, StatusCode::OK)
}

fn signin_form(
    headers: &HeaderMap,
    next: &str,
    reload: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let csrf = session::random_hex(32);
    let page = view::SigninPage {
        next: next.to_string(),
        csrf: csrf.clone(),
        reload,
        error,
    };
    let mut r = html(status, askama::Template::render(&page));
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(headers, SIGNIN_COOKIE, &csrf, 3600),
    );
    r
}

#[derive(Debug, Deserialize)]
struct SigninForm {
    token: String,
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

async fn signin(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let expected = session::cookie(&headers, SIGNIN_COOKIE);
    let csrf_ok = matches!((expected, form.csrf.as_deref()), (Some(a), Some(b)) if session::same_secret(a, b));
    if !csrf_ok {
        return signin_form(
            &headers,
            &next,
            None,
            Some("This form expired or did not come from medic. Paste your token again.".into()),
            StatusCode::FORBIDDEN,
        );
    }
    let worker = svc.clone();
    let token = form.token;
    let started = tokio::task::spawn_blocking(move || Session::start(&worker, &token)).await;
    match started {
        Ok(Ok(Some(id))) => {
            let mut r = Redirect::to(&next).into_response();
            let ttl_s = session::SESSION_TTL_MS / 1000;
            r.headers_mut()
                .append(header::SET_COOKIE, set_cookie(&headers, COOKIE, &id, ttl_s));
            r.headers_mut()
                .append(header::SET_COOKIE, set_cookie(&headers, SIGNIN_COOKIE, "", 0));
            r
        }
        Ok(Ok(None)) => signin_form(
            &headers,
            &next,
            None,
            Some("That is not a personal token. Use yours from [users] in medic.toml (service tokens cannot sign in).".into()),
            StatusCode::UNAUTHORIZED,
        ),
        Ok(Err(e)) => signin_form(
            &headers,
            &next,
            None,
            Some(format!("medic could not store the session: {e}")),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Err(e) => signin_form(
            &headers,
            &next,
            None,
            Some(format!("sign-in failed: {e}")),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub csrf: Option<String>,
}

async fn signout(
    State(svc): State<Arc<Service>>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !session.csrf_ok(form.csrf.as_deref()) {
        return csrf_refused();
    }
    let worker = svc.clone();
    let s = session.clone();
    let _ = tokio::task::spawn_blocking(move || s.end(&worker)).await;
    let mut r = Redirect::to("/ui/signin").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&headers, COOKIE, "", 0));
    r
}

/// A POST without this session's CSRF token: refused, with what to do.
pub(crate) fn csrf_refused() -> Response {
    let page = view::Message {
        title: "Form refused".into(),
        message: "This form did not carry a valid token (it is older than your session, or it did not come from medic). Nothing was changed: go back, reload the page and try again.".into(),
    };
    html(StatusCode::FORBIDDEN, askama::Template::render(&page))
}
