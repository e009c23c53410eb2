//! The step's pure logic: params, the query URL, reading Prometheus's answer,
//! and comparing the samples with the threshold.
//!
//! Nothing here touches WIT bindings or WASI, so it is unit-tested on the host
//! target (`cargo test -p prom-check`); `lib.rs` does the I/O and the waiting.

use medic_step::http::encode;
use medic_step::url::{PathPrefix, base_url};
use medic_step::{Failure, params};
use serde::Deserialize;
use serde_json::{Value, json};

/// JSON Schema (draft 2020-12) of the `with:` parameters. `medic validate`
/// checks workflows against it; [`Params::check`] enforces the same rules at
/// run time, because a template can still produce a bad value.
pub const PARAMS_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "prom-check params",
  "type": "object",
  "properties": {
    "url": {
      "type": "string",
      "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#]+",
      "description": "Base URL of the Prometheus server (its host must be in the step's `allow:`), e.g. http://prometheus:9090"
    },
    "query": {"type": "string", "minLength": 1, "description": "PromQL instant query; every series it returns is compared"},
    "op": {"type": "string", "enum": ["<", "<=", ">", ">=", "==", "!="], "description": "Comparison: <series value> <op> <value>"},
    "value": {"type": "number", "description": "The threshold"},
    "consecutive": {
      "type": "integer", "minimum": 1, "maximum": 100, "default": 1,
      "description": "Evaluations in a row that must all hold"
    },
    "interval_ms": {
      "type": "integer", "minimum": 0, "maximum": 600000, "default": 1000,
      "description": "Wait between two evaluations"
    },
    "on_empty": {
      "type": "string", "enum": ["fail", "pass"], "default": "fail",
      "description": "What an empty result means: no series is usually a broken query, or a metric that is gone"
    },
    "token_secret": {
      "type": "string",
      "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
      "description": "Name of a granted secret sent as `Authorization: Bearer <value>`"
    }
  },
  "required": ["url", "query", "op", "value"],
  "additionalProperties": false
}"##;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    const ALL: [(&'static str, Op); 6] = [
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
    ];

    fn parse(text: &str) -> Option<Op> {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == text)
            .map(|(_, op)| *op)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("?", |(s, _)| s)
    }

    /// IEEE comparison: NaN satisfies only `!=`, as in PromQL.
    pub fn holds(self, sample: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => sample < threshold,
            Op::Le => sample <= threshold,
            Op::Gt => sample > threshold,
            Op::Ge => sample >= threshold,
            Op::Eq => sample == threshold,
            Op::Ne => sample != threshold,
        }
    }
}

/// The `with:` parameters as written; [`Params`] checks them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    url: String,
    query: String,
    op: String,
    value: f64,
    consecutive: Option<u64>,
    interval_ms: Option<u64>,
    on_empty: Option<String>,
    token_secret: Option<String>,
}

/// The validated `with:` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Base URL without a trailing slash.
    pub url: String,
    pub query: String,
    pub op: Op,
    pub value: f64,
    pub consecutive: u32,
    pub interval_ms: u64,
    pub pass_on_empty: bool,
    pub token_secret: Option<String>,
}

impl Params {
    /// Checks the params as written; errors name the param.
    pub fn check(raw: Raw) -> Result<Self, Failure> {
        let url = base_url("url", &raw.url, PathPrefix::Allowed)?;
        params::non_empty("query", &raw.query)?;
        let op = Op::parse(&raw.op).ok_or_else(|| {
            Failure::fatal(format!(
                "param `op` must be one of <, <=, >, >=, ==, !=; got {:?}",
                raw.op
            ))
        })?;
        let consecutive = integer("consecutive", raw.consecutive, 1, 1, 100)?;
        let interval_ms = integer("interval_ms", raw.interval_ms, 1000, 0, 600_000)?;
        let pass_on_empty = match raw.on_empty.as_deref() {
            None | Some("fail") => false,
            Some("pass") => true,
            Some(other) => {
                return Err(Failure::fatal(format!(
                    "param `on_empty` must be fail or pass, got {other:?}"
                )));
            }
        };
        if let Some(secret) = &raw.token_secret {
            params::secret_name("token_secret", secret)?;
        }
        Ok(Self {
            url,
            query: raw.query,
            op,
            value: raw.value,
            consecutive: u32::try_from(consecutive).unwrap_or(100),
            interval_ms,
            pass_on_empty,
            token_secret: raw.token_secret,
        })
    }

    /// The instant-query URL (`GET /api/v1/query?query=...`).
    pub fn query_url(&self) -> String {
        format!("{}/api/v1/query?query={}", self.url, encode(&self.query))
    }

    /// `<query> <op> <value>`, for messages.
    pub fn condition(&self) -> String {
        format!("{} {} {}", self.query, self.op.as_str(), self.value)
    }
}

fn integer(
    name: &str,
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, Failure> {
    match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(v) => Err(Failure::fatal(format!(
            "param `{name}` must be an integer from {min} to {max}, got {v}"
        ))),
    }
}

/// One series' value at one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `{job="checkout", ...}` in PromQL's notation; empty for a scalar.
    pub series: String,
    pub value: f64,
}

impl Sample {
    pub fn to_json(&self) -> Value {
        // JSON has no NaN or infinities: those are shown as Prometheus spells them.
        let value = if self.value.is_finite() {
            json!(self.value)
        } else {
            json!(prom_float(self.value))
        };
        json!({"series": self.series, "value": value})
    }
}

