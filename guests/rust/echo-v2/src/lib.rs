//! `echo-v2`: the `echo` idea built against `medic:step@0.2.0`, so the engine's tests
//! prove a 0.2.0 component is detected as such and receives `invocation.deadline-ms`.
//!
//! Output: `{"wit": "0.2.0", "deadline_ms": N, "params": ..., "attempt": N}`. With
//! `{"min_ms_left": M}` it returns `retry-after` when fewer than M ms are left in the
//! attempt: the pattern a waiting step uses to stop in time instead of being killed.

use serde_json::{Value, json};

wit_bindgen::generate!({
    path: "../../../wit/0.2.0",
    world: "medic:step/step-component",
    // No HTTP calls: the unused wasi:http bindings are generated here and dropped
    // from the component, keeping it free of the wasip2 crate.
    generate_all,
});

use exports::medic::step::step::{Guest, Invocation, Manifest, Outcome, StepError};
use medic::step::host;
use medic::step::types::{Capabilities, Level, RetryAfter};

const PARAMS_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "echo-v2 params",
  "type": "object",
  "properties": {
    "min_ms_left": {"type": "integer", "minimum": 0, "description": "Return retry-after when fewer ms than this are left in the attempt"},
    "log": {"type": "string", "description": "Info line written to the run journal"}
  },
  "additionalProperties": true
}"#;

struct EchoV2;

impl Guest for EchoV2 {
    fn describe() -> Manifest {
        Manifest {
            name: "echo-v2".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Echo params and the attempt's deadline-ms (medic:step@0.2.0)".into(),
            params_schema: PARAMS_SCHEMA.into(),
            capabilities: Capabilities {
                hosts: Vec::new(),
                secrets: Vec::new(),
            },
        }
    }

    fn run(invocation: Invocation) -> Result<Outcome, StepError> {
        let params: Value = serde_json::from_str(&invocation.params).map_err(|e| StepError {
            message: format!("params are not valid JSON: {e}"),
            retryable: false,
        })?;
        if let Some(message) = params.get("log").and_then(Value::as_str) {
            host::log(Level::Info, message);
        }
        if let Some(min) = params.get("min_ms_left").and_then(Value::as_u64)
            && invocation.deadline_ms < min
        {
            return Ok(Outcome::RetryAfter(RetryAfter {
                ms: 1000,
                reason: format!(
                    "only {} ms left in this attempt; need {min}",
                    invocation.deadline_ms
                ),
            }));
        }
        let out = json!({
            "wit": "0.2.0",
            "deadline_ms": invocation.deadline_ms,
            "params": params,
            "attempt": invocation.attempt,
        });
        Ok(Outcome::Done(out.to_string()))
    }
}

export!(EchoV2);
