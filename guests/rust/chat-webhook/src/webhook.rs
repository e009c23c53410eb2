//! The step's pure logic: parameter parsing, the Slack-format payload, and how the receiver's
//! answer becomes an output or a failure.
//!
//! Nothing here touches WIT bindings or WASI, so it is unit-tested on the host target
//! (`cargo test -p chat-webhook`); `lib.rs` does the I/O. The webhook URL is a credential (the
//! path is the key), so no message built here ever contains it: only its host.

use medic_step::http::excerpt;
use medic_step::{Failure, params, retry_after_ms};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// JSON Schema (draft 2020-12) of the `with:` parameters. `medic validate` checks workflows
/// against it; [`Params::check`] enforces the same rules at run time.
pub const PARAMS_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "chat-webhook params",
  "type": "object",
  "properties": {
    "url_secret": {
      "type": "string",
      "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
      "description": "Name of the secret holding the incoming-webhook URL (the URL is the credential); list it in the step's secrets and its host in allow"
    },
    "text": {
      "type": "string",
      "minLength": 1,
      "description": "Message text (Slack mrkdwn / Markdown); with blocks, the notification fallback"
    },
    "blocks": {
      "type": "array",
      "minItems": 1,
      "items": {
        "type": "object",
        "properties": {"type": {"type": "string", "minLength": 1}},
        "required": ["type"]
      },
      "description": "Slack Block Kit blocks, passed through unchanged"
    },
    "username": {"type": "string", "minLength": 1, "description": "Override the poster's name, where the webhook allows it"},
    "icon_emoji": {
      "type": "string",
      "pattern": "^:[^:\\s]+:$",
      "description": "Override the poster's icon with an emoji, e.g. :rotating_light:"
    }
  },
  "required": ["url_secret"],
  "anyOf": [{"required": ["text"]}, {"required": ["blocks"]}],
  "additionalProperties": false
}"##;

/// How much of the answer the step reads: receivers answer `ok` or a short error.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The `with:` parameters as written; [`Params`] checks them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    url_secret: String,
    text: Option<String>,
    blocks: Option<Value>,
    username: Option<String>,
    icon_emoji: Option<String>,
}

/// The validated `with:` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub url_secret: String,
    pub text: Option<String>,
    pub blocks: Option<Vec<Value>>,
    pub username: Option<String>,
    pub icon_emoji: Option<String>,
}

impl Params {
    /// Checks the params as written; errors name the param.
    pub fn check(raw: Raw) -> Result<Self, Failure> {
        // Not echoed by the check: someone may have pasted the URL itself here.
        params::secret_name("url_secret", &raw.url_secret)?;
        let text = raw.text;
        if text.as_deref() == Some("") {
            return Err(Failure::fatal("param `text` must not be empty"));
        }
        let blocks = match raw.blocks {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if !items.is_empty() => {
                for (i, block) in items.iter().enumerate() {
                    let typed = block
                        .get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !t.is_empty());
                    if !block.is_object() || !typed {
                        return Err(Failure::fatal(format!(
                            "param `blocks[{i}]` must be an object with a `type` (a Block Kit block such as {{\"type\": \"section\", ...}})"
                        )));
                    }
                }
                Some(items)
            }
            Some(_) => {
                return Err(Failure::fatal(
                    "param `blocks` must be a non-empty list of Block Kit blocks",
                ));
            }
        };
        if text.is_none() && blocks.is_none() {
            return Err(Failure::fatal(
                "params need `text` or `blocks` (or both: `text` is then the notification fallback)",
            ));
        }
        let username = raw.username;
        let icon_emoji = raw.icon_emoji;
        if let Some(icon) = &icon_emoji {
            let ok = icon.len() > 2
                && icon.starts_with(':')
                && icon.ends_with(':')
                && !icon[1..icon.len() - 1].contains([':', ' ']);
            if !ok {
                return Err(Failure::fatal(format!(
                    "param `icon_emoji` must look like :name:, got {icon:?}"
                )));
            }
        }
        Ok(Params {
            url_secret: raw.url_secret,
            text,
            blocks,
            username,
            icon_emoji,
        })
    }

    /// The JSON payload, in the shape Slack documents for incoming webhooks (which Mattermost
    /// and Rocket.Chat accept too).
    pub fn payload(&self) -> Value {
        let mut body = Map::new();
        if let Some(text) = &self.text {
            body.insert("text".into(), json!(text));
        }
        if let Some(blocks) = &self.blocks {
            body.insert("blocks".into(), Value::Array(blocks.clone()));
        }
        if let Some(username) = &self.username {
            body.insert("username".into(), json!(username));
        }
        if let Some(icon) = &self.icon_emoji {
            body.insert("icon_emoji".into(), json!(icon));
        }
        Value::Object(body)
    }
}

/// A non-2xx answer as a failure: the status and the receiver's short reason (Slack answers
/// e.g. `400 invalid_payload`, `403 invalid_token`, `404 no_service`). 429 and 5xx are worth
/// retrying; 429's `Retry-After` (seconds) is honoured.
pub fn refusal(host: &str, status: u16, body: &[u8], retry_after_header: Option<&str>) -> Failure {
    let reason = excerpt(body);
    let hint = match (status, reason.as_str()) {
        (_, "invalid_payload") => " (the receiver rejected the message's shape)",
        (403, _) | (_, "invalid_token") => " (the webhook was revoked or the URL is wrong)",
        (404, _) | (_, "no_service" | "no_team" | "channel_not_found") => {
            " (the webhook does not exist: check the URL in the secret)"
        }
        (410, _) | (_, "channel_is_archived") => " (the channel is archived)",
        _ => "",
    };
    let separator = if reason.is_empty() { "" } else { " " };
    let retry_after_ms = (status == 429)
        .then(|| retry_after_ms(retry_after_header))
        .flatten();
    Failure::remote(
        status,
        format!("webhook at {host} answered {status}{separator}{reason}{hint}"),
    )
    .with_retry_after(retry_after_ms)
}

#[cfg(test)]
mod tests;
