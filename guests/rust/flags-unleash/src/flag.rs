//! The step's pure logic: params, Unleash Admin API paths, reading a feature's
//! state from Unleash's answer, and turning refusals into step failures.
//!
//! Nothing here touches WIT bindings or WASI, so it is unit-tested on the host
//! target (`cargo test -p flags-unleash`); `lib.rs` does the I/O.

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
      "enum": ["enable", "disable", "get", "set_rollout"],
      "description": "enable or disable the flag in the environment, only read its state, or set the percentage of its flexible-rollout strategy there"
    },
    "percentage": {
      "type": "integer",
      "minimum": 0,
      "maximum": 100,
      "description": "set_rollout only: the share of users (0-100) the flexible-rollout strategy lets in"
    },
    "strategy_id": {
      "type": "string",
      "minLength": 1,
      "description": "set_rollout only: which flexible-rollout strategy to change when the environment has several"
    },
    "token_secret": {
      "type": "string",
      "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
      "description": "Name of the granted secret holding an Unleash admin API token (or personal access token)"
    }
  },
  "required": ["url", "feature", "environment", "action", "token_secret"],
  "additionalProperties": false,
  "allOf": [
    {"if": {"properties": {"action": {"const": "set_rollout"}}}, "then": {"required": ["percentage"]}}
  ]
}"##;

/// What the step does to the flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Enable,
    Disable,
    Get,
    /// Set the percentage of the flexible-rollout strategy (see [`crate::strategy`]).
    SetRollout,
}

impl Action {
    /// The state the action wants, `None` for a read.
    pub fn target(self) -> Option<bool> {
        match self {
            Action::Enable => Some(true),
            Action::Disable => Some(false),
            Action::Get | Action::SetRollout => None,
        }
    }

    /// The name in `with: {action: ...}`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Enable => "enable",
            Action::Disable => "disable",
            Action::Get => "get",
            Action::SetRollout => "set_rollout",
        }
    }
}

/// The `with:` parameters as written; [`Params`] checks them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    url: String,
    #[serde(default = "default_project")]
    project: String,
    feature: String,
    environment: String,
    action: Action,
    token_secret: String,
    percentage: Option<u8>,
    strategy_id: Option<String>,
}

fn default_project() -> String {
    "default".into()
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
    /// set_rollout: the percentage, 0 to 100.
    pub percentage: u8,
    /// set_rollout: the strategy to change, when the environment has several.
    pub strategy_id: Option<String>,
}

impl Params {
    /// Checks the params as written; errors name the param.
    pub fn check(raw: Raw) -> Result<Self, Failure> {
        let url = base_url("url", &raw.url, PathPrefix::Allowed)?;
        for (name, value) in [
            ("project", &raw.project),
            ("feature", &raw.feature),
            ("environment", &raw.environment),
        ] {
            params::non_empty(name, value)?;
        }
        params::secret_name("token_secret", &raw.token_secret)?;
        let rollout_only = [
            ("percentage", raw.percentage.is_some()),
            ("strategy_id", raw.strategy_id.is_some()),
        ];
        if raw.action != Action::SetRollout
            && let Some((name, _)) = rollout_only.iter().find(|(_, given)| *given)
        {
            return Err(Failure::fatal(format!(
                "param `{name}` only applies to action `set_rollout`"
            )));
        }
        let percentage = match (raw.action, raw.percentage) {
            (Action::SetRollout, None) => {
                return Err(Failure::fatal(
                    "action `set_rollout` needs param `percentage` (0 to 100)",
                ));
            }
            (_, Some(p)) if p > 100 => {
                return Err(Failure::fatal(format!(
                    "param `percentage` must be from 0 to 100, got {p}"
                )));
            }
            (_, p) => p.unwrap_or_default(),
        };
        Ok(Self {
            url,
            project: raw.project,
            feature: raw.feature,
            environment: raw.environment,
            action: raw.action,
            token_secret: raw.token_secret,
            percentage,
            strategy_id: raw.strategy_id,
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
        "action": params.action.name(),
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
