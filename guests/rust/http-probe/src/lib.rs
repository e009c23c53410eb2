//! `http-probe`: a verify-phase step that requests a URL and checks the answer
//! (status, latency, body text, a JSON value).
//!
//! The checks live in [`probe`], which is pure and unit-tested on the host;
//! this file does the HTTP request (wasi:http through `wstd`) and talks to the
//! medic host (log, annotate).

mod probe;

use std::time::Instant;

use probe::{Failure, MAX_BODY_BYTES, Observed, Params};
use wstd::http::body::util::BodyExt as _;
use wstd::http::{Body, Client, ErrorCode, HeaderName, HeaderValue, Method, Request, Uri};

wit_bindgen::generate!({
    path: "../../../wit/0.1.0",
    world: "medic:step/step-component",
    // `wstd` already carries wasi:http bindings (from the `wasip2` crate, same
    // WASI 0.2.12): point ours at them instead of generating a second copy.
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
        let params = Params::parse(&invocation.params).map_err(into_step_error)?;
        let result = wstd::runtime::block_on(probe_once(&params, &invocation.idempotency_key));
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
    let request = build_request(params, idempotency_key)?;
    let mut client = Client::new();
    if let Some(budget) = params.latency_budget_ms {
        // Past the budget the probe has failed anyway: do not wait for the
        // host's step timeout to find out.
        let budget = std::time::Duration::from_millis(budget);
        client.set_connect_timeout(budget);
        client.set_first_byte_timeout(budget);
    }

    let started = Instant::now();
    let response = client
        .send(request)
        .await
        .map_err(|e| connection_failure(params, &e))?;
    let status = response.status().as_u16();
    let body = read_body(response.into_body(), &params.url).await?;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    let line = probe::summary_line(params, status, latency_ms);
    host::log(Level::Info, &line);
    let output = probe::evaluate(
        params,
        &Observed {
            status,
            latency_ms,
            body,
        },
    )?;
    host::annotate(&format!("http-probe ok: {line}"));
    Ok(output)
}

fn build_request(params: &Params, idempotency_key: &str) -> Result<Request<Body>, Failure> {
    let uri: Uri = params.url.parse().map_err(|e| {
        Failure::param(format!(
            "param `url` is not a valid URL ({e}): {}",
            params.url
        ))
    })?;
    let method = Method::from_bytes(params.method.as_bytes())
        .map_err(|e| Failure::param(format!("param `method`: {e}")))?;
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in &params.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
            Failure::param(format!("param `headers.{name}`: bad header name ({e})"))
        })?;
        let header_value = HeaderValue::from_str(value).map_err(|e| {
            Failure::param(format!("param `headers.{name}`: bad header value ({e})"))
        })?;
        builder = builder.header(header_name, header_value);
    }
    if params.idempotency {
        // The key is the same for every attempt of this step in this run, so
        // the provider can drop the duplicates our retries create.
        builder = builder.header("Idempotency-Key", idempotency_key);
    }
    let body = params.body.clone().map_or_else(Body::empty, Body::from);
    builder
        .body(body)
        .map_err(|e| Failure::param(format!("cannot build the request: {e}")))
}

/// A request that got no response. Denial by the host's allow-list is final;
/// anything else (refused, reset, DNS, timeout) may clear up on a later attempt.
fn connection_failure(params: &Params, error: &wstd::http::Error) -> Failure {
    let url = &params.url;
    match error.downcast_ref::<ErrorCode>() {
        Some(ErrorCode::HttpRequestDenied) => Failure {
            message: format!("request to {url} denied: host not allowed for this step"),
            retryable: false,
        },
        Some(ErrorCode::ConnectionTimeout | ErrorCode::HttpResponseTimeout) => {
            let budget = params.latency_budget_ms.unwrap_or_default();
            Failure::check(format!(
                "no response from {url} within latency budget {budget} ms"
            ))
        }
        _ => Failure::check(format!("request to {url} failed: {error:#}")),
    }
}

/// Reads at most [`MAX_BODY_BYTES`]: checks need a prefix, not a whole download.
async fn read_body(body: Body, url: &str) -> Result<Vec<u8>, Failure> {
    let mut body = body.into_boxed_body();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| Failure::check(format!("reading the body from {url} failed: {e:#}")))?;
        if let Ok(data) = frame.into_data() {
            let room = MAX_BODY_BYTES - bytes.len();
            bytes.extend_from_slice(&data[..data.len().min(room)]);
            if bytes.len() == MAX_BODY_BYTES {
                break;
            }
        }
    }
    Ok(bytes)
}

export!(HttpProbe);
