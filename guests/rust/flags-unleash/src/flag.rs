//! The step's pure logic: params, Unleash Admin API paths, reading a feature's
//! state from Unleash's answer, and turning refusals into step failures.
//!
//! Nothing here touches WIT bindings or WASI, so it is unit-tested on the host
//! target (`cargo test -p flags-unleash`); `lib.rs` does the I/O.

use serde_json::{Map, Value, json};

use guest_http::encode;

/// JSON Schema (draft 2020-12) of the `with:` parameters. `medic validate`
/// checks workflows against it; [`Params::parse`] enforces the same rules at
/// run time, because a template can still produce a bad value.
pub const PARAMS_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "flags-unleash params",
  "type": "object",
  "properties": {
    "url": {
      "type": "string",
      "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#]+",
      "description": "Base URL of the Unleash server (its host must be in the step's `allow:`), e.g. https://unleash.internal"
    },
    "project": {"type": "string", "minLength": 1, "default": "default", "description": "Unleash project id"},
    "feature": {"type": "string", "minLength": 1, "description": "Feature flag name"},
    "environment": {"type": "string", "minLength": 1, "description": "Environment to read or change, e.g. production"},
    "action": {
      "type": "string",
      "enum": ["enable", "disable", "get"],
      "description": "enable or disable the flag in the environment, or only read its state"
    },
    "token_secret": {
      "type": "string",
      "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
      "description": "Name of the granted secret holding an Unleash admin API token (or personal access token)"
    }
  },
  "required": ["url", "feature", "environment", "action", "token_secret"],
  "additionalProperties": false
}"##;

pub use guest_http::Failure;

/// What the step does to the flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Enable,
    Disable,
    Get,
}

impl Action {
    /// The state the action wants, `None` for a read.
    pub fn target(self) -> Option<bool> {
        match self {
            Action::Enable => Some(true),
            Action::Disable => Some(false),
            Action::Get => None,
        }
    }
}

/// The validated `with:` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Base URL without a trailing slash.
    pub url: String,
    pub project: String,
    pub feature: String,
    pub environment: String,
    pub action: Action,
    pub token_secret: String,
}

const KNOWN: [&str; 6] = [
    "url",
    "project",
    "feature",
    "environment",
    "action",
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
                "unknown param `{unknown}` (known: {})",
                KNOWN.join(", ")
            )));
        }
        let url = required(&fields, "url")?;
        check_url(&url)?;
        let project = match fields.get("project") {
            None => "default".to_owned(),
            Some(_) => required(&fields, "project")?,
        };
        let action = match required(&fields, "action")?.as_str() {
            "enable" => Action::Enable,
            "disable" => Action::Disable,
            "get" => Action::Get,
            other => {
                return Err(Failure::fatal(format!(
                    "param `action` must be one of enable, disable, get; got {other:?}"
                )));
            }
        };
        let token_secret = required(&fields, "token_secret")?;
        let valid_name = token_secret
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if !valid_name {
            return Err(Failure::fatal(format!(
                "param `token_secret` must be a secret name (letters, digits, _), got {token_secret:?}"
            )));
        }
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            project,
            feature: required(&fields, "feature")?,
            environment: required(&fields, "environment")?,
            action,
            token_secret,
        })
    }

    /// The feature's Admin API URL (its state in every environment).
    pub fn feature_url(&self) -> String {
        format!(
            "{}/api/admin/projects/{}/features/{}",
            self.url,
            encode(&self.project),
            encode(&self.feature)
        )
    }

    /// The Admin API URL that turns the feature on or off in the environment.
    pub fn toggle_url(&self, enabled: bool) -> String {
        let verb = if enabled { "on" } else { "off" };
        format!(
            "{}/environments/{}/{verb}",
            self.feature_url(),
            encode(&self.environment)
        )
    }

    /// `feature` in `environment` (project `project`), for messages.
    pub fn describe(&self) -> String {
        format!(
            "feature `{}` in environment `{}` (project `{}`)",
            self.feature, self.environment, self.project
        )
    }
}

fn required(fields: &Map<String, Value>, name: &str) -> Result<String, Failure> {
    match fields.get(name) {
        None | Some(Value::Null) => Err(Failure::fatal(format!("missing required param `{name}`"))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(Failure::fatal(format!("param `{name}` must not be empty")))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Failure::fatal(format!("param `{name}` must be a string"))),
    }
}

