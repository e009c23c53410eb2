//! Generic JSON webhooks, read through a field mapping from the engine configuration.
//!
//! Tools without a module of their own post whatever JSON they post; the mapping says,
//! with [JSON pointers](https://www.rfc-editor.org/rfc/rfc6901) (`/alert/title`,
//! `/labels`), where each of medic's fields is. A JSON object is one alert; a JSON array
//! is one alert per element, and the pointers are then relative to each element.
//!
//! Only the title is required. Everything else has a default, because a generic sender
//! rarely retries a 4xx and a refused alert is a lost one: severity from the `severity`
//! label (else `unknown`), firing unless the status is one of the resolved values, and
//! a hash of the labels as fingerprint.

use crate::json::{Ctx, kind_of};
use crate::{Alert, IntakeError, Source, labels_fingerprint, severity_from};
use medic_model::IncidentStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Field mapping from engine config: JSON pointers into the payload (or into each element
/// of an array payload).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// Required: where the alert's title is.
    pub title: String,
    /// Where the severity is; without it, the `severity` label, else `unknown`.
    #[serde(default)]
    pub severity: Option<String>,
    /// Where the status is: one of `resolved_values` is resolved, anything else firing.
    #[serde(default)]
    pub status: Option<String>,
    /// Where the alert's stable identity is; without it (or when the payload lacks the
    /// field), a hash of the labels.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// An object whose members become labels (strings; numbers and booleans as text).
    #[serde(default)]
    pub labels: Option<String>,
    /// An object whose members become annotations.
    #[serde(default)]
    pub annotations: Option<String>,
    /// When the alert started: RFC 3339, or another format
    /// [`medic_model::time::read`] reads; anything else is replaced by the receive time,
    /// with a note on the incident.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// The values of the status field that mean resolved, compared ignoring ASCII case and
    /// surrounding spaces. Empty: `["resolved"]`.
    #[serde(default)]
    pub resolved_values: Vec<String>,
}

impl Mapping {
    /// Check the pointers, so that a configuration mistake is reported when the engine
    /// starts rather than as "missing" on every request. [`parse`] checks too.
    ///
    /// # Errors
    ///
    /// [`IntakeError::Mapping`] naming the field whose pointer is empty or not a JSON
    /// pointer.
    pub fn validate(&self) -> Result<(), IntakeError> {
        if self.title.is_empty() {
            return Err(IntakeError::Mapping {
                field: "title",
                message: "must point at the title, e.g. \"/title\"".into(),
            });
        }
        let fields = [
            ("title", Some(&self.title)),
            ("severity", self.severity.as_ref()),
            ("status", self.status.as_ref()),
            ("fingerprint", self.fingerprint.as_ref()),
            ("labels", self.labels.as_ref()),
            ("annotations", self.annotations.as_ref()),
            ("starts_at", self.starts_at.as_ref()),
        ];
        for (field, pointer) in fields {
            if let Some(p) = pointer
                && let Err(why) = check_pointer(p)
            {
                return Err(IntakeError::Mapping {
                    field,
                    message: format!("{p:?} is not a JSON pointer: {why}"),
                });
            }
        }
        Ok(())
    }
}

/// RFC 6901: empty (the whole value), or `/`-separated tokens in which `~` is only ever
/// `~0` or `~1`.
fn check_pointer(p: &str) -> Result<(), &'static str> {
    if !p.is_empty() && !p.starts_with('/') {
        return Err("it must start with \"/\", e.g. \"/alert/title\"");
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err("\"~\" must be written \"~0\" (and \"/\" inside a name \"~1\")");
        }
    }
    Ok(())
}

/// A JSON object is one alert; a JSON array is one alert per element.
///
/// # Errors
///
/// [`IntakeError::Mapping`] for a mapping that [`Mapping::validate`] refuses,
/// [`IntakeError::Json`] for a body that is not JSON, [`IntakeError::Shape`] for a payload
/// that is neither an object nor an array, or the first element that lacks its title or
/// has a field of the wrong type. [`crate::read`] answers for each element instead.
pub fn parse(body: &[u8], mapping: &Mapping) -> Result<Vec<Alert>, IntakeError> {
    parse_items(body, mapping)?.into_iter().collect()
}

/// Each element's alert or error; errors of the payload as a whole are the `Err`.
pub(crate) fn parse_items(
    body: &[u8],
    mapping: &Mapping,
) -> Result<Vec<Result<Alert, IntakeError>>, IntakeError> {
    mapping.validate()?;
    let cx = Ctx(Source::Generic);
    let doc = cx.json(body)?;
    match &doc {
        Value::Object(_) => Ok(vec![one(cx, &doc, "", mapping)]),
        Value::Array(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, item)| one(cx, item, &format!("/{i}"), mapping))
            .collect()),
        other => Err(cx.shape(
            "",
            format!(
                "expected a JSON object (one alert) or an array of them, found {}",
                kind_of(other)
            ),
        )),
    }
}

/// One alert from `item`, found at `base` (a JSON pointer) in the payload.
fn one(cx: Ctx, item: &Value, base: &str, m: &Mapping) -> Result<Alert, IntakeError> {
    if !item.is_object() {
        return Err(cx.shape(base, format!("expected an object, found {}", kind_of(item))));
    }
    let at = |ptr: &str| format!("{base}{ptr}");
    // An unmapped field reads as absent.
    let field = |ptr: Option<&String>| -> Result<Option<String>, IntakeError> {
        match ptr {
            None => Ok(None),
            Some(p) => scalar(cx, item.pointer(p), &at(p)),
        }
    };

    let title = match field(Some(&m.title))? {
        Some(t) if !t.trim().is_empty() => t,
        Some(_) => return Err(cx.shape(&at(&m.title), "is empty; an alert needs a title")),
        None => {
            return Err(cx.shape(
                &at(&m.title),
                "missing (the mapping takes the alert's title from here)",
            ));
        }
    };
    let from = |ptr: &Option<String>| ptr.as_ref().and_then(|p| item.pointer(p));
    let labels = cx.string_map(
        from(&m.labels),
        &at(m.labels.as_deref().unwrap_or("")),
        true,
    )?;
    let annotations = cx.string_map(
        from(&m.annotations),
        &at(m.annotations.as_deref().unwrap_or("")),
        true,
    )?;
    let severity = field(m.severity.as_ref())?
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| severity_from(&labels));
    let status = match field(m.status.as_ref())? {
        Some(s) if is_resolved(&s, &m.resolved_values) => IncidentStatus::Resolved,
        _ => IncidentStatus::Firing,
    };
    let fingerprint = field(m.fingerprint.as_ref())?
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| labels_fingerprint(&labels, &title));
    let mut notes = Vec::new();
    let starts_at = match &m.starts_at {
        None => None,
        Some(p) => cx.time(field(Some(p))?.as_deref(), &at(p), &mut notes),
    };
    Ok(Alert {
        source: Source::Generic,
        status,
        fingerprint,
        title,
        severity,
        labels,
        annotations,
        starts_at,
        ends_at: None,
        group_key: None,
        notes,
    })
}

/// A string, number or boolean as text; `null` and absent are `None`.
fn scalar(cx: Ctx, v: Option<&Value>, path: &str) -> Result<Option<String>, IntakeError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(other) => Err(cx.shape(path, format!("expected a string, found {}", kind_of(other)))),
    }
}

fn is_resolved(status: &str, resolved_values: &[String]) -> bool {
    let status = status.trim();
    if resolved_values.is_empty() {
        return status.eq_ignore_ascii_case("resolved");
    }
    resolved_values
        .iter()
        .any(|v| v.trim().eq_ignore_ascii_case(status))
}
