/*!
medic's alert intake, the one home of "alert → incident": one module per alert format,
each turning a payload into [`Alert`]s, one entry point ([`read`], with [`detect`] for
payloads that come without a source) and one conversion to medic's
[`Incident`](medic_model::Incident)s ([`Alert::to_incident`], [`incident_id`],
[`incidents_for`]). `medic serve` (webhooks) and `medic run --alert` / `medic step test
--incident` (files) read alerts only through here, so the same payload gives the same
incidents and ids whichever command reads it.

| source | module | format |
|---|---|---|
| Prometheus Alertmanager | [`alertmanager`] | webhook payload version 4: every alert of the group |
| Grafana | [`grafana`] | unified alerting webhook contact point (version 1) |
| PagerDuty | [`pagerduty`] | v3 webhooks; [`pagerduty::verify`] checks `X-PagerDuty-Signature` |
| anything else | [`generic`] | JSON with a configured [`generic::Mapping`] of JSON pointers |
| a file | [`simple`] | medic's own alert document (`{"title": ..., "labels": {...}}`) |

Times are read by [`medic_model::time`]: RFC 3339 and the other common formats; a time
that is none of them does not cost the alert, which starts at the receive time with a
note ([`Alert::notes`]). One bad element of a batch never costs the others:
[`Batch::items`] holds each element's alert or error.

Everything here is a pure function of the request bytes: no I/O, no clock (callers pass
`now`), so the HTTP server can call it on any thread and the fuzz targets under `fuzz/`
can feed it anything. Bad input is an [`IntakeError`] whose message says what is wrong and
where, with the HTTP status to answer ([`IntakeError::http_status`]); it never panics.

Vendors add fields to their payloads freely, so unknown fields are ignored everywhere.

# Example

```
let body = br#"{
  "version": "4", "groupKey": "{}:{alertname=\"CheckoutErrors\"}", "status": "firing",
  "alerts": [{
    "status": "firing", "fingerprint": "1a30ba71cca2921f",
    "labels": {"alertname": "CheckoutErrors", "severity": "critical"},
    "annotations": {"summary": "5xx above 5%"},
    "startsAt": "2024-05-01T12:00:00.5+02:00", "endsAt": "0001-01-01T00:00:00Z"
  }]
}"#;
let alerts = medic_intake::alertmanager::parse(body).unwrap();
assert_eq!(alerts[0].title, "CheckoutErrors — 5xx above 5%");
assert_eq!(alerts[0].ends_at, None);
let incident = alerts[0].to_incident("2024-05-01T10:00:01Z");
assert_eq!(incident.id, "1a30ba71cca2921f");
assert_eq!(incident.started_at, "2024-05-01T10:00:00.5Z");

// The same payload from a file: detected, read and converted the same way.
let batch = medic_intake::read_any(body).unwrap();
assert_eq!(batch.source, medic_intake::Source::Alertmanager);
assert_eq!(batch.alerts().next(), Some(&alerts[0]));

let err = medic_intake::alertmanager::parse(b"{\"version\": \"3\"}").unwrap_err();
assert_eq!(err.to_string(), "unsupported Alertmanager webhook version \"3\" (medic reads version 4)");
assert_eq!(err.http_status(), 422);
```
*/

#![warn(missing_docs)]

mod alert;
pub mod alertmanager;
mod error;
pub mod generic;
pub mod grafana;
mod json;
pub mod pagerduty;
mod read;
pub mod simple;

pub use alert::{
    Alert, CRITICAL_SEVERITIES, INFO_SEVERITIES, Source, incident_id, incidents_for, joined,
    labels_fingerprint, severity_rank,
};
pub(crate) use alert::{severity_from, title_from};
pub use error::IntakeError;
pub use read::{Batch, detect, read, read_any};
