//! The one entry point: a payload, its format (given or detected), and every element's
//! alert or the reason it was refused.

use crate::generic::Mapping;
use crate::json::{Ctx, kind_of};
use crate::{Alert, IntakeError, Source, alertmanager, generic, grafana, pagerduty, simple};
use serde_json::Value;

/// What one payload holds: per element, its alert or why it was refused, in payload
/// order. One bad element never costs the others: a server stores the good ones and
/// answers for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The format the payload was read as.
    pub source: Source,
    /// One entry per element of the payload (an Alertmanager or Grafana group's alerts, a
    /// generic array's items; one for the other formats, none for a PagerDuty event that
    /// is not about an incident).
    pub items: Vec<Result<Alert, IntakeError>>,
}

impl Batch {
    /// The alerts that were read, in payload order.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.items.iter().filter_map(|r| r.as_ref().ok())
    }

    /// Every alert, or the first element's error: for callers that take a payload whole
    /// (`medic run --alert`).
    ///
    /// # Errors
    ///
    /// The error of the first element that was refused.
    pub fn into_alerts(self) -> Result<Vec<Alert>, IntakeError> {
        self.items.into_iter().collect()
    }
}

/// Reads `body` as `source` says. Every webhook and `medic run` go through here.
///
/// # Errors
///
/// Errors about the payload as a whole (not JSON, not the shape or version of the format,
/// an empty generic array, no [`Mapping`] for [`Source::Generic`]); errors of single
/// elements are in [`Batch::items`].
pub fn read(source: Source, body: &[u8], generic: Option<&Mapping>) -> Result<Batch, IntakeError> {
    let cx = Ctx(source);
    let items = match source {
        Source::Alertmanager => {
            alertmanager::parse_group(cx, &cx.json(body)?, alertmanager::VERSION)?
        }
        Source::Grafana => alertmanager::parse_group(cx, &cx.json(body)?, grafana::VERSION)?,
        Source::PagerDuty => pagerduty::parse(body)?.into_iter().map(Ok).collect(),
        Source::Generic => {
            let mapping = generic.ok_or(IntakeError::Mapping {
                field: "title",
                message: "no generic mapping is configured".into(),
            })?;
            generic::parse_items(body, mapping)?
        }
        Source::Cli => simple::parse(body)?.into_iter().map(Ok).collect(),
    };
    Ok(Batch { source, items })
}

/// The format of a payload that arrives without a source (a file given to `medic run
/// --alert`): an object with an `alerts` array is an Alertmanager notification, or a
/// Grafana one when its `version` is Grafana's (`"1"`) or it has Grafana's `orgId`; an
/// object with an `event` object is a PagerDuty v3 webhook; any other object is medic's
/// own document ([`simple`]). Generic payloads need their mapping, so they are never
/// detected.
///
/// # Errors
///
/// [`IntakeError::Json`] when the body is not JSON, [`IntakeError::Shape`] when it is not
/// an object.
pub fn detect(body: &[u8]) -> Result<Source, IntakeError> {
    let cx = Ctx(Source::Cli);
    let doc = cx.json(body)?;
    let Value::Object(obj) = &doc else {
        return Err(cx.shape(
            "",
            format!(
                "expected an alert: a JSON object (medic's own alert document, or an \
                 Alertmanager, Grafana or PagerDuty webhook payload), found {}",
                kind_of(&doc)
            ),
        ));
    };
    Ok(if obj.get("alerts").is_some_and(Value::is_array) {
        let grafana = obj.get("version").and_then(Value::as_str) == Some(grafana::VERSION)
            || obj.contains_key("orgId");
        if grafana {
            Source::Grafana
        } else {
            Source::Alertmanager
        }
    } else if obj.get("event").is_some_and(Value::is_object) {
        Source::PagerDuty
    } else {
        Source::Cli
    })
}

/// [`detect`], then [`read`]: a payload in any format but generic.
///
/// # Errors
///
/// As [`detect`] and [`read`].
pub fn read_any(body: &[u8]) -> Result<Batch, IntakeError> {
    read(detect(body)?, body, None)
}
