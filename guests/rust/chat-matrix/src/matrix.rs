//! The step's pure logic: parameter parsing, request paths and bodies, and how a homeserver's
//! answer becomes an output or a failure.
//!
//! Nothing here touches WIT bindings or WASI, so it is unit-tested on the host target
//! (`cargo test -p chat-matrix`); `lib.rs` does the I/O.

use medic_step::http::excerpt;
use medic_step::url::{PathPrefix, base_url};
use medic_step::{Failure, params, retry_after_ms};
use serde::Deserialize;
use serde_json::{Value, json};

/// JSON Schema (draft 2020-12) of the `with:` parameters. `medic validate` checks workflows
/// against it; [`Params::check`] enforces the same rules at run time, because a template can
/// still produce a bad value.
pub const PARAMS_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "chat-matrix params",
  "type": "object",
  "properties": {
    "homeserver": {
      "type": "string",
      "pattern": "^[hH][tT][tT][pP][sS]?://[^/?#]+(/[^?#]*)?$",
      "description": "Base URL of the homeserver's client-server API, e.g. https://matrix.example.org; its host must be in the step's allow list"
    },
    "token_secret": {
      "type": "string",
      "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
      "description": "Name of the secret holding the bot's access token; list it in the step's secrets"
    },
    "action": {
      "enum": ["post", "open_war_room"],
      "description": "post: send a message to a room; open_war_room: create a room with a name and topic and invite people"
    },
    "room": {
      "type": "string",
      "pattern": "^([!][^\\s]+|#[^\\s:]+:[^\\s]+)$",
      "description": "post: room id (!abc:example.org) or alias (#incidents:example.org)"
    },
    "text": {"type": "string", "minLength": 1, "description": "post: plain-text message body"},
    "html": {"type": "string", "minLength": 1, "description": "post: HTML rendering of the message (formatted_body)"},
    "format": {
      "type": "string",
      "default": "org.matrix.custom.html",
      "description": "post: format of html; Matrix defines only org.matrix.custom.html"
    },
    "msgtype": {
      "enum": ["m.text", "m.notice"],
      "default": "m.text",
      "description": "post: m.text, or m.notice for messages clients show as from a bot"
    },
    "name": {"type": "string", "minLength": 1, "description": "open_war_room: room name"},
    "topic": {"type": "string", "description": "open_war_room: room topic"},
    "invite": {
      "type": "array",
      "items": {"type": "string", "pattern": "^@[^\\s:]+:[^\\s]+$"},
      "description": "open_war_room: user ids to invite (@alice:example.org)"
    },
    "alias": {
      "type": "string",
      "pattern": "^#?[^\\s:#]+(:[^\\s]+)?$",
      "description": "open_war_room: alias local part (inc-1234) or full alias (#inc-1234:example.org) for the room"
    }
  },
  "required": ["homeserver", "token_secret", "action"],
  "additionalProperties": false,
  "allOf": [
    {
      "if": {"properties": {"action": {"const": "post"}}, "required": ["action"]},
      "then": {
        "required": ["room", "text"],
        "properties": {"name": false, "topic": false, "invite": false, "alias": false}
      }
    },
    {
      "if": {"properties": {"action": {"const": "open_war_room"}}, "required": ["action"]},
      "then": {
        "required": ["name"],
        "properties": {"room": false, "text": false, "html": false, "format": false, "msgtype": false}
      }
    },
    {"dependentRequired": {"format": ["html"]}}
  ]
}"##;

/// The only `format` the Matrix spec defines for `formatted_body`.
pub const HTML_FORMAT: &str = "org.matrix.custom.html";

/// The step-state key holding the war room this step created, so a retry reuses it.
pub const ROOM_STATE_KEY: &str = "war_room_id";

/// How much of a response body the step reads: Matrix answers are small JSON documents.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The validated `with:` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Without a trailing `/`.
    pub homeserver: String,
    pub token_secret: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Post(Post),
    OpenWarRoom(WarRoom),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    pub room: String,
    pub text: String,
    pub html: Option<String>,
    pub format: String,
    pub msgtype: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WarRoom {
    pub name: String,
    pub topic: Option<String>,
    pub invite: Vec<String>,
    /// The alias local part (`inc-1234` for `#inc-1234:example.org`).
    pub alias: Option<String>,
}

/// The `with:` parameters as written; [`Params`] checks them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    homeserver: String,
    token_secret: String,
    action: String,
    room: Option<String>,
    text: Option<String>,
    html: Option<String>,
    format: Option<String>,
    msgtype: Option<String>,
    name: Option<String>,
    topic: Option<String>,
    invite: Option<Vec<String>>,
    alias: Option<String>,
}

const POST_FIELDS: [&str; 5] = ["room", "text", "html", "format", "msgtype"];
const WAR_ROOM_FIELDS: [&str; 4] = ["name", "topic", "invite", "alias"];

