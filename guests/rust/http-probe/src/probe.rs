//! The probe's pure logic: parameter parsing and the checks on a response.
//!
//! Nothing here touches WIT bindings or WASI, so it compiles and is unit-tested
//! on the host target (`cargo test -p http-probe`); `lib.rs` does the I/O.

use std::collections::BTreeMap;

use medic_step::Failure;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// JSON Schema (draft 2020-12) of the `with:` parameters. `medic validate`
/// checks workflows against it; [`Params::check`] enforces the same rules at
/// run time, because a template can still produce a bad value.
pub const PARAMS_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "http-probe params",
  "type": "object",
  "properties": {
    "url": {
      "type": "string",
      "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#]+",
      "description": "http:// or https:// URL to request"
    },
    "method": {
      "type": "string",
      "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
      "default": "GET"
    },
    "headers": {
      "type": "object",
      "additionalProperties": {"type": "string"},
      "description": "Extra request headers"
    },
    "body": {"type": "string", "description": "Request body"},
    "expect_status": {
      "description": "Acceptable status code(s)",
      "default": 200,
      "oneOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {
          "type": "array",
          "items": {"type": "integer", "minimum": 100, "maximum": 599},
          "minItems": 1
        }
      ]
    },
    "body_contains": {"type": "string", "description": "Substring the response body must contain"},
    "json_pointer": {
      "type": "string",
      "pattern": "^(/.*)?$",
      "description": "RFC 6901 pointer into the JSON response body"
    },
    "json_equals": {"description": "Expected JSON value at json_pointer"},
    "latency_budget_ms": {"type": "integer", "minimum": 1, "description": "Fail when the probe takes longer"},
    "idempotency": {
      "type": "boolean",
      "default": false,
      "description": "Send Idempotency-Key: <invocation idempotency key>"
    }
  },
  "required": ["url"],
  "dependentRequired": {"json_equals": ["json_pointer"]},
  "additionalProperties": false
}"##;

/// Methods a probe may use.
pub const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// How much of the response body the probe keeps. Checks only see this much;
/// it bounds guest memory when a URL serves something huge.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Characters of the body echoed in the output (`body_excerpt`).
pub const EXCERPT_CHARS: usize = 200;

/// The `with:` parameters as written; [`Params`] checks them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    url: String,
    method: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    body: Option<String>,
    expect_status: Option<Value>,
    body_contains: Option<String>,
    json_pointer: Option<String>,
    /// `Some(Value::Null)` for an explicit `null`: the probe then expects JSON null.
    #[serde(default, deserialize_with = "present")]
    json_equals: Option<Value>,
    latency_budget_ms: Option<u64>,
    #[serde(default)]
    idempotency: bool,
}

/// Any JSON value given, `null` included (serde's `Option` would read `null` as absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The validated `with:` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub expect_status: Vec<u16>,
    pub body_contains: Option<String>,
    pub json_pointer: Option<String>,
    pub json_equals: Option<Value>,
    pub latency_budget_ms: Option<u64>,
    pub idempotency: bool,
}

