//! `chat-webhook`: a communicate-phase step that posts a message to a Slack-format incoming
//! webhook (Slack, and Mattermost and Rocket.Chat, which accept the same payload).
//!
//! The webhook URL is the credential, so it comes from a secret and is never logged, returned
//! or put in an error: only its host is. Parsing and payloads live in [`webhook`] (pure,
//! unit-tested on the host); `medic_step::http` does HTTP over wasi:http.

mod webhook;

use medic_step::host::{self, Level};
use medic_step::http::{self, ErrorCode, Limits, Method, Request, SendError};
use medic_step::{Failure, Invocation, Outcome, Step};
use serde_json::json;
use webhook::Params;

struct ChatWebhook;

impl Step for ChatWebhook {
    type Params = webhook::Raw;
    const NAME: &'static str = "chat-webhook";
    const SUMMARY: &'static str =
        "Post a message to a Slack-format incoming webhook (Slack, Mattermost, Rocket.Chat)";
    // The secret is named in params and the host is in the secret: the workflow grants both.
    const PARAMS_SCHEMA: &'static str = webhook::PARAMS_SCHEMA;

    async fn run(raw: webhook::Raw, _: &Invocation) -> Result<Outcome, Failure> {
        let params = Params::check(raw)?;
        post(&params).await.map(Outcome::Done)
    }
}

medic_step::export_step!(ChatWebhook);

async fn post(params: &Params) -> Result<serde_json::Value, Failure> {
    let secret = &params.url_secret;
    let url = host::secret(secret).ok_or_else(|| {
        Failure::fatal(format!(
            "secret `{secret}` (param `url_secret`) is not available: list it in the step's \
             `secrets:` and configure it"
        ))
    })?;
    // Used exactly as stored: the host redacts the secret's exact value from the HTTP calls it
    // journals, so a trimmed copy could slip past it.
    if url.trim() != url {
        return Err(Failure::fatal(format!(
            "secret `{secret}` has leading or trailing whitespace (a newline?): store the webhook URL alone"
        )));
    }
    let url = url.as_str();
    let target = medic_step::url::host(url).ok_or_else(|| {
        Failure::fatal(format!(
            "secret `{secret}` does not hold an http:// or https:// webhook URL"
        ))
    })?;
    let body = params.payload().to_string();
    let headers = [("content-type", "application/json")];
    let request = Request {
        method: Method::Post,
        url,
        headers: &headers,
        body: Some(body.as_bytes()),
    };
    let reply = http::send(&request, Limits::body(webhook::MAX_BODY_BYTES))
        .await
        .map_err(|e| send_failure(secret, target, e))?;
    if !(200..300).contains(&reply.status) {
        return Err(webhook::refusal(
            target,
            reply.status,
            &reply.body,
            reply.retry_after.as_deref(),
        ));
    }
    let answer = String::from_utf8_lossy(&reply.body).trim().to_owned();
    host::log(
        Level::Info,
        &format!("webhook at {target} answered {}", reply.status),
    );
    host::annotate(&format!("chat-webhook: posted via {target}"));
    Ok(json!({"status": reply.status, "response": answer}))
}

/// A request that got no answer. Only the host is named: the rest of the URL is the key.
fn send_failure(secret: &str, target: &str, error: SendError) -> Failure {
    match error {
        SendError::Invalid(why) => Failure::fatal(format!(
            "secret `{secret}` does not hold a usable webhook URL: {why}"
        )),
        SendError::Http(ErrorCode::HttpRequestDenied) => Failure::fatal(format!(
            "request to the webhook at {target} denied: add `{target}` to this step's `allow:` list"
        )),
        SendError::Http(code) => {
            Failure::transient(format!("request to the webhook at {target} failed: {code}"))
        }
    }
}