impl Params {
    /// Checks the params as written; errors name the param.
    pub fn check(raw: Raw) -> Result<Self, Failure> {
        let homeserver = check_homeserver(&raw.homeserver)?;
        params::secret_name("token_secret", &raw.token_secret)?;
        let given = |field: &str| match field {
            "room" => raw.room.is_some(),
            "text" => raw.text.is_some(),
            "html" => raw.html.is_some(),
            "format" => raw.format.is_some(),
            "msgtype" => raw.msgtype.is_some(),
            "name" => raw.name.is_some(),
            "topic" => raw.topic.is_some(),
            "invite" => raw.invite.is_some(),
            _ => raw.alias.is_some(),
        };
        let (own, other): (&[&str], &[&str]) = match raw.action.as_str() {
            "post" => (&POST_FIELDS, &WAR_ROOM_FIELDS),
            "open_war_room" => (&WAR_ROOM_FIELDS, &POST_FIELDS),
            other => {
                return Err(Failure::fatal(format!(
                    "param `action` must be `post` or `open_war_room`, got {other:?}"
                )));
            }
        };
        if let Some(stray) = other.iter().find(|f| given(f)) {
            return Err(Failure::fatal(format!(
                "param `{stray}` does not apply to action `{}` (its params: {})",
                raw.action,
                own.join(", ")
            )));
        }
        let action = if raw.action == "post" {
            Action::Post(parse_post(
                raw.room,
                raw.text,
                raw.html,
                raw.format,
                raw.msgtype,
            )?)
        } else {
            Action::OpenWarRoom(parse_war_room(raw.name, raw.topic, raw.invite, raw.alias)?)
        };
        Ok(Params {
            homeserver,
            token_secret: raw.token_secret,
            action,
        })
    }
}

fn required(name: &str, value: Option<String>) -> Result<String, Failure> {
    value.ok_or_else(|| Failure::fatal(format!("missing required param `{name}`")))
}

fn parse_post(
    room: Option<String>,
    text: Option<String>,
    html: Option<String>,
    format: Option<String>,
    msgtype: Option<String>,
) -> Result<Post, Failure> {
    let room = required("room", room)?;
    check_room(&room)?;
    let text = required("text", text)?;
    if text.is_empty() {
        return Err(Failure::fatal("param `text` must not be empty"));
    }
    if format.is_some() && html.is_none() {
        return Err(Failure::fatal(
            "param `format` needs `html`: it says how `html` is formatted",
        ));
    }
    let msgtype = msgtype.unwrap_or_else(|| "m.text".into());
    if msgtype != "m.text" && msgtype != "m.notice" {
        return Err(Failure::fatal(format!(
            "param `msgtype` must be `m.text` or `m.notice`, got {msgtype:?}"
        )));
    }
    Ok(Post {
        room,
        text,
        html,
        format: format.unwrap_or_else(|| HTML_FORMAT.into()),
        msgtype,
    })
}

fn parse_war_room(
    name: Option<String>,
    topic: Option<String>,
    invite: Option<Vec<String>>,
    alias: Option<String>,
) -> Result<WarRoom, Failure> {
    let name = required("name", name)?;
    params::non_empty("name", &name)?;
    let invite = invite.unwrap_or_default();
    for (i, user) in invite.iter().enumerate() {
        check_user_id(user).map_err(|why| Failure::fatal(format!("param `invite[{i}]`: {why}")))?;
    }
    let alias = alias.map(|a| alias_localpart(&a)).transpose()?;
    Ok(WarRoom {
        name,
        topic,
        invite,
        alias,
    })
}

/// `http(s)://host[:port][/prefix]`, returned without a trailing slash.
fn check_homeserver(url: &str) -> Result<String, Failure> {
    base_url("homeserver", url, PathPrefix::Allowed)
}

fn check_room(room: &str) -> Result<(), Failure> {
    let ok = if let Some(alias) = room.strip_prefix('#') {
        alias
            .split_once(':')
            .is_some_and(|(l, s)| !l.is_empty() && !s.is_empty())
    } else {
        room.strip_prefix('!').is_some_and(|id| !id.is_empty())
    };
    if !ok || room.chars().any(char::is_whitespace) {
        return Err(Failure::fatal(format!(
            "param `room` must be a room id (!abc:example.org) or alias (#incidents:example.org), got {room:?}"
        )));
    }
    Ok(())
}

fn check_user_id(user: &str) -> Result<(), String> {
    let ok = user
        .strip_prefix('@')
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(local, server)| !local.is_empty() && !server.is_empty())
        && !user.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be a Matrix user id such as @alice:example.org, got {user:?}"
        ))
    }
}

