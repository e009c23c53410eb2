//! `http-probe`: a verify-phase step that requests a URL and checks the answer
//! (status, latency, body text, a JSON value).
//!
//! The checks live in [`probe`], which is pure and unit-tested on the host;
//! `medic_step::http` does the HTTP request over wasi:http; this file wires
//! them to the medic host (log, annotate).

mod probe;

use std::time::{Duration, Instant};

use medic_step::host::{self, Level};
use medic_step::http::{self, ErrorCode, Limits, Request, SendError};
use medic_step::{Failure, Invocation, Outcome, Step};
use probe::{MAX_BODY_BYTES, Observed, Params};

struct HttpProbe;

impl Step for HttpProbe {
    type Params = probe::Raw;
    const NAME: &'static str = "http-probe";
    const SUMMARY: &'static str =
        "Request a URL and check its status, latency, body text or a JSON value";
    // The host comes from the `url` param, so the workflow grants it.
    const PARAMS_SCHEMA: &'static str = probe::PARAMS_SCHEMA;

    async fn run(raw: probe::Raw, invocation: &Invocation) -> Result<Outcome, Failure> {
        let params = Params::check(raw)?;
        probe_once(&params, &invocation.idempotency_key)
            .await
            .map(Outcome::Done)
    }
}

medic_step::export_step!(HttpProbe);

/// Sends the request, reads (a bounded prefix of) the body and runs the checks.
async fn probe_once(params: &Params, idempotency_key: &str) -> Result<serde_json::Value, Failure> {
    // The key is the same for every attempt of this step in this run, so the
    // provider can drop the duplicates our retries create.
    let mut headers: Vec<(&str, &str)> = params
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    if params.idempotency {
        headers.push(("Idempotency-Key", idempotency_key));
    }
    // Without a length the host streams the body chunked, which simple servers ignore
    // (they read an empty body) and some refuse (411): a POST, PUT or PATCH always has one.
    let sends_body =
        params.body.is_some() || matches!(params.method.as_str(), "POST" | "PUT" | "PATCH");
    let request = Request {
        method: http::method(&params.method),
        url: &params.url,
        headers: &headers,
        body: sends_body.then(|| params.body.as_deref().unwrap_or_default().as_bytes()),
    };
    // Past the budget the probe has failed anyway: do not wait for the host's
    // step timeout to find out.
    let limits = match params.latency_budget_ms {
        Some(ms) => Limits::body(MAX_BODY_BYTES).with_timeout(Duration::from_millis(ms)),
        None => Limits::body(MAX_BODY_BYTES),
    };

    let started = Instant::now();
    let reply = http::send(&request, limits)
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
        SendError::Invalid(why) => Failure::fatal(format!("param `url`: {why}: {url}")),
        SendError::Http(ErrorCode::HttpRequestDenied) => Failure::fatal(format!(
            "request to {url} denied: host not allowed for this step"
        )),
        SendError::Http(
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::HttpResponseTimeout,
        ) if params.latency_budget_ms.is_some() => Failure::transient(format!(
            "no response from {url} within latency budget {} ms",
            params.latency_budget_ms.unwrap_or_default()
        )),
        SendError::Http(code) => Failure::transient(format!("request to {url} failed: {code}")),
    }
}
