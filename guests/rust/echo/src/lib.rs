//! `echo`: a trivial, fast step for engine tests and the invocation benchmark.
//!
//! Each optional param exercises one host function, so tests can drive every
//! import (state, annotate, log, secret) and every outcome (done, retry-after,
//! step-error) from a workflow. With params `{}` it makes no host call at all:
//! the benchmark measures the bare cost of an invocation.

use serde_json::{Map, Value, json};

wit_bindgen::generate!({
    path: "../../../wit/0.1.0",
    world: "medic:step/step-component",
    // echo never makes HTTP calls; generating the (unused) wasi:http bindings
    // keeps it free of the wasip2 crate.
    generate_all,
});

use exports::medic::step::step::{Guest, Invocation, Manifest, Outcome, StepError};
use medic::step::host;
use medic::step::types::{Capabilities, Level, RetryAfter};

/// Params are free-form: any JSON object is accepted.
const PARAMS_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "echo params",
  "type": "object",
  "properties": {
    "state_key": {"type": "string", "description": "Read then overwrite this state key"},
    "state_value": {"description": "Value stored under state_key (strings as-is, anything else as JSON)"},
    "annotate": {"type": "string", "description": "Line added to the incident timeline"},
    "log": {"type": "string", "description": "Info line written to the run journal"},
    "secret": {"type": "string", "description": "Secret name; output says only whether it was present"},
    "fail": {"type": "string", "description": "Fail the attempt with this message"},
    "retryable": {"type": "boolean", "default": false},
    "retry_after_ms": {"type": "integer", "minimum": 0},
    "retry_until_attempt": {"type": "integer", "minimum": 1, "default": 2}
  },
  "additionalProperties": true
}"#;

struct Echo;

impl Guest for Echo {
    fn describe() -> Manifest {
        Manifest {
            name: "echo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Echo params back; optionally exercise state, log, annotate, secrets, retries and failures".into(),
            params_schema: PARAMS_SCHEMA.into(),
            capabilities: Capabilities { hosts: Vec::new(), secrets: Vec::new() },
        }
    }

    fn run(invocation: Invocation) -> Result<Outcome, StepError> {
        let params: Value = serde_json::from_str(&invocation.params).map_err(|e| StepError {
            message: format!("params are not valid JSON: {e}"),
            retryable: false,
        })?;
        let Value::Object(fields) = &params else {
            return Err(StepError {
                message: "params must be a JSON object".into(),
                retryable: false,
            });
        };

        let mut output = Map::new();

        if let Some(key) = fields.get("state_key").and_then(Value::as_str) {
            let previous = host::state_get(key);
            let value = match fields.get("state_value") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            host::state_set(key, &value);
            output.insert(
                "previous".into(),
                previous.map_or(Value::Null, Value::String),
            );
        }
        if let Some(message) = fields.get("annotate").and_then(Value::as_str) {
            host::annotate(message);
        }
        if let Some(message) = fields.get("log").and_then(Value::as_str) {
            host::log(Level::Info, message);
        }
        if let Some(name) = fields.get("secret").and_then(Value::as_str) {
            // Only presence is reported: a secret value must never reach output.
            output.insert(
                "secret_present".into(),
                Value::Bool(host::secret(name).is_some()),
            );
        }

        if let Some(message) = fields.get("fail").and_then(Value::as_str) {
            let retryable = fields
                .get("retryable")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            return Err(StepError {
                message: message.into(),
                retryable,
            });
        }
        if let Some(ms) = fields.get("retry_after_ms").and_then(Value::as_u64) {
            let until = fields
                .get("retry_until_attempt")
                .and_then(Value::as_u64)
                .unwrap_or(2);
            if u64::from(invocation.attempt) < until {
                return Ok(Outcome::RetryAfter(RetryAfter {
                    ms,
                    reason: "not ready yet".into(),
                }));
            }
        }

        let mut done = Map::new();
        done.insert("params".into(), params.clone());
        done.insert("attempt".into(), json!(invocation.attempt));
        done.insert("step".into(), json!(invocation.step_id));
        done.insert("idempotency_key".into(), json!(invocation.idempotency_key));
        done.insert("incident_title".into(), json!(invocation.incident.title));
        done.extend(output);
        Ok(Outcome::Done(Value::Object(done).to_string()))
    }
}

export!(Echo);