impl Params {
    /// Checks the params as written; errors name the param.
    pub fn check(raw: Raw) -> Result<Self, Failure> {
        medic_step::url::http_url("url", &raw.url)?;
        let method = raw.method.unwrap_or_else(|| "GET".to_owned());
        if !METHODS.contains(&method.as_str()) {
            return Err(Failure::fatal(format!(
                "param `method` must be one of {}, got {method:?}",
                METHODS.join(", ")
            )));
        }
        let headers: Vec<(String, String)> = raw.headers.unwrap_or_default().into_iter().collect();
        for (name, value) in &headers {
            // Checked here so the error names the header; the host checks again.
            wstd::http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                Failure::fatal(format!("param `headers.{name}`: bad header name ({e})"))
            })?;
            wstd::http::HeaderValue::from_str(value).map_err(|e| {
                Failure::fatal(format!("param `headers.{name}`: bad header value ({e})"))
            })?;
        }
        let expect_status = match raw.expect_status {
            None => vec![200],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(status_code)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(expect_status_error)?,
            Some(v) => vec![status_code(&v).ok_or_else(expect_status_error)?],
        };
        if let Some(pointer) = &raw.json_pointer
            && !pointer.is_empty()
            && !pointer.starts_with('/')
        {
            return Err(Failure::fatal(format!(
                "param `json_pointer` must be empty or start with '/', got {pointer:?}"
            )));
        }
        if raw.json_equals.is_some() && raw.json_pointer.is_none() {
            return Err(Failure::fatal("param `json_equals` needs `json_pointer`"));
        }
        if raw.latency_budget_ms == Some(0) {
            return Err(Failure::fatal(
                "param `latency_budget_ms` must be a positive integer",
            ));
        }
        Ok(Self {
            url: raw.url,
            method,
            headers,
            body: raw.body,
            expect_status,
            body_contains: raw.body_contains,
            json_pointer: raw.json_pointer,
            json_equals: raw.json_equals,
            latency_budget_ms: raw.latency_budget_ms,
            idempotency: raw.idempotency,
        })
    }
}

fn status_code(value: &Value) -> Option<u16> {
    value
        .as_u64()
        .filter(|s| (100..=599).contains(s))
        .and_then(|s| u16::try_from(s).ok())
}

fn expect_status_error() -> Failure {
    Failure::fatal(
        "param `expect_status` must be a status code (100-599) or a non-empty array of them",
    )
}

/// What the probe observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub status: u16,
    pub latency_ms: u64,
    pub body: Vec<u8>,
}

/// Runs the checks in the order a person would read them (status, latency,
/// body, JSON value) and returns the step output, or the first failure.
pub fn evaluate(params: &Params, observed: &Observed) -> Result<Value, Failure> {
    let url = &params.url;
    if !params.expect_status.contains(&observed.status) {
        let expected = match params.expect_status.as_slice() {
            [one] => one.to_string(),
            many => {
                let list: Vec<String> = many.iter().map(u16::to_string).collect();
                format!("one of {}", list.join(", "))
            }
        };
        return Err(Failure::transient(format!(
            "expected status {expected}, got {} from {url}",
            observed.status
        )));
    }
    if let Some(budget) = params.latency_budget_ms
        && observed.latency_ms > budget
    {
        return Err(Failure::transient(format!(
            "latency {} ms over budget {budget} ms for {url}",
            observed.latency_ms
        )));
    }
    let text = String::from_utf8_lossy(&observed.body);
    if let Some(needle) = &params.body_contains
        && !text.contains(needle.as_str())
    {
        return Err(Failure::transient(format!(
            "body does not contain {needle:?} ({url})"
        )));
    }

    let mut output = Map::new();
    output.insert("status".into(), observed.status.into());
    output.insert("latency_ms".into(), observed.latency_ms.into());
    output.insert("ok".into(), true.into());
    output.insert("url".into(), url.clone().into());
    output.insert("body_excerpt".into(), excerpt(&text).into());

    if let Some(pointer) = &params.json_pointer {
        let document: Value = serde_json::from_str(&text)
            .map_err(|e| Failure::transient(format!("body from {url} is not JSON: {e}")))?;
        let found = document.pointer(pointer).ok_or_else(|| {
            Failure::transient(format!(
                "JSON pointer {pointer:?} not found in body from {url}"
            ))
        })?;
        if let Some(expected) = &params.json_equals
            && found != expected
        {
            return Err(Failure::transient(format!(
                "JSON at {pointer:?} is {found}, expected {expected} ({url})"
            )));
        }
        output.insert("json_value".into(), found.clone());
    }
    Ok(Value::Object(output))
}

/// The first [`EXCERPT_CHARS`] characters, cut on a character boundary.
pub fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

/// The one-line timeline entry for a finished probe.
pub fn summary_line(params: &Params, status: u16, latency_ms: u64) -> String {
    format!(
        "{} {} -> {status} in {latency_ms} ms",
        params.method, params.url
    )
}

#[cfg(test)]
mod tests;
