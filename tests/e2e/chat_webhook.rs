//! The chat-webhook step against a local receiver that behaves like Slack's incoming
//! webhooks: it checks the documented payload shape and answers `ok` or a short error code.
//! The webhook URL (the credential) never reaches the journal, even when the step fails.

use crate::support::{Ran, incident};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medic_core::{Event, FailureKind, RunStatus};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// The key in the path of the receiver's one valid webhook URL.
const KEY: &str = "T0MEDIC/B0CHAT/s3cr3tWebhookKey42";

#[derive(Default)]
struct Inbox {
    /// Accepted payloads, with their content type.
    accepted: Mutex<Vec<(String, Value)>>,
    /// Canned answers given before behaving normally: (status, Retry-After, body).
    outages: Mutex<VecDeque<(u16, Option<&'static str>, &'static str)>>,
}

/// A Slack-like incoming-webhook receiver on a free 127.0.0.1 port; stopped on drop.
struct Receiver {
    port: u16,
    inbox: Arc<Inbox>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let inbox = Arc::new(Inbox::default());
        let app = axum::Router::new()
            .route("/services/{*key}", axum::routing::post(hook))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { port, inbox, task }
    }

    /// The webhook URL, as an operator would store it in the secret.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/services/{KEY}", self.port)
    }

    fn accepted(&self) -> Vec<(String, Value)> {
        self.inbox.accepted.lock().unwrap().clone()
    }

    fn fail_next(&self, status: u16, retry_after: Option<&'static str>, body: &'static str) {
        let mut outages = self.inbox.outages.lock().unwrap();
        outages.push_back((status, retry_after, body));
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn text(status: u16, body: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (
        status,
        [(header::CONTENT_TYPE, "text/plain")],
        body.to_string(),
    )
        .into_response()
}

/// Answers like Slack: 404 `no_service` for an unknown URL, 400 `invalid_payload` for a
/// payload not in the documented shape, `ok` otherwise.
async fn hook(
    State(inbox): State<Arc<Inbox>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if key != KEY {
        return text(404, "no_service");
    }
    let outage = inbox.outages.lock().unwrap().pop_front();
    if let Some((status, retry_after, body)) = outage {
        let mut response = text(status, body);
        if let Some(seconds) = retry_after {
            let value = HeaderValue::from_static(seconds);
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    match serde_json::from_slice::<Value>(&body) {
        Ok(payload) if ctype.starts_with("application/json") && valid(&payload) => {
            inbox.accepted.lock().unwrap().push((ctype, payload));
            text(200, "ok")
        }
        _ => text(400, "invalid_payload"),
    }
}

/// The incoming-webhook payload shape: a JSON object with a string `text` and/or a list of
/// blocks, each an object with a `type`; a `section` block needs `text` or `fields`.
fn valid(payload: &Value) -> bool {
    let Some(object) = payload.as_object() else {
        return false;
    };
    // None: absent; Some(ok): present, and whether it is well formed.
    let text_ok = object
        .get("text")
        .map(|t| t.as_str().is_some_and(|t| !t.is_empty()));
    let blocks_ok = object.get("blocks").map(|blocks| {
        blocks.as_array().is_some_and(|blocks| {
            blocks.iter().all(|b| match b["type"].as_str() {
                Some("section") => b.get("text").is_some() || b.get("fields").is_some(),
                Some(_) => true,
                None => false,
            })
        })
    });
    let strings = ["username", "icon_emoji"]
        .iter()
        .all(|k| object.get(*k).is_none_or(Value::is_string));
    match (text_ok, blocks_ok) {
        (None, None) => false,
        (t, b) => t != Some(false) && b != Some(false) && strings,
    }
}

fn yaml(with: Value, extra: &str) -> String {
    format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: webhook\nsteps:\n  - id: announce\n    phase: communicate\n    uses: chat-webhook\n    with: {with}\n    secrets: [CHAT_WEBHOOK]\n{extra}"
    )
}

/// Runs a one-step workflow with `url` as the CHAT_WEBHOOK secret.
async fn run(url: &str, with: Value, extra: &str) -> Ran {
    crate::support::run(&yaml(with, extra), &[("CHAT_WEBHOOK", url)]).await
}

fn assert_no_credential(journal: &str) {
    assert!(
        !journal.contains("s3cr3tWebhookKey42"),
        "webhook key in the journal: {journal}"
    );
    assert!(
        !journal.contains("/services/"),
        "webhook path in the journal: {journal}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn posts_the_slack_payload_and_keeps_the_url_out_of_the_journal() {
    let receiver = Receiver::start().await;
    let blocks = json!([
        {"type": "header", "text": {"type": "plain_text", "text": "Checkout incident"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*{{ incident.severity }}*: {{ incident.title }}"}}
    ]);
    let with = json!({"url_secret": "CHAT_WEBHOOK", "text": "Investigating {{ incident.title }}",
        "blocks": blocks, "username": "medic", "icon_emoji": ":rotating_light:"});
    let ran = run(&receiver.url(), with, "    allow: [127.0.0.1]\n").await;
    let journal = ran.journal();
    let (status, state) = (ran.status, ran.state);
    assert_eq!(status, RunStatus::Succeeded, "{:?}", state.reason);

    let incident = incident();
    let (title, severity) = (incident.title, incident.severity);
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let (ctype, payload) = &accepted[0];
    assert_eq!(ctype, "application/json");
    assert_eq!(
        payload,
        &json!({"text": format!("Investigating {title}"),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Checkout incident"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{severity}*: {title}")}}
            ],
            "username": "medic", "icon_emoji": ":rotating_light:"})
    );
    assert_eq!(
        state.steps["announce"].output,
        Some(json!({"status": 200, "response": "ok"}))
    );
    assert_no_credential(&journal);
    // The timeline names where it posted: the host, not the URL.
    assert!(
        journal.contains(&format!(
            "chat-webhook: posted via 127.0.0.1:{}",
            receiver.port
        )),
        "{journal}"
    );
}

/// 4xx answers fail the step at once with the receiver's reason; 5xx is retried; 429's
/// Retry-After is honoured. No message names the URL.
#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_clear_and_only_server_trouble_is_retried() {
    let receiver = Receiver::start().await;
    let host = format!("127.0.0.1:{}", receiver.port);
    let allow = "    allow: [127.0.0.1]\n    retry: { attempts: 3, backoff: 10ms }\n";
    let text = json!({"url_secret": "CHAT_WEBHOOK", "text": "hello"});

    // A section block without text: the receiver says invalid_payload; not retried.
    let bad = json!({"url_secret": "CHAT_WEBHOOK", "blocks": [{"type": "section"}]});
    let ran = run(&receiver.url(), bad, allow).await;
    let journal = ran.journal();
    let (status, state) = (ran.status, ran.state);
    assert_eq!(status, RunStatus::Failed);
    let reason = state.reason.clone().unwrap();
    let want = format!("webhook at {host} answered 400 invalid_payload");
    assert!(reason.contains(&want), "{reason}");
    assert_eq!(state.steps["announce"].attempt, 1);
    assert_no_credential(&journal);

    // A revoked or mistyped URL: 404 no_service.
    let wrong = receiver.url().replace("Key42", "Key43");
    let ran = run(&wrong, text.clone(), allow).await;
    let journal = ran.journal();
    let (status, state) = (ran.status, ran.state);
    assert_eq!(status, RunStatus::Failed);
    let reason = state.reason.clone().unwrap();
    assert!(
        reason.contains(&format!("webhook at {host} answered 404 no_service")),
        "{reason}"
    );
    assert_eq!(state.steps["announce"].attempt, 1);
    assert!(!journal.contains("Key43"), "{journal}");

    // A host the workflow does not grant: refused by medic, named in the error.
    let denied = "    allow: [hooks.slack.com]\n";
    let ran = run(&receiver.url(), text.clone(), denied).await;
    let journal = ran.journal();
    let (status, state) = (ran.status, ran.state);
    assert_eq!(status, RunStatus::Failed);
    let reason = state.reason.clone().unwrap();
    assert!(reason.contains("host not allowed: 127.0.0.1"), "{reason}");
    let hint = format!("add `{host}` to this step's `allow:` list");
    assert!(
        journal.contains(&hint),
        "the step's explanation on the timeline: {journal}"
    );
    assert_no_credential(&journal);
    assert!(receiver.accepted().is_empty());

    // A 503, then a 429 asking for 1 s, then success: three attempts, one message.
    receiver.fail_next(503, None, "service_unavailable");
    receiver.fail_next(429, Some("1"), "rate_limited");
    let ran = run(&receiver.url(), text, allow).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    assert_eq!(ran.state.steps["announce"].attempt, 3);
    assert_eq!(receiver.accepted().len(), 1);
    let failures: Vec<(u64, FailureKind, &str)> = ran
        .entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::AttemptFailed { failure, .. } => {
                Some((e.at_ms, failure.kind, failure.message.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    let want = format!("webhook at {host} answered 503 service_unavailable");
    assert!(failures[0].2.contains(&want), "{failures:?}");
    assert_eq!(
        failures[1].1,
        FailureKind::NotReady,
        "429 waits as the receiver asked"
    );
    assert!(
        failures[1].2.contains("answered 429 rate_limited"),
        "{failures:?}"
    );
    let third = ran
        .entries
        .iter()
        .find(|e| matches!(e.event, Event::AttemptStarted { attempt: 3, .. }));
    let waited = third.expect("attempt 3 started").at_ms - failures[1].0;
    assert!(
        waited >= 1000,
        "attempt 3 started {waited} ms after the 429 asked for 1 s"
    );
    assert_no_credential(&ran.journal());
}

#[test]
fn the_docs_examples_validate() {
    let (ok, report) =
        crate::harness::docs::validate_doc_snippets("docs/providers/chat-webhook.md");
    assert!(ok, "{report}");
}
