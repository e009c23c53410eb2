//! The step's `with:` parameters: schema and parsing (pure, unit-tested on the host).

use medic_step::url::{PathPrefix, base_url};
use medic_step::{Failure, params};
use serde::Deserialize;
use serde_json::Value;

/// JSON Schema (draft 2020-12) of the `with:` parameters. `medic validate` checks workflows
/// against it; [`Params::check`] enforces the same rules at run time, because a template can
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
      "enum": ["history", "undo", "pause", "resume", "status", "set_image", "restart", "scale"],
      "description": "history: list revisions; undo: roll back as `kubectl rollout undo`; pause/resume: as `kubectl rollout pause/resume`, a no-op when already so; status: wait for the rollout to complete; set_image, restart, scale: roll forward as `kubectl set image`, `kubectl rollout restart`, `kubectl scale`, then wait as status"
    },
    "container": {
      "type": "string",
      "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
      "maxLength": 63,
      "description": "set_image only: the container to change; may be left out when the pod has exactly one"
    },
    "image": {
      "type": "string",
      "minLength": 1,
      "pattern": "^[^\\s]+$",
      "description": "set_image only: the new image, e.g. registry.example/web:1.4.2"
    },
    "replicas": {
      "type": "integer",
      "minimum": 0,
      "description": "scale only: the desired number of replicas"
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
      "description": "status, set_image, restart, scale: how long one attempt waits for the rollout; keep it below the step's timeout"
    },
    "poll_ms": {
      "type": "integer",
      "minimum": 1,
      "default": 1000,
      "description": "status, set_image, restart, scale: delay between two reads of the deployment"
    },
    "token_secret": {
      "type": "string",
      "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
      "description": "Secret holding the bearer token (grant it in `secrets:`); without this param no Authorization header is sent"
    }
  },
  "required": ["server", "deployment", "action"],
  "additionalProperties": false,
  "allOf": [
    {"if": {"properties": {"action": {"const": "set_image"}}}, "then": {"required": ["image"]}},
    {"if": {"properties": {"action": {"const": "scale"}}}, "then": {"required": ["replicas"]}}
  ]
}"##;

/// What the step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    History,
    Undo,
    Pause,
    Resume,
    Status,
    SetImage,
    Restart,
    Scale,
}

impl Action {
    /// The name in `with: {action: ...}`.
    pub fn name(self) -> &'static str {
        match self {
            Action::History => "history",
            Action::Undo => "undo",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Status => "status",
            Action::SetImage => "set_image",
            Action::Restart => "restart",
            Action::Scale => "scale",
        }
    }
}

/// The target of an undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToRevision {
    Previous,
    Number(u64),
}

/// The `with:` parameters as written; [`Params::check`] checks them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    server: String,
    #[serde(default = "default_namespace")]
    namespace: String,
    deployment: String,
    action: Action,
    to_revision: Option<Value>,
    timeout_ms: Option<u64>,
    poll_ms: Option<u64>,
    token_secret: Option<String>,
    container: Option<String>,
    image: Option<String>,
    replicas: Option<u32>,
}

fn default_namespace() -> String {
    "default".into()
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
    /// set_image: the container, `None` for the pod's only one.
    pub container: Option<String>,
    /// set_image: the new image.
    pub image: String,
    /// scale: the desired replicas.
    pub replicas: u32,
}

impl Params {
    /// Checks the params as written; errors name the param.
    pub fn check(raw: Raw) -> Result<Self, Failure> {
        let action = raw.action;
        let server = base_url("server", &raw.server, PathPrefix::Refused)?;
        check_name("namespace", &raw.namespace, 63, false)?;
        check_name("deployment", &raw.deployment, 253, true)?;
        let only = |name: &str, given: bool, wanted: &[Action]| {
            if given && !wanted.contains(&action) {
                let names: Vec<&str> = wanted.iter().map(|a| a.name()).collect();
                Err(Failure::fatal(format!(
                    "param `{name}` only applies to action `{}`",
                    names.join("`, `")
                )))
            } else {
                Ok(())
            }
        };
        let waiting = [
            Action::Status,
            Action::SetImage,
            Action::Restart,
            Action::Scale,
        ];
        only("to_revision", raw.to_revision.is_some(), &[Action::Undo])?;
        only("timeout_ms", raw.timeout_ms.is_some(), &waiting)?;
        only("poll_ms", raw.poll_ms.is_some(), &waiting)?;
        only("container", raw.container.is_some(), &[Action::SetImage])?;
        only("image", raw.image.is_some(), &[Action::SetImage])?;
        only("replicas", raw.replicas.is_some(), &[Action::Scale])?;
        let to_revision = match raw.to_revision {
            None => ToRevision::Previous,
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
        let positive = |name: &str, value: Option<u64>, default: u64| match value {
            None => Ok(default),
            Some(0) => Err(Failure::fatal(format!(
                "param `{name}` must be a positive integer, got 0"
            ))),
            Some(n) => Ok(n),
        };
        let timeout_ms = positive("timeout_ms", raw.timeout_ms, 20_000)?;
        let poll_ms = positive("poll_ms", raw.poll_ms, 1_000)?;
        if let Some(secret) = &raw.token_secret {
            params::secret_name("token_secret", secret)?;
        }
        if let Some(container) = &raw.container {
            check_name("container", container, 63, false)?;
        }
        let image = raw.image.unwrap_or_default();
        if action == Action::SetImage {
            if image.is_empty() {
                return Err(Failure::fatal(
                    "action `set_image` needs param `image` (the new image, e.g. registry.example/web:1.4.2)",
                ));
            }
            if image.chars().any(char::is_whitespace) {
                return Err(Failure::fatal(format!(
                    "param `image` must be an image reference without spaces, got {image:?}"
                )));
            }
        }
        if action == Action::Scale && raw.replicas.is_none() {
            return Err(Failure::fatal(
                "action `scale` needs param `replicas` (the desired number of replicas, 0 or more)",
            ));
        }
        Ok(Self {
            server,
            namespace: raw.namespace,
            deployment: raw.deployment,
            action,
            to_revision,
            timeout_ms,
            poll_ms,
            token_secret: raw.token_secret,
            container: raw.container,
            image,
            replicas: raw.replicas.unwrap_or_default(),
        })
    }
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
