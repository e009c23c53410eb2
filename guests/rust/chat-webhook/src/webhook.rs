//! The step's pure logic: parameter parsing, the Slack-format payload, and how the receiver's
//! answer becomes an output or a failure.
//!
//! Nothing here touches WIT bindings or WASI, so it is unit-tested on the host target
//! (`cargo test -p chat-webhook`); `lib.rs` does the I/O. The webhook URL is a credential (the
//! path is the key), so no message built here ever contains it: only its host.

use serde_json::{Map, Value, json};

/// JSON Schema (draft 2020-12) of the `with:` parameters. `medic validate` checks workflows
/// against it; [`Params::parse`] enforces the same rules at run time.
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

pub use guest_http::Failure;

/// The validated `with:` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub url_secret: String,
    pub text: Option<String>,
    pub blocks: Option<Vec<Value>>,
    pub username: Option<String>,
    pub icon_emoji: Option<String>,
}

const KNOWN: [&str; 5] = ["url_secret", "text", "blocks", "username", "icon_emoji"];

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
        let url_secret = optional_string(&fields, "url_secret")?
            .ok_or_else(|| Failure::fatal("missing required param `url_secret`"))?;
        let name_ok = url_secret.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && url_secret
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            // Deliberately not echoed: someone may have pasted the URL itself here.
            return Err(Failure::fatal(
                "param `url_secret` must be a secret name (letters, digits and _): it names the \
                 secret holding the webhook URL, it is not the URL itself",
            ));
        }
        let text = optional_string(&fields, "text")?;
        if text.as_deref() == Some("") {
            return Err(Failure::fatal("param `text` must not be empty"));
        }
        let blocks = match fields.get("blocks") {
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
                Some(items.clone())
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
        let username = optional_string(&fields, "username")?;
        let icon_emoji = optional_string(&fields, "icon_emoji")?;
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
            url_secret,
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

fn optional_string(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, Failure> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Failure::fatal(format!(
            "param `{name}` must be a string, got {}",
            kind(other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The host (and port) of a webhook URL, the only part of it that may be shown: the path
/// carries the key. `None` when it is not an http(s) URL with a host.
pub fn url_host(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = &url[scheme_end + 3..];
    let authority = rest.split(['/', '?', '#']).next()?;
    // userinfo@host: the userinfo is a credential too.
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    (!host.is_empty()).then_some(host)
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
        .then(|| guest_http::retry_after_ms(retry_after_header))
        .flatten();
    Failure::remote(
        status,
        format!("webhook at {host} answered {status}{separator}{reason}{hint}"),
    )
    .with_retry_after(retry_after_ms)
}

/// The start of the answer, on one line, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = line.chars().take(200).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests;
