//! The step's `with:` parameters: schema and parsing (pure, unit-tested on the host).

use serde_json::{Map, Value};

use crate::rollout::Failure;

/// JSON Schema (draft 2020-12) of the `with:` parameters. `medic validate` checks workflows
/// against it; [`Params::parse`] enforces the same rules at run time, because a template can
/// still produce a bad value.
pub const PARAMS_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "k8s-rollout params",
  "type": "object",
  "properties": {
    "server": {
      "type": "string",
      "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#]+/?$",
      "description": "Base URL of the Kubernetes API server, e.g. https://k8s.example.com:6443; its host must be in the step's allow list"
    },
    "namespace": {
      "type": "string",
      "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
      "maxLength": 63,
      "default": "default"
    },
    "deployment": {
      "type": "string",
      "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
      "maxLength": 253,
      "description": "Name of the Deployment (apps/v1)"
    },
    "action": {
      "enum": ["history", "undo", "pause", "resume", "status"],
      "description": "history: list revisions; undo: roll back as `kubectl rollout undo`; pause/resume: as `kubectl rollout pause/resume`, a no-op when already so; status: wait for the rollout to complete"
    },
    "to_revision": {
      "description": "undo only: the revision to roll back to, or \"previous\" (the default)",
      "oneOf": [
        {"type": "integer", "minimum": 1},
        {"const": "previous"}
      ]
    },
    "timeout_ms": {
      "type": "integer",
      "minimum": 1,
      "default": 20000,
      "description": "status only: how long one attempt waits for the rollout; keep it below the step's timeout"
    },
    "poll_ms": {
      "type": "integer",
      "minimum": 1,
      "default": 1000,
      "description": "status only: delay between two reads of the deployment"
    },
    "token_secret": {
      "type": "string",
      "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
      "description": "Secret holding the bearer token (grant it in `secrets:`); without this param no Authorization header is sent"
    }
  },
  "required": ["server", "deployment", "action"],
  "additionalProperties": false
}"##;

/// What the step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    History,
    Undo,
    Pause,
    Resume,
    Status,
}

/// The target of an undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToRevision {
    Previous,
    Number(u64),
}

/// The validated `with:` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Base URL without a trailing `/`.
    pub server: String,
    pub namespace: String,
    pub deployment: String,
    pub action: Action,
    pub to_revision: ToRevision,
    pub timeout_ms: u64,
    pub poll_ms: u64,
    /// The secret holding the bearer token; `None`: anonymous requests. Not defaulted,
    /// because medic fails an attempt that reads a secret its workflow did not grant.
    pub token_secret: Option<String>,
}

const KNOWN: [&str; 8] = [
    "server",
    "namespace",
    "deployment",
    "action",
    "to_revision",
    "timeout_ms",
    "poll_ms",
    "token_secret",
];

impl Params {
    /// Parses and validates the params JSON. Errors name the offending field.
    pub fn parse(json: &str) -> Result<Self, Failure> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Failure::fatal(format!("params are not valid JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(Failure::fatal("params must be a JSON object"));
        };
        if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Failure::fatal(format!(
                "unknown param `{unknown}` (expected one of: {})",
                KNOWN.join(", ")
            )));
        }
        let server = required(&fields, "server")?;
        let server = check_server(&server)?;
        let namespace = optional(&fields, "namespace")?.unwrap_or_else(|| "default".into());
        check_name("namespace", &namespace, 63, false)?;
        let deployment = required(&fields, "deployment")?;
        check_name("deployment", &deployment, 253, true)?;
        let action = match required(&fields, "action")?.as_str() {
            "history" => Action::History,
            "undo" => Action::Undo,
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "status" => Action::Status,
            other => {
                return Err(Failure::fatal(format!(
                    "param `action` must be one of history, undo, pause, resume, status; got {other:?}"
                )));
            }
        };
        let to_revision = match fields.get("to_revision") {
            None => ToRevision::Previous,
            Some(_) if action != Action::Undo => {
                return Err(Failure::fatal(
                    "param `to_revision` only applies to action `undo`",
                ));
            }
            Some(Value::String(s)) if s == "previous" => ToRevision::Previous,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => ToRevision::Number(n),
                _ => {
                    return Err(Failure::fatal(format!(
                        "param `to_revision` must be a revision number (1 or more) or \"previous\", got {v}"
                    )));
                }
            },
        };
        let timeout_ms = positive(&fields, "timeout_ms", 20_000)?;
        let poll_ms = positive(&fields, "poll_ms", 1_000)?;
        if action != Action::Status
            && let Some(name) = ["timeout_ms", "poll_ms"]
                .iter()
                .find(|n| fields.contains_key(**n))
        {
            return Err(Failure::fatal(format!(
                "param `{name}` only applies to action `status`"
            )));
        }
        let token_secret = optional(&fields, "token_secret")?;
        let valid_secret = |name: &str| {
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if let Some(token_secret) = &token_secret
            && !valid_secret(token_secret)
        {
            return Err(Failure::fatal(format!(
                "param `token_secret` must be a secret name (letters, digits and _, not starting with a digit), got {token_secret:?}"
            )));
        }
        Ok(Self {
            server,
            namespace,
            deployment,
            action,
            to_revision,
            timeout_ms,
            poll_ms,
            token_secret,
        })
    }
}

fn required(fields: &Map<String, Value>, name: &str) -> Result<String, Failure> {
    optional(fields, name)?
        .ok_or_else(|| Failure::fatal(format!("missing required param `{name}`")))
}

fn optional(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, Failure> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Failure::fatal(format!("param `{name}` must be a string"))),
    }
}

fn positive(fields: &Map<String, Value>, name: &str, default: u64) -> Result<u64, Failure> {
    match fields.get(name) {
        None => Ok(default),
        Some(v) => v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
            Failure::fatal(format!(
                "param `{name}` must be a positive integer, got {v}"
            ))
        }),
    }
}

/// An `http(s)://host[:port]` base URL; a path would be silently ignored, so it is refused.
fn check_server(server: &str) -> Result<String, Failure> {
    let lower = server.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| {
            Failure::fatal(format!(
                "param `server` must start with http:// or https://, got {server:?}"
            ))
        })?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(Failure::fatal(format!(
            "param `server` must be a base URL such as https://k8s.example.com:6443 (no path, query or user), got {server:?}"
        )));
    }
    Ok(server.strip_suffix('/').unwrap_or(server).to_owned())
}

/// Kubernetes object names: DNS-1123 labels (namespace) or subdomains (deployment). Checked
/// here because they become URL path segments.
fn check_name(field: &str, name: &str, max: usize, dots: bool) -> Result<(), Failure> {
    let ok_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty()
        || name.len() > max
        || !name.chars().all(ok_char)
        || !edge(name.chars().next())
        || !edge(name.chars().last())
    {
        return Err(Failure::fatal(format!(
            "param `{field}` must be a Kubernetes name (lowercase letters, digits and '-'{}, at most {max} characters, starting and ending with a letter or digit), got {name:?}",
            if dots { " or '.'" } else { "" }
        )));
    }
    Ok(())
}
