//! `prom-check`: a verify-phase step that runs a PromQL instant query and
//! compares every series with a threshold, optionally for several
//! evaluations in a row ("error rate back to normal for a minute").
//!
//! The logic lives in [`check`] (pure, unit-tested on the host); [`guest_http`]
//! does the HTTP over wasi:http; this file waits between evaluations and
//! talks to the medic host.

mod check;

use std::time::Duration;

use check::{Failure, Params, Sample};
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

/// Per-query limit, so a hung Prometheus fails the attempt (retryable) rather
/// than using up the step's whole timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// [`REQUEST_TIMEOUT`] to connect and for the first byte, and at most 4 MiB of
/// body kept: a query returning more series than that is not a health check;
/// the cap bounds guest memory.
const LIMITS: Limits = Limits::body(4 * 1024 * 1024).with_timeout(REQUEST_TIMEOUT);

struct PromCheck;

impl Guest for PromCheck {
    fn describe() -> Manifest {
        Manifest {
            name: "prom-check".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Check a PromQL query against a threshold, optionally for several evaluations in a row".into(),
            params_schema: check::PARAMS_SCHEMA.into(),
            // Host and secret name both come from params: the workflow grants them.
            capabilities: Capabilities {
                hosts: Vec::new(),
                secrets: Vec::new(),
            },
        }
    }

    fn run(invocation: Invocation) -> Result<Outcome, StepError> {
        let result = Params::parse(&invocation.params)
            .and_then(|params| wstd::runtime::block_on(evaluate_all(&params)));
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

/// Evaluates the query `consecutive` times, `interval_ms` apart, and stops at
/// the first evaluation that does not hold.
async fn evaluate_all(params: &Params) -> Result<serde_json::Value, Failure> {
    let token = match &params.token_secret {
        None => None,
        Some(name) => Some(host::secret(name).ok_or_else(|| {
            Failure::fatal(format!(
                "secret `{name}` is not available: list it under the step's `secrets:` and configure it"
            ))
        })?),
    };
    let mut evaluations: Vec<Vec<Sample>> = Vec::new();
    for evaluation in 1..=params.consecutive {
        if evaluation > 1 {
            // wasi:clocks timers: the host journals the clock reads, and the
            // wait itself is real time, bounded by the step's `timeout:`.
            wstd::task::sleep(Duration::from_millis(params.interval_ms).into()).await;
        }
        let samples = query(params, token.as_deref()).await?;
        let seen = check::describe_samples(&samples);
        host::log(
            Level::Info,
            &format!("evaluation {evaluation}: {} -> {seen}", params.query),
        );
        if !check::holds(params, &samples) {
            return Err(check::not_satisfied(params, evaluation, &samples));
        }
        evaluations.push(samples);
    }
    let times = match params.consecutive {
        1 => String::new(),
        n => format!(" for {n} evaluations {} ms apart", params.interval_ms),
    };
    let last = evaluations
        .last()
        .map_or_else(String::new, |s| check::describe_samples(s));
    host::annotate(&format!(
        "prom-check ok: {}{times} (last: {last})",
        params.condition()
    ));
    Ok(check::output(params, &evaluations))
}

async fn query(params: &Params, token: Option<&str>) -> Result<Vec<Sample>, Failure> {
    let url = params.query_url();
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("accept", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer.as_str()));
    }
    let request = Request {
        method: Method::Get,
        url: &url,
        headers: &headers,
        body: None,
    };
    let reply = guest_http::send(&request, LIMITS)
        .await
        .map_err(|e| send_failure(&params.url, e))?;
    if reply.status != 200 {
        return Err(check::refusal(params, reply.status, &reply.text()));
    }
    check::samples(&reply.text())
}

/// A request that got no response. Denial by the host's allow-list is final;
/// anything else (refused, reset, DNS, timeout) may clear up on a later attempt.
fn send_failure(base: &str, error: SendError) -> Failure {
    match error {
        SendError::Invalid(message) => Failure::fatal(format!("param `url`: {message}: {base}")),
        SendError::Http(ErrorCode::HttpRequestDenied) => Failure::fatal(format!(
            "request to {base} denied: host not allowed for this step (add it to `allow:`)"
        )),
        SendError::Http(code) => {
            Failure::transient(format!("query to Prometheus at {base} failed: {code}"))
        }
    }
}

export!(PromCheck);