/// `inc-1234` or `#inc-1234:example.org` → `inc-1234` (createRoom takes the local part; the
/// homeserver adds its own server name).
fn alias_localpart(alias: &str) -> Result<String, Failure> {
    let bare = alias.strip_prefix('#').unwrap_or(alias);
    let local = bare.split_once(':').map_or(bare, |(l, _)| l);
    if local.is_empty() || local.contains(['#', ':']) || local.chars().any(char::is_whitespace) {
        return Err(Failure::fatal(format!(
            "param `alias` must be an alias local part (inc-1234) or #local:server, got {alias:?}"
        )));
    }
    Ok(local.to_owned())
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters, so room
/// ids (`!a:b`), aliases (`#a:b`) and transaction ids are safe in a path.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The transaction id of a message send. Derived from the invocation's idempotency key (the
/// same for every attempt of this step in this run), so the homeserver answers a retried or
/// resumed send with the first send's event instead of posting again.
pub fn txn_id(idempotency_key: &str) -> String {
    format!("medic-{}", encode_segment(idempotency_key))
}

/// `/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}`.
pub fn send_path(room_id: &str, txn_id: &str) -> String {
    format!(
        "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn_id}",
        encode_segment(room_id)
    )
}

/// `/_matrix/client/v3/directory/room/{alias}`: resolves an alias to a room id.
pub fn alias_path(alias: &str) -> String {
    format!(
        "/_matrix/client/v3/directory/room/{}",
        encode_segment(alias)
    )
}

pub const CREATE_ROOM_PATH: &str = "/_matrix/client/v3/createRoom";
pub const WHOAMI_PATH: &str = "/_matrix/client/v3/account/whoami";

/// The `m.room.message` content of a post.
pub fn message_body(post: &Post) -> Value {
    let mut body = json!({"msgtype": post.msgtype, "body": post.text});
    if let Some(html) = &post.html {
        body["format"] = json!(post.format);
        body["formatted_body"] = json!(html);
    }
    body
}

/// The key in the room's `m.room.create` content that ties a war room to the step that
/// created it.
pub const CREATION_KEY: &str = "medic.idempotency_key";

/// The alias local part of a war room: the one given, else one derived from the idempotency
/// key. Every war room has an alias because the alias is what makes creation safe to repeat:
/// a resent createRoom (an attempt resumed after a crash, while its request was in flight)
/// fails with `M_ROOM_IN_USE` instead of opening a second room.
pub fn war_room_alias(room: &WarRoom, idempotency_key: &str) -> String {
    room.alias
        .clone()
        .unwrap_or_else(|| format!("medic-{}", encode_segment(idempotency_key)))
}

/// The createRoom request: one request sets the name and topic and sends the invites, so a
/// room never exists half set up. `private_chat` makes it invite-only with history visible to
/// members, which is what a war room wants: people invited late read what happened. The
/// creation content records the idempotency key, so a retry can recognise its own room.
pub fn create_room_body(room: &WarRoom, alias: &str, idempotency_key: &str) -> Value {
    let mut body = json!({
        "name": room.name,
        "preset": "private_chat",
        "visibility": "private",
        "invite": room.invite,
        "room_alias_name": alias,
        "creation_content": {CREATION_KEY: idempotency_key},
    });
    if let Some(topic) = &room.topic {
        body["topic"] = json!(topic);
    }
    body
}

/// `/_matrix/client/v3/rooms/{room}/state/m.room.create`.
pub fn create_event_path(room_id: &str) -> String {
    format!(
        "/_matrix/client/v3/rooms/{}/state/m.room.create",
        encode_segment(room_id)
    )
}

/// The `errcode` of an error answer, if it is one.
pub fn errcode(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("errcode")?.as_str().map(str::to_owned)
}

/// The server name of a user id (`@bot:example.org` → `example.org`).
pub fn server_name(user_id: &str) -> Option<&str> {
    user_id.split_once(':').map(|(_, server)| server)
}

/// Reads `field` (a string) from a successful answer.
pub fn answer_field(body: &[u8], field: &str, what: &str) -> Result<String, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Failure::transient(format!("{what}: the homeserver's answer is not JSON ({e})"))
    })?;
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            Failure::transient(format!("{what}: the homeserver's answer has no `{field}`"))
        })
}

/// A non-2xx answer as a failure: the status plus Matrix's `errcode` and `error`, so the
/// person on call sees e.g. `401 M_UNKNOWN_TOKEN: Invalid access token passed.`. 429 and 5xx
/// are worth retrying; 429 carries the wait the server asked for (`retry_after_ms` in the
/// body, else the `Retry-After` header in seconds).
pub fn refusal(what: &str, status: u16, body: &[u8], retry_after_header: Option<&str>) -> Failure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let detail = match (field("errcode"), field("error")) {
        (Some(code), Some(error)) => format!("{code}: {error}"),
        (Some(code), None) => code,
        (None, Some(error)) => error,
        (None, None) => excerpt(body),
    };
    let hint = match field("errcode").as_deref() {
        Some("M_UNKNOWN_TOKEN" | "M_MISSING_TOKEN") => {
            " (check the access token in the secret named by `token_secret`)"
        }
        Some("M_FORBIDDEN") => " (is the bot a member of the room, with permission to do this?)",
        Some("M_ROOM_IN_USE") => " (the alias is taken: pick another `alias`)",
        _ => "",
    };
    let retry_after_ms = if status == 429 {
        let from_body = parsed
            .as_ref()
            .and_then(|v| v.get("retry_after_ms"))
            .and_then(Value::as_u64);
        from_body.or(retry_after_ms(retry_after_header))
    } else {
        None
    };
    let separator = if detail.is_empty() { "" } else { " " };
    Failure::remote(
        status,
        format!("{what}: homeserver answered {status}{separator}{detail}{hint}"),
    )
    .with_retry_after(retry_after_ms)
}

#[cfg(test)]
mod tests;
