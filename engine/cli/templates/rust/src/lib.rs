//! `{{name}}`: a medic step. medic calls `describe()` when it validates a workflow and
//! `run()` once per attempt, in a fresh sandboxed instance. See README.md.

use serde_json::{Value, json};

wit_bindgen::generate!({
    // The medic:step WIT this step is built against, vendored in wit/.
    path: "wit",
    world: "medic:step/step-component",
    // Also generates wasi:http bindings; unused ones are dropped from the component.
    generate_all,
});

use exports::medic::step::step::{Guest, Invocation, Manifest, Outcome, StepError};
use medic::step::host;
use medic::step::types::{Capabilities, Level, RetryAfter};

/// JSON Schema of the `with:` params; `medic validate` checks workflows against it.
const PARAMS_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "{{name}} params",
  "type": "object",
  "required": ["message"],
  "properties": {
    "message": {"type": "string", "minLength": 1, "description": "What to put on the incident timeline"}
  },
  "additionalProperties": false
}"#;

struct Step;

impl Guest for Step {
    fn describe() -> Manifest {
        // Must be cheap and must not call the host.
        Manifest {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Put a message on the incident timeline".into(),
            params_schema: PARAMS_SCHEMA.into(),
            // Hosts this step calls and secrets it reads, when they are fixed.
            capabilities: Capabilities {
                hosts: Vec::new(),
                secrets: Vec::new(),
            },
        }
    }

    fn run(invocation: Invocation) -> Result<Outcome, StepError> {
        let params: Value = serde_json::from_str(&invocation.params).map_err(|e| StepError {
            message: format!("params are not JSON: {e}"),
            retryable: false,
        })?;
        let message = match params.get("message").and_then(Value::as_str) {
            Some(m) if !m.is_empty() => m,
            // Bad params will not get better by retrying.
            _ => {
                return Err(StepError {
                    message: "params.message must be a non-empty string".into(),
                    retryable: false,
                });
            }
        };
        // A step that waits should stop before the attempt's deadline and ask for
        // another attempt rather than be killed.
        if invocation.deadline_ms < 1000 {
            return Ok(Outcome::RetryAfter(RetryAfter {
                ms: 5000,
                reason: "less than 1 s left in this attempt".into(),
            }));
        }
        host::log(
            Level::Info,
            &format!("echoing the message for {}", invocation.incident.title),
        );
        host::annotate(&format!("{{name}}: {message}"));
        // Durable across attempts of this step in this run.
        host::state_set("last_message", message);
        let output = json!({
            "echo": message,
            "incident": invocation.incident.title,
            "attempt": invocation.attempt,
            "deadline_ms": invocation.deadline_ms,
        });
        Ok(Outcome::Done(output.to_string()))
    }
}

export!(Step);
