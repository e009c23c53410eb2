//! The probe's pure logic: parameter parsing and the checks on a response.
//!
//! Nothing here touches WIT bindings or WASI, so it compiles and is unit-tested
//! on the host target (`cargo test -p http-probe`); `lib.rs` does the I/O.

use serde_json::{Map, Value};

/// JSON Schema (draft 2020-12) of the `with:` parameters. `medic validate`
/// checks workflows against it; [`Params::parse`] enforces the same rules at
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

/// A failed attempt, before it becomes the WIT `step-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub retryable: bool,
}

impl Failure {
    /// Bad params never get better by retrying.
    pub fn param(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    /// A check on the response failed: the service may still recover, which is
    /// exactly what a verify step waits for.
    pub fn check(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
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
    /// Parses and validates the params JSON. Errors name the offending field.
    pub fn parse(json: &str) -> Result<Self, Failure> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Failure::param(format!("params are not valid JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(Failure::param("params must be a JSON object"));
        };
        const KNOWN: [&str; 10] = [
            "url",
            "method",
            "headers",
            "body",
            "expect_status",
            "body_contains",
            "json_pointer",
            "json_equals",
            "latency_budget_ms",
            "idempotency",
        ];
        if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Failure::param(format!("unknown param `{unknown}`")));
        }

        let url = match fields.get("url") {
            None | Some(Value::Null) => return Err(Failure::param("missing required param `url`")),
            Some(v) => string_field("url", v)?,
        };
        check_url(&url)?;

        let method = match fields.get("method") {
            None => "GET".to_owned(),
            Some(v) => {
                let method = string_field("method", v)?;
                if !METHODS.contains(&method.as_str()) {
                    return Err(Failure::param(format!(
                        "param `method` must be one of {}, got {method:?}",
                        METHODS.join(", ")
                    )));
                }
                method
            }
        };

        let headers = match fields.get("headers") {
            None => Vec::new(),
            Some(Value::Object(map)) => headers_field(map)?,
            Some(_) => {
                return Err(Failure::param(
                    "param `headers` must be an object of strings",
                ));
            }
        };

        let expect_status = match fields.get("expect_status") {
            None => vec![200],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(status_code)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(expect_status_error)?,
            Some(v) => vec![status_code(v).ok_or_else(expect_status_error)?],
        };

        let json_pointer = optional_string(&fields, "json_pointer")?;
        if let Some(pointer) = &json_pointer
            && !pointer.is_empty()
            && !pointer.starts_with('/')
        {
            return Err(Failure::param(format!(
                "param `json_pointer` must be empty or start with '/', got {pointer:?}"
            )));
        }
        let json_equals = fields.get("json_equals").cloned();
        if json_equals.is_some() && json_pointer.is_none() {
            return Err(Failure::param("param `json_equals` needs `json_pointer`"));
        }

        let latency_budget_ms = match fields.get("latency_budget_ms") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(ms) if ms >= 1 => Some(ms),
                _ => {
                    return Err(Failure::param(
                        "param `latency_budget_ms` must be a positive integer",
                    ));
                }
            },
        };

        let idempotency = match fields.get("idempotency") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Failure::param("param `idempotency` must be a boolean")),
        };

        Ok(Self {
            url,
            method,
            headers,
            body: optional_string(&fields, "body")?,
            expect_status,
            body_contains: optional_string(&fields, "body_contains")?,
            json_pointer,
            json_equals,
            latency_budget_ms,
            idempotency,
        })
    }
}

fn string_field(name: &str, value: &Value) -> Result<String, Failure> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Failure::param(format!("param `{name}` must be a string")))
}

fn optional_string(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, Failure> {
    fields.get(name).map(|v| string_field(name, v)).transpose()
}

fn headers_field(map: &Map<String, Value>) -> Result<Vec<(String, String)>, Failure> {
    map.iter()
        .map(|(name, value)| match value {
            Value::String(v) => Ok((name.clone(), v.clone())),
            _ => Err(Failure::param(format!(
                "param `headers.{name}` must be a string"
            ))),
        })
        .collect()
}

fn status_code(value: &Value) -> Option<u16> {
    value
        .as_u64()
        .filter(|s| (100..=599).contains(s))
        .and_then(|s| u16::try_from(s).ok())
}

fn expect_status_error() -> Failure {
    Failure::param(
        "param `expect_status` must be a status code (100-599) or a non-empty array of them",
    )
}

/// Only plain web URLs: the host decides which hosts are reachable, but a
/// `file:` or scheme-less URL is a workflow mistake worth naming early.
fn check_url(url: &str) -> Result<(), Failure> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or_else(|| {
            Failure::param(format!(
                "param `url` must start with http:// or https://, got {url:?}"
            ))
        })?;
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err(Failure::param(format!("param `url` has no host: {url:?}")));
    }
    Ok(())
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
        return Err(Failure::check(format!(
            "expected status {expected}, got {} from {url}",
            observed.status
        )));
    }
    if let Some(budget) = params.latency_budget_ms
        && observed.latency_ms > budget
    {
        return Err(Failure::check(format!(
            "latency {} ms over budget {budget} ms for {url}",
            observed.latency_ms
        )));
    }
    let text = String::from_utf8_lossy(&observed.body);
    if let Some(needle) = &params.body_contains
        && !text.contains(needle.as_str())
    {
        return Err(Failure::check(format!(
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
            .map_err(|e| Failure::check(format!("body from {url} is not JSON: {e}")))?;
        let found = document.pointer(pointer).ok_or_else(|| {
            Failure::check(format!(
                "JSON pointer {pointer:?} not found in body from {url}"
            ))
        })?;
        if let Some(expected) = &params.json_equals
            && found != expected
        {
            return Err(Failure::check(format!(
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