fn prom_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

/// The samples in a successful `/api/v1/query` answer (status 200).
pub fn samples(body: &str) -> Result<Vec<Sample>, Failure> {
    let document: Value = serde_json::from_str(body).map_err(|e| {
        Failure::transient(format!(
            "Prometheus answered with a body that is not JSON ({e}): {}",
            excerpt(body)
        ))
    })?;
    if document["status"] != "success" {
        return Err(Failure::fatal(format!(
            "Prometheus answered status {}: {}",
            document["status"],
            excerpt(body)
        )));
    }
    let data = &document["data"];
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("vector") => result
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                Ok(Sample {
                    series: series_name(&item["metric"]),
                    value: sample_value(&item["value"])?,
                })
            })
            .collect(),
        Some("scalar") => Ok(vec![Sample {
            series: String::new(),
            value: sample_value(result)?,
        }]),
        other => Err(Failure::fatal(format!(
            "query result type {} cannot be compared with a threshold: use an instant vector or scalar expression",
            other.map_or_else(|| "(missing)".to_owned(), |t| format!("`{t}`"))
        ))),
    }
}

/// `[<unix time>, "<value>"]`: Prometheus sends values as strings, including
/// `NaN`, `+Inf` and `-Inf`.
fn sample_value(pair: &Value) -> Result<f64, Failure> {
    let text = pair[1].as_str().ok_or_else(|| {
        Failure::fatal(format!(
            "Prometheus sample is not [time, \"value\"]: {pair}"
        ))
    })?;
    text.parse::<f64>()
        .map_err(|e| Failure::fatal(format!("Prometheus sample value {text:?}: {e}")))
}

/// Labels in PromQL's notation, `__name__` first as the metric name.
fn series_name(metric: &Value) -> String {
    let Some(labels) = metric.as_object() else {
        return String::new();
    };
    let name = labels.get("__name__").and_then(Value::as_str).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", Value::from(v.as_str().unwrap_or_default())))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

/// Whether one evaluation holds: every series must satisfy the comparison; an
/// empty result holds only with `on_empty: pass`.
pub fn holds(params: &Params, samples: &[Sample]) -> bool {
    if samples.is_empty() {
        return params.pass_on_empty;
    }
    samples
        .iter()
        .all(|s| params.op.holds(s.value, params.value))
}

/// `series=value, ...` for messages; `no series` when empty.
pub fn describe_samples(samples: &[Sample]) -> String {
    if samples.is_empty() {
        return "no series".to_owned();
    }
    let parts: Vec<String> = samples
        .iter()
        .map(|s| {
            let value = if s.value.is_finite() {
                s.value.to_string()
            } else {
                prom_float(s.value)
            };
            if s.series.is_empty() {
                value
            } else {
                format!("{}={value}", s.series)
            }
        })
        .collect();
    excerpt(&parts.join(", "))
}

/// The step error for an evaluation that does not hold. Retryable, so a
/// workflow's `retry:` keeps checking until the metric recovers.
pub fn not_satisfied(params: &Params, evaluation: u32, samples: &[Sample]) -> Failure {
    let of = if params.consecutive > 1 {
        format!(" (evaluation {evaluation} of {})", params.consecutive)
    } else {
        String::new()
    };
    let failing: Vec<Sample> = samples
        .iter()
        .filter(|s| !params.op.holds(s.value, params.value))
        .cloned()
        .collect();
    let seen = if samples.is_empty() {
        "the query returned no series (on_empty: fail)".to_owned()
    } else {
        format!(
            "{} of {} series fail: {}",
            failing.len(),
            samples.len(),
            describe_samples(&failing)
        )
    };
    Failure::transient(format!(
        "not satisfied{of}: {} {} {}; {seen}",
        params.query,
        params.op.as_str(),
        params.value
    ))
}

/// The step output: the condition and the values seen at each evaluation.
pub fn output(params: &Params, evaluations: &[Vec<Sample>]) -> Value {
    let evaluations: Vec<Value> = evaluations
        .iter()
        .map(|samples| Value::Array(samples.iter().map(Sample::to_json).collect()))
        .collect();
    json!({
        "query": params.query,
        "op": params.op.as_str(),
        "value": params.value,
        "satisfied": true,
        "evaluations": evaluations,
    })
}

/// At most 500 characters, cut on a character boundary.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 500;
    let text = text.trim();
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}...")
}

/// A non-200 answer. Prometheus sends 400 for a bad query and 422 when the
/// query cannot be executed (both final); 503 when it timed out or is
/// overloaded, and 5xx/429 generally, may clear up.
pub fn refusal(params: &Params, status: u16, body: &str) -> Failure {
    let said = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|d| {
            let kind = d["errorType"].as_str().unwrap_or("error").to_owned();
            d["error"].as_str().map(|e| format!("{kind}: {e}"))
        })
        .unwrap_or_else(|| excerpt(body));
    let message = match status {
        401 | 403 => {
            let secret = params.token_secret.as_deref().map_or_else(
                || " (no token_secret given)".to_owned(),
                |s| format!(" with the token in secret `{s}`"),
            );
            format!("Prometheus refused the query{secret} ({status}): {said}")
        }
        _ => format!(
            "Prometheus answered {status} to query {:?}: {said}",
            params.query
        ),
    };
    Failure::remote(status, message)
}

#[cfg(test)]
mod tests;
