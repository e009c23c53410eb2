//! `http-probe`: a verify-phase step that requests a URL and checks the answer
//! (status, latency, body text, a JSON value).
//!
//! The checks live in [`probe`], which is pure and unit-tested on the host;
//! [`client`] does the HTTP request over wasi:http; this file wires them to
//! the medic host (log, annotate).

mod client;
mod probe;

use std::time::{Duration, Instant};

use client::SendError;
use probe::{Failure, MAX_BODY_BYTES, Observed, Params};
use wasip2::http::types::ErrorCode;

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

struct HttpProbe;

impl Guest for HttpProbe {
    fn describe() -> Manifest {
        Manifest {
            name: "http-probe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Request a URL and check its status, latency, body text or a JSON value"
                .into(),
            params_schema: probe::PARAMS_SCHEMA.into(),
            // The host comes from the `url` param, so the workflow grants it.
            capabilities: Capabilities {
                hosts: Vec::new(),
                secrets: Vec::new(),
            },
        }
    }

    fn run(invocation: Invocation) -> Result<Outcome, StepError> {
        let result = Params::parse(&invocation.params).and_then(|params| {
            wstd::runtime::block_on(probe_once(&params, &invocation.idempotency_key))
        });
        match result {
            Ok(output) => Ok(Outcome::Done(output.to_string())),
            Err(failure) => {
                host::annotate(&format!("http-probe failed: {}", failure.message));
                Err(into_step_error(failure))
            }
        }
    }
}

fn into_step_error(failure: Failure) -> StepError {
    StepError {
        message: failure.message,
        retryable: failure.retryable,
    }
}

/// Sends the request, reads (a bounded prefix of) the body and runs the checks.
async fn probe_once(params: &Params, idempotency_key: &str) -> Result<serde_json::Value, Failure> {
    // The key is the same for every attempt of this step in this run, so the
    // provider can drop the duplicates our retries create.
    let idempotency = [("Idempotency-Key", idempotency_key)];
    let extra_headers: &[(&str, &str)] = if params.idempotency {
        &idempotency
    } else {
        &[]
    };
    // Past the budget the probe has failed anyway: do not wait for the host's
    // step timeout to find out.
    let timeout = params.latency_budget_ms.map(Duration::from_millis);

    let started = Instant::now();
    let reply = client::send(params, extra_headers, timeout, MAX_BODY_BYTES)
        .await
        .map_err(|e| send_failure(params, e))?;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    let line = probe::summary_line(params, reply.status, latency_ms);
    host::log(Level::Info, &line);
    let observed = Observed {
        status: reply.status,
        latency_ms,
        body: reply.body,
    };
    let output = probe::evaluate(params, &observed)?;
    host::annotate(&format!("http-probe ok: {line}"));
    Ok(output)
}

/// A request that got no response. Denial by the host's allow-list is final;
/// anything else (refused, reset, DNS, timeout) may clear up on a later attempt.
fn send_failure(params: &Params, error: SendError) -> Failure {
    let url = &params.url;
    match error {
        SendError::Invalid(failure) => failure,
        SendError::Http(ErrorCode::HttpRequestDenied) => Failure {
            message: format!("request to {url} denied: host not allowed for this step"),
            retryable: false,
        },
        SendError::Http(
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::HttpResponseTimeout,
        ) if params.latency_budget_ms.is_some() => Failure::check(format!(
            "no response from {url} within latency budget {} ms",
            params.latency_budget_ms.unwrap_or_default()
        )),
        SendError::Http(code) => Failure::check(format!("request to {url} failed: {code}")),
    }
}

export!(HttpProbe);
