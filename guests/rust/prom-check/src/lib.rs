//! `prom-check`: a verify-phase step that runs a PromQL instant query and
//! compares every series with a threshold, optionally for several
//! evaluations in a row ("error rate back to normal for a minute").
//!
//! The logic lives in [`check`] (pure, unit-tested on the host);
//! `medic_step::http` does the HTTP over wasi:http; this file waits between
//! evaluations and talks to the medic host.

mod check;

use std::time::Duration;

use check::{Params, Sample};
use medic_step::host::{self, Level};
use medic_step::http::{self, ErrorCode, Limits, Method, Request, SendError};
use medic_step::{Failure, Invocation, Outcome, Step};

/// Per-query limit, so a hung Prometheus fails the attempt (retryable) rather
/// than using up the step's whole timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// [`REQUEST_TIMEOUT`] to connect and for the first byte, and at most 4 MiB of
/// body kept: a query returning more series than that is not a health check;
/// the cap bounds guest memory.
const LIMITS: Limits = Limits::body(4 * 1024 * 1024).with_timeout(REQUEST_TIMEOUT);

struct PromCheck;

impl Step for PromCheck {
    type Params = check::Raw;
    const NAME: &'static str = "prom-check";
    const SUMMARY: &'static str =
        "Check a PromQL query against a threshold, optionally for several evaluations in a row";
    // Host and secret name both come from params: the workflow grants them.
    const PARAMS_SCHEMA: &'static str = check::PARAMS_SCHEMA;
    // A verify step retried many times would repeat its failure on the timeline, which
    // already shows every failed attempt with its message.
    const ANNOTATE_FAILURES: bool = false;

    async fn run(raw: check::Raw, _: &Invocation) -> Result<Outcome, Failure> {
        let params = Params::check(raw)?;
        evaluate_all(&params).await.map(Outcome::Done)
    }
}

medic_step::export_step!(PromCheck);

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
    let reply = http::send(&request, LIMITS)
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
        SendError::Http(code) if !matches!(code, ErrorCode::HttpRequestDenied) => {
            Failure::transient(format!("query to Prometheus at {base} failed: {code}"))
        }
        other => http::send_failure(other, "url", base),
    }
}
