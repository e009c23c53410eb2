//! Alertmanager webhook v4 payloads, in the format of Alertmanager's `webhook_config` docs.

use medic_intake::{IntakeError, Source, alertmanager, labels_fingerprint};
use medic_model::IncidentStatus;

const GROUP: &[u8] = include_bytes!("payloads/alertmanager-group.json");

fn err(body: &str) -> (String, u16) {
    let e = alertmanager::parse(body.as_bytes()).expect_err("should be refused");
    (e.to_string(), e.http_status())
}

#[test]
fn a_group_yields_every_alert_firing_and_resolved() {
    let alerts = alertmanager::parse(GROUP).unwrap();
    assert_eq!(alerts.len(), 2);
    let group_key = r#"{}/{severity="critical"}:{alertname="CheckoutErrorRate"}"#;

    let firing = &alerts[0];
    assert_eq!(firing.source, Source::Alertmanager);
    assert_eq!(firing.status, IncidentStatus::Firing);
    assert_eq!(firing.fingerprint, "8a1f4c2b9d0e7f13");
    assert_eq!(
        firing.title,
        "CheckoutErrorRate — 5xx rate above 5% on checkout-1"
    );
    assert_eq!(firing.severity, "critical");
    assert_eq!(firing.labels["instance"], "checkout-1:8080");
    assert_eq!(
        firing.annotations["runbook_url"],
        "https://runbooks.example.org/checkout-errors"
    );
    assert_eq!(
        firing.starts_at.as_deref(),
        Some("2024-05-01T12:03:41.738Z")
    );
    assert_eq!(firing.ends_at, None, "Go's zero time means not set");
    assert_eq!(firing.group_key.as_deref(), Some(group_key));

    let resolved = &alerts[1];
    assert_eq!(resolved.status, IncidentStatus::Resolved);
    assert_eq!(resolved.fingerprint, "f3e2d1c0b9a87654");
    assert_eq!(resolved.title, "CheckoutErrorRate", "no summary annotation");
    assert_eq!(
        resolved.starts_at.as_deref(),
        Some("2024-05-01T13:51:11.22+02:00")
    );
    assert_eq!(resolved.ends_at.as_deref(), Some("2024-05-01T12:06:26.5Z"));
    assert_eq!(resolved.group_key.as_deref(), Some(group_key));
}

#[test]
fn to_incident_uses_the_fingerprint_and_utc() {
    let alerts = alertmanager::parse(GROUP).unwrap();
    let incident = alerts[1].to_incident("2024-05-01T12:10:00Z");
    assert_eq!(incident.id, "f3e2d1c0b9a87654");
    assert_eq!(incident.title, "CheckoutErrorRate");
    assert_eq!(incident.severity, "critical");
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert_eq!(incident.started_at, "2024-05-01T11:51:11.22Z");
    assert_eq!(incident.source, "alertmanager");
    assert_eq!(incident.labels, alerts[1].labels);
    assert_eq!(incident.annotations, alerts[1].annotations);
}

#[test]
fn without_start_time_the_incident_starts_now() {
    let body = r#"{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A"},
        "startsAt":"0001-01-01T00:00:00Z"}]}"#;
    let alerts = alertmanager::parse(body.as_bytes()).unwrap();
    assert_eq!(alerts[0].starts_at, None);
    assert_eq!(
        alerts[0].to_incident("2024-05-01T12:00:00Z").started_at,
        "2024-05-01T12:00:00Z"
    );
}

#[test]
fn unknown_fields_are_accepted() {
    let body = r#"{"version":"4","newTopLevel":{"x":[1,2]},"alerts":[{"status":"firing",
        "labels":{"alertname":"A"},"fingerprint":"abc","somethingNew":true}]}"#;
    let alerts = alertmanager::parse(body.as_bytes()).unwrap();
    assert_eq!(alerts[0].fingerprint, "abc");
    assert_eq!(alerts[0].severity, "unknown");
    assert_eq!(alerts[0].group_key, None);
}

#[test]
fn without_fingerprint_the_labels_identify_the_alert() {
    let body = r#"{"version":"4","alerts":[
        {"status":"firing","labels":{"alertname":"A","job":"x"}},
        {"status":"resolved","labels":{"job":"x","alertname":"A"}}]}"#;
    let alerts = alertmanager::parse(body.as_bytes()).unwrap();
    assert_eq!(
        alerts[0].fingerprint,
        labels_fingerprint(&alerts[0].labels, "")
    );
    assert_eq!(
        alerts[0].fingerprint, alerts[1].fingerprint,
        "label order does not matter"
    );
    assert_eq!(alerts[0].fingerprint.len(), 16);
}

