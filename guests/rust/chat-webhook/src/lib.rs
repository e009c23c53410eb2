//! `chat-webhook`: a communicate-phase step that posts a message to a Slack-format incoming
//! webhook (Slack, and Mattermost and Rocket.Chat, which accept the same payload).
//!
//! The webhook URL is the credential, so it comes from a secret and is never logged, returned
//! or put in an error: only its host is. Parsing and payloads live in [`webhook`] (pure,
//! unit-tested on the host); [`guest_http`] does HTTP over wasi:http.

mod webhook;

use guest_http::{ErrorCode, Limits, Method, Request, SendError};
use serde_json::json;
use webhook::{Failure, Params};

wit_bindgen::generate!({
    path: "../../../wit/0.1.0",
    world: "medic:step/step-component",
    // The `wasip2` crate (also used by `wstd`) carries wasi:http bindings for
    // the same WASI 0.2.12: point ours at them instead of generating a copy.
    with: {
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
});

use exports::medic::step::step::{Guest, Invocation, Manifest, Outcome, StepError};
use medic::step::host;
use medic::step::types::{Capabilities, Level, RetryAfter};

struct ChatWebhook;

impl Guest for ChatWebhook {
    fn describe() -> Manifest {
        Manifest {
            name: "chat-webhook".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary:
                "Post a message to a Slack-format incoming webhook (Slack, Mattermost, Rocket.Chat)"
                    .into(),
            params_schema: webhook::PARAMS_SCHEMA.into(),
            // The secret is named in params and the host is in the secret: the workflow grants both.
            capabilities: Capabilities {
                hosts: Vec::new(),
                secrets: Vec::new(),
            },
        }
    }

    fn run(invocation: Invocation) -> Result<Outcome, StepError> {
        match Params::parse(&invocation.params).and_then(|p| post(&p)) {
            Ok(output) => Ok(Outcome::Done(output.to_string())),
            Err(failure) => {
                host::annotate(&format!("chat-webhook failed: {}", failure.message));
                match failure.retry_after_ms {
                    // The receiver said when to come back (429 Retry-After): wait exactly that.
                    Some(ms) if failure.retryable => Ok(Outcome::RetryAfter(RetryAfter {
                        ms,
                        reason: failure.message,
                    })),
                    _ => Err(StepError {
                        message: failure.message,
                        retryable: failure.retryable,
                    }),
                }
            }
        }
    }
}

fn post(params: &Params) -> Result<serde_json::Value, Failure> {
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
    let target = webhook::url_host(url).ok_or_else(|| {
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
    let reply = wstd::runtime::block_on(guest_http::send(
        &request,
        Limits::body(webhook::MAX_BODY_BYTES),
    ))
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

export!(ChatWebhook);
