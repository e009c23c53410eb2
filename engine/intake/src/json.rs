//! Reading one source's JSON: every error names the source and a path.

use crate::{IntakeError, Source};
use medic_model::time;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Reading JSON for one source: every error carries the source's name and a path.
#[derive(Clone, Copy)]
pub(crate) struct Ctx(pub(crate) Source);

impl Ctx {
    pub(crate) fn json(self, body: &[u8]) -> Result<Value, IntakeError> {
        serde_json::from_slice(body).map_err(|e| IntakeError::Json {
            origin: self.0,
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })
    }

    pub(crate) fn shape(self, path: &str, message: impl Into<String>) -> IntakeError {
        IntakeError::Shape {
            origin: self.0,
            path: path.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn object<'v>(
        self,
        v: &'v Value,
        path: &str,
    ) -> Result<&'v Map<String, Value>, IntakeError> {
        v.as_object()
            .ok_or_else(|| self.shape(path, format!("expected an object, found {}", kind_of(v))))
    }

    /// A required member that must be an object.
    pub(crate) fn member_object<'v>(
        self,
        obj: &'v Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Result<&'v Map<String, Value>, IntakeError> {
        let path = join(parent, key);
        match obj.get(key) {
            None | Some(Value::Null) => Err(self.shape(&path, "missing")),
            Some(v) => self.object(v, &path),
        }
    }

    /// An optional string member; `null` counts as absent.
    pub(crate) fn opt_str<'v>(
        self,
        obj: &'v Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Result<Option<&'v str>, IntakeError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.shape(
                &join(parent, key),
                format!("expected a string, found {}", kind_of(other)),
            )),
        }
    }

    pub(crate) fn req_str<'v>(
        self,
        obj: &'v Map<String, Value>,
        key: &str,
        parent: &str,
    ) -> Result<&'v str, IntakeError> {
        self.opt_str(obj, key, parent)?
            .ok_or_else(|| self.shape(&join(parent, key), "missing"))
    }

    /// Labels or annotations. Vendors send strings only. Generic payloads (`generic`) come
    /// from anything, so there numbers and booleans are taken as their text, `null` values
    /// are left out, and paths are JSON pointers like the mapping's.
    pub(crate) fn string_map(
        self,
        v: Option<&Value>,
        path: &str,
        generic: bool,
    ) -> Result<BTreeMap<String, String>, IntakeError> {
        let map = match v {
            None | Some(Value::Null) => return Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(self.shape(
                    path,
                    format!("expected an object of strings, found {}", kind_of(other)),
                ));
            }
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) if generic => v.to_string(),
                Value::Null if generic => continue,
                other => {
                    let at = if generic {
                        format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"))
                    } else {
                        join(path, k)
                    };
                    return Err(
                        self.shape(&at, format!("expected a string, found {}", kind_of(other)))
                    );
                }
            };
            out.insert(k.clone(), text);
        }
        Ok(out)
    }

    /// A time, as [`medic_model::time::read`] reads it: kept as given when it is RFC 3339,
    /// else normalised to UTC RFC 3339. Go's zero time (`0001-01-01T00:00:00Z`, Alertmanager's
    /// and Grafana's "not set") and the empty string are `None`. A time that is none of the
    /// formats medic reads is `None` too, with a note saying so in `notes`: the alert is
    /// still taken (a refused alert is a lost one) and its incident starts at the receive
    /// time.
    pub(crate) fn time(
        self,
        t: Option<&str>,
        path: &str,
        notes: &mut Vec<String>,
    ) -> Option<String> {
        match t {
            None => None,
            Some(t) if t.trim().is_empty() || t.starts_with("0001-01-01T00:00:00") => None,
            Some(t) if time::to_utc(t).is_some() => Some(t.to_string()),
            Some(t) => match time::read(t) {
                Some(utc) => Some(utc),
                None => {
                    notes.push(format!(
                        "{} {path} {t:?} is not a time medic reads (RFC 3339 like \
                         2024-05-01T10:00:00Z, or one of the formats in docs/serve.md); \
                         the receive time is used instead",
                        self.0
                    ));
                    None
                }
            },
        }
    }
}

/// `parent.key`, or `parent["odd key"]` for keys that are not plain identifiers.
pub(crate) fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::from(key)),
    }
}

/// A JSON value's kind, for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json appends " at line L column C" to its messages; ours says it once, up front.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}