#[test]
fn an_empty_group_is_no_alerts() {
    assert_eq!(
        alertmanager::parse(br#"{"version":"4","alerts":[]}"#).unwrap(),
        vec![]
    );
}

#[test]
fn malformed_json_is_400_with_its_position() {
    let body = "{\"version\": \"4\",\n \"alerts\": [\n   {\"status\": }]}";
    assert_eq!(
        err(body),
        (
            "alertmanager payload: invalid JSON at line 3 column 15: expected value".into(),
            400
        )
    );
    assert_eq!(
        err(""),
        (
            "alertmanager payload: invalid JSON at line 1 column 0: EOF while parsing a value"
                .into(),
            400
        )
    );
    let e = alertmanager::parse(b"{\"version\": \"\xff\"}").unwrap_err();
    assert!(matches!(e, IntakeError::Json { .. }), "{e}");
    assert_eq!(e.http_status(), 400);
}

#[test]
fn another_version_is_422() {
    assert_eq!(
        err(r#"{"version": "3", "alerts": []}"#),
        (
            r#"unsupported Alertmanager webhook version "3" (medic reads version 4)"#.into(),
            422
        )
    );
    assert_eq!(
        err(r#"{"version": 5}"#),
        (
            r#"unsupported Alertmanager webhook version "5" (medic reads version 4)"#.into(),
            422
        )
    );
    assert_eq!(
        err(r#"{"alerts": []}"#),
        (
            r#"alertmanager payload: version: missing; this endpoint reads webhook payloads with "version": "4""#
                .into(),
            422
        )
    );
}

#[test]
fn wrong_shapes_are_422_and_say_where() {
    let cases = [
        (
            r#"[]"#,
            "alertmanager payload: expected an object, found an array",
        ),
        (
            r#"{"version":"4"}"#,
            "alertmanager payload: alerts: missing",
        ),
        (
            r#"{"version":"4","alerts":{}}"#,
            "alertmanager payload: alerts: expected an array of alerts, found an object",
        ),
        (
            r#"{"version":"4","alerts":[{"status":"firing","labels":{}},{"status":"firing"},
                {"status":"firing","labels":["a"]}]}"#,
            "alertmanager payload: alerts[2].labels: expected an object of strings, found an array",
        ),
        (
            r#"{"version":"4","alerts":[{"status":"firing","labels":{"port":8080}}]}"#,
            "alertmanager payload: alerts[0].labels.port: expected a string, found a number",
        ),
        (
            r#"{"version":"4","alerts":[{"status":"firing","annotations":{"odd key":{}}}]}"#,
            r#"alertmanager payload: alerts[0].annotations["odd key"]: expected a string, found an object"#,
        ),
        (
            r#"{"version":"4","alerts":[{"status":"pending"}]}"#,
            r#"alertmanager payload: alerts[0].status: expected "firing" or "resolved", found "pending""#,
        ),
        (
            r#"{"version":"4","alerts":[{"labels":{}}]}"#,
            "alertmanager payload: alerts[0].status: missing",
        ),
        (
            r#"{"version":"4","alerts":[7]}"#,
            "alertmanager payload: alerts[0]: expected an object, found a number",
        ),
        (
            r#"{"version":"4","groupKey":1,"alerts":[]}"#,
            "alertmanager payload: groupKey: expected a string, found a number",
        ),
        (
            r#"{"version":["4"]}"#,
            r#"alertmanager payload: version: expected the string "4", found an array"#,
        ),
    ];
    for (body, message) in cases {
        assert_eq!(err(body), (message.to_string(), 422), "{body}");
    }
}

#[test]
fn without_alertname_or_summary_the_title_names_the_fingerprint() {
    let body = r#"{"version":"4","alerts":[
        {"status":"firing","labels":{"job":"x"},"fingerprint":"0f0f"},
        {"status":"firing","labels":{"job":"x"},"annotations":{"summary":"Disk full"}}]}"#;
    let alerts = alertmanager::parse(body.as_bytes()).unwrap();
    assert_eq!(alerts[0].title, "alert 0f0f");
    assert_eq!(alerts[1].title, "Disk full");
}

#[test]
fn sources_are_named_as_triggers_name_them() {
    for source in Source::ALL {
        assert_eq!(Source::parse(source.as_str()), Some(source));
        assert_eq!(
            serde_json::to_value(source).unwrap(),
            serde_json::Value::from(source.as_str())
        );
    }
    assert_eq!(Source::PagerDuty.to_string(), "pagerduty");
    assert_eq!(Source::parse("nagios"), None);
}

#[test]
fn times_medic_cannot_read_cost_nothing_but_a_note() {
    let body = r#"{"version":"4","alerts":[
        {"status":"firing","fingerprint":"a","startsAt":"yesterday","endsAt":"2024-02-30T00:00:00Z"}]}"#;
    let alerts = alertmanager::parse(body.as_bytes()).unwrap();
    assert_eq!(
        (alerts[0].starts_at.as_ref(), alerts[0].ends_at.as_ref()),
        (None, None)
    );
    assert_eq!(
        alerts[0].notes,
        [
            "alertmanager alerts[0].startsAt \"yesterday\" is not a time medic reads (RFC 3339 \
             like 2024-05-01T10:00:00Z, or one of the formats in docs/serve.md); the receive \
             time is used instead",
            "alertmanager alerts[0].endsAt \"2024-02-30T00:00:00Z\" is not a time medic reads \
             (RFC 3339 like 2024-05-01T10:00:00Z, or one of the formats in docs/serve.md); the \
             receive time is used instead",
        ]
    );
    let incident = alerts[0].to_incident("2024-05-01T12:00:00Z");
    assert_eq!(incident.started_at, "2024-05-01T12:00:00Z");
    assert_eq!(incident.notes.len(), 2);
}
