//! `{{name}}`: a medic step. medic calls `describe()` when it validates a workflow and
//! `run()` once per attempt, in a fresh sandboxed instance; `medic_step::export_step!`
//! turns the `Step` below into both. See README.md.

use medic_step::{Failure, Invocation, Outcome, Step, host, params};
use serde::Deserialize;
use serde_json::json;

/// The `with:` params. A key not listed here is refused, naming it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// What to put on the incident timeline.
    message: String,
}

struct MyStep;

impl Step for MyStep {
    type Params = Params;
    const NAME: &'static str = "{{name}}";
    const SUMMARY: &'static str = "Put a message on the incident timeline";
    /// JSON Schema of the `with:` params; `medic validate` checks workflows against it.
    const PARAMS_SCHEMA: &'static str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "{{name}} params",
  "type": "object",
  "required": ["message"],
  "properties": {
    "message": {"type": "string", "minLength": 1, "description": "What to put on the incident timeline"}
  },
  "additionalProperties": false
}"#;
    // Hosts this step always calls and secrets it always reads (HOSTS, SECRETS) are
    // empty by default; a workflow grants the ones that come from params.

    async fn run(params: Params, invocation: &Invocation) -> Result<Outcome, Failure> {
        // Bad params will not get better by retrying: a fatal failure.
        params::non_empty("message", &params.message)?;
        // A step that waits should stop before the attempt's deadline and ask for
        // another attempt rather than be killed.
        if invocation.deadline_ms < 1000 {
            return Ok(Outcome::RetryAfter {
                ms: 5000,
                reason: "less than 1 s left in this attempt".into(),
            });
        }
        host::log(
            host::Level::Info,
            &format!("echoing the message for {}", invocation.incident.title),
        );
        host::annotate(&format!("{{name}}: {}", params.message));
        // Durable across attempts of this step in this run.
        host::state_set("last_message", &params.message);
        Ok(Outcome::Done(json!({
            "echo": params.message,
            "incident": invocation.incident.title,
            "attempt": invocation.attempt,
            "deadline_ms": invocation.deadline_ms,
        })))
    }
}

medic_step::export_step!(MyStep);

/// Unit tests on this machine (`cargo test`): medic_step's fake host stands in for medic.
#[cfg(test)]
mod tests {
    use super::*;
    use medic_step::testing;

    #[test]
    fn puts_the_message_on_the_timeline() {
        testing::reset();
        let out = testing::run::<MyStep>(r#"{"message": "rolled back"}"#).unwrap();
        let Outcome::Done(output) = out else {
            panic!("not done: {out:?}")
        };
        assert_eq!(output["echo"], "rolled back");
        let host = testing::host();
        assert_eq!(host.annotations, ["{{name}}: rolled back"]);
        assert_eq!(host.state["last_message"], "rolled back");
    }

    #[test]
    fn refuses_bad_params() {
        let empty = testing::run::<MyStep>(r#"{"message": ""}"#).unwrap_err();
        assert!(!empty.retryable);
        let typo = testing::run::<MyStep>(r#"{"mesage": "x"}"#).unwrap_err();
        assert!(typo.message.starts_with("unknown param `mesage`"), "{}", typo.message);
    }
}
