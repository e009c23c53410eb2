//! `flags-unleash`: a restore-phase step that enables, disables or reads a
//! feature flag in one environment through the Unleash Admin API.
//!
//! It reads the flag first and changes it only when needed, so a retry or a
//! second run is a no-op success; the output and the timeline say exactly
//! what was seen and what changed. The logic lives in [`flag`] (pure,
//! unit-tested on the host); [`guest_http`] does the HTTP over wasi:http.

mod flag;

use std::time::Duration;

use flag::{Failure, Params};
use guest_http::{ErrorCode, Limits, Method, Request, SendError};

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
use medic::step::types::{Capabilities, Level};

/// Per-request limit: Unleash answers in milliseconds; a hung connection
/// should fail the attempt (retryable) well before the step's own timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// [`REQUEST_TIMEOUT`] to connect and for the first byte, and at most 1 MiB of
/// body kept: Unleash answers are small; this bounds guest memory if a wrong
/// URL serves something huge.
const LIMITS: Limits = Limits::body(1024 * 1024).with_timeout(REQUEST_TIMEOUT);

struct FlagsUnleash;

impl Guest for FlagsUnleash {
    fn describe() -> Manifest {
        Manifest {
            name: "flags-unleash".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Enable, disable or read an Unleash feature flag in one environment".into(),
            params_schema: flag::PARAMS_SCHEMA.into(),
            // Host and secret name both come from params: the workflow grants them.
            capabilities: Capabilities {
                hosts: Vec::new(),
                secrets: Vec::new(),
            },
        }
    }

    fn run(invocation: Invocation) -> Result<Outcome, StepError> {
        let result = Params::parse(&invocation.params)
            .and_then(|params| wstd::runtime::block_on(apply(&params)));
        match result {
            Ok(output) => Ok(Outcome::Done(output.to_string())),
            // No note here: the timeline already shows the failed attempt with this
            // message, and a verify step retried many times would repeat it.
            Err(failure) => Err(StepError {
                message: failure.message,
                retryable: failure.retryable,
            }),
        }
    }
}

/// Reads the flag, changes it if the action asks for another state, and reads
/// it back so `current` is what Unleash says, not what we hoped.
async fn apply(params: &Params) -> Result<serde_json::Value, Failure> {
    let token = host::secret(&params.token_secret).ok_or_else(|| {
        Failure::fatal(format!(
            "secret `{}` is not available: list it under the step's `secrets:` and configure it",
            params.token_secret
        ))
    })?;
    let previous = read_state(params, &token).await?;
    let current = match params.action.target() {
        Some(target) if target != previous => {
            toggle(params, &token, target).await?;
            let now = read_state(params, &token).await?;
            if now != target {
                // E.g. a change-request environment: Unleash accepted the call
                // but the flag did not move. Retrying will not help.
                return Err(Failure::fatal(format!(
                    "Unleash accepted the change but {} is still {}",
                    params.describe(),
                    if now { "enabled" } else { "disabled" }
                )));
            }
            now
        }
        _ => previous,
    };
    let line = flag::timeline_line(params, previous, current);
    host::log(Level::Info, &line);
    host::annotate(&line);
    Ok(flag::output(params, previous, current))
}

async fn read_state(params: &Params, token: &str) -> Result<bool, Failure> {
    let url = params.feature_url();
    let headers = [("authorization", token), ("accept", "application/json")];
    let request = Request {
        method: Method::Get,
        url: &url,
        headers: &headers,
        body: None,
    };
    let reply = guest_http::send(&request, LIMITS)
        .await
        .map_err(|e| send_failure(&url, e))?;
    if reply.status != 200 {
        return Err(flag::refusal(params, "read", reply.status, &reply.text()));
    }
    flag::enabled_in(params, &reply.text())
}

async fn toggle(params: &Params, token: &str, enabled: bool) -> Result<(), Failure> {
    let url = params.toggle_url(enabled);
    let headers = [("authorization", token), ("accept", "application/json")];
    let request = Request {
        method: Method::Post,
        url: &url,
        headers: &headers,
        body: Some(b""),
    };
    let reply = guest_http::send(&request, LIMITS)
        .await
        .map_err(|e| send_failure(&url, e))?;
    if !(200..300).contains(&reply.status) {
        let what = if enabled { "enable" } else { "disable" };
        return Err(flag::refusal(params, what, reply.status, &reply.text()));
    }
    Ok(())
}

/// A request that got no response. Denial by the host's allow-list is final;
/// anything else (refused, reset, DNS, timeout) may clear up on a later attempt.
fn send_failure(url: &str, error: SendError) -> Failure {
    match error {
        SendError::Invalid(message) => Failure::fatal(format!("param `url`: {message}: {url}")),
        SendError::Http(ErrorCode::HttpRequestDenied) => Failure::fatal(format!(
            "request to {url} denied: host not allowed for this step (add it to `allow:`)"
        )),
        SendError::Http(code) => Failure::transient(format!("request to {url} failed: {code}")),
    }
}

export!(FlagsUnleash);