/// Only plain web URLs; the host's allow-list decides which hosts are reachable.
fn check_url(url: &str) -> Result<(), Failure> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or_else(|| {
            Failure::fatal(format!(
                "param `url` must start with http:// or https://, got {url:?}"
            ))
        })?;
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err(Failure::fatal(format!("param `url` has no host: {url:?}")));
    }
    if rest.contains(['?', '#']) {
        return Err(Failure::fatal(format!(
            "param `url` is the Unleash base URL and takes no query or fragment: {url:?}"
        )));
    }
    Ok(())
}

/// Whether the feature is enabled in `params.environment`, from the body of
/// `GET /api/admin/projects/{project}/features/{feature}` (200).
pub fn enabled_in(params: &Params, body: &str) -> Result<bool, Failure> {
    let document: Value = serde_json::from_str(body).map_err(|e| {
        Failure::transient(format!(
            "Unleash answered {} with a body that is not JSON ({e}): {}",
            params.feature_url(),
            excerpt(body)
        ))
    })?;
    let environments = document["environments"].as_array().ok_or_else(|| {
        Failure::fatal(format!(
            "Unleash's answer for {} has no `environments` list: {}",
            params.describe(),
            excerpt(body)
        ))
    })?;
    let found = environments
        .iter()
        .find(|env| env["name"].as_str() == Some(params.environment.as_str()));
    match found {
        Some(env) => env["enabled"].as_bool().ok_or_else(|| {
            Failure::fatal(format!(
                "Unleash's answer for {} has no boolean `enabled`: {env}",
                params.describe()
            ))
        }),
        None => {
            let names: Vec<&str> = environments
                .iter()
                .filter_map(|env| env["name"].as_str())
                .collect();
            Err(Failure::fatal(format!(
                "{} not found: the feature exists but the project has no such environment (it has: {})",
                params.describe(),
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            )))
        }
    }
}

/// A non-2xx answer from Unleash as a step failure that carries the status and
/// Unleash's own message. 5xx and 429 may clear up; other 4xx will not.
pub fn refusal(params: &Params, what: &str, status: u16, body: &str) -> Failure {
    let said = unleash_message(body);
    let message = match status {
        404 if what == "read" => format!(
            "{} not found: Unleash answered 404 for {}: {said}",
            params.describe(),
            params.feature_url()
        ),
        401 | 403 => format!(
            "Unleash refused the token in secret `{}` ({status}) to {what} {}: {said}",
            params.token_secret,
            params.describe()
        ),
        _ => format!(
            "Unleash answered {status} to {what} {}: {said}",
            params.describe()
        ),
    };
    Failure::remote(status, message)
}

/// Unleash's error documents carry `message` (and sometimes `details[].message`);
/// anything else is shown as a short excerpt of the body.
pub fn unleash_message(body: &str) -> String {
    let Ok(document) = serde_json::from_str::<Value>(body) else {
        return excerpt(body);
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(message) = document["message"].as_str() {
        parts.push(message.to_owned());
    }
    for detail in document["details"].as_array().into_iter().flatten() {
        if let Some(message) = detail["message"].as_str()
            && !parts.iter().any(|p| p == message)
        {
            parts.push(message.to_owned());
        }
    }
    if parts.is_empty() {
        excerpt(body)
    } else {
        excerpt(&parts.join("; "))
    }
}

/// At most 300 characters, cut on a character boundary.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 300;
    let text = text.trim();
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}...")
}

/// The step output: exactly what was seen and what changed.
pub fn output(params: &Params, previous: bool, current: bool) -> Value {
    json!({
        "feature": params.feature,
        "project": params.project,
        "environment": params.environment,
        "action": match params.action {
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Get => "get",
        },
        "previous": previous,
        "current": current,
        "changed": previous != current,
    })
}

/// The timeline line for a finished attempt.
pub fn timeline_line(params: &Params, previous: bool, current: bool) -> String {
    let word = |on: bool| if on { "enabled" } else { "disabled" };
    let what = params.describe();
    match params.action.target() {
        None => format!("flags-unleash: {what} is {}", word(current)),
        Some(_) if previous == current => {
            format!("flags-unleash: {what} already {}; no change", word(current))
        }
        Some(_) => format!(
            "flags-unleash: {what} {} (was {})",
            word(current),
            word(previous)
        ),
    }
}

#[cfg(test)]
mod tests;
