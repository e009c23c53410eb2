use super::*;

const NOW: &str = "2024-05-01T12:00:00Z";

#[test]
fn simple_format() {
    let src = r#"{
        "title": "Checkout errors",
        "severity": "critical",
        "labels": {"service": "checkout", "replicas": 3},
        "annotations": {"runbook": "https://runbooks/checkout"},
        "startsAt": "2024-05-01T10:00:00+02:00",
        "vendorExtra": {"ignored": true}
    }"#;
    let inc = incident_from_json(src, NOW).unwrap();
    assert_eq!(inc.title, "Checkout errors");
    assert_eq!(inc.severity, "critical");
    assert_eq!(inc.status, IncidentStatus::Firing);
    assert_eq!(inc.labels["replicas"], "3");
    assert_eq!(inc.annotations["runbook"], "https://runbooks/checkout");
    assert_eq!(inc.started_at, "2024-05-01T08:00:00Z");
    assert_eq!(inc.source, "cli");
    assert_eq!(inc.id.len(), 16);
    // The id only depends on the labels.
    let again = incident_from_json(
        r#"{"title": "other", "labels": {"replicas": "3", "service": "checkout"}}"#,
        NOW,
    )
    .unwrap();
    assert_eq!(again.id, inc.id);
    assert_eq!(again.started_at, NOW);
    assert_eq!(again.severity, "unknown");
}

#[test]
fn simple_format_defaults_and_explicit_fields() {
    let inc = incident_from_json(
        r#"{"labels": {"alertname": "Down", "severity": "page"}, "annotations": {"summary": "api down"},
            "status": "resolved", "source": "pagerduty", "id": "INC-7"}"#,
        NOW,
    )
    .unwrap();
    assert_eq!(inc.title, "Down — api down");
    assert_eq!(inc.severity, "page");
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(inc.source, "pagerduty");
    assert_eq!(inc.id, "INC-7");
}

#[test]
fn alertmanager_webhook() {
    let src = r#"{
        "version": "4", "status": "firing", "receiver": "medic", "groupKey": "{}:{alertname=\"HighErrorRate\"}",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am", "truncatedAlerts": 0,
        "alerts": [
            {"status": "resolved", "labels": {"alertname": "Old"}, "annotations": {}, "startsAt": "2024-05-01T09:00:00Z", "fingerprint": "aaa"},
            {"status": "firing", "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
             "annotations": {"summary": "5xx above 5%", "health_url": "http://checkout/health"},
             "startsAt": "2024-05-01T10:15:30.123Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom", "fingerprint": "c0ffee"}
        ]
    }"#;
    let inc = incident_from_json(src, NOW).unwrap();
    assert_eq!(inc.title, "HighErrorRate — 5xx above 5%");
    assert_eq!(inc.severity, "critical");
    assert_eq!(inc.status, IncidentStatus::Firing);
    assert_eq!(inc.id, "c0ffee");
    assert_eq!(inc.started_at, "2024-05-01T10:15:30.123Z");
    assert_eq!(inc.source, "alertmanager");
    assert_eq!(inc.labels["service"], "checkout");
}

#[test]
fn alertmanager_takes_the_first_alert_when_none_fires() {
    let src = r#"{"version": "4", "alerts": [
        {"status": "resolved", "labels": {"alertname": "A"}, "startsAt": "0001-01-01T00:00:00Z"},
        {"status": "resolved", "labels": {"alertname": "B"}}]}"#;
    let inc = incident_from_json(src, NOW).unwrap();
    assert_eq!(inc.title, "A");
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(inc.severity, "unknown");
    assert_eq!(inc.started_at, NOW);
    assert_eq!(inc.id, labels_id(&inc.labels));
}

#[test]
fn errors_name_the_problem() {
    let cases = [
        (
            "{\"title\": \"x\",\n  oops}",
            "invalid JSON at line 2, column 3: key must be a string",
        ),
        ("[1]", "`(document)`: expected a JSON object"),
        (
            "{}",
            "`title`: missing: give a `title`, or a `labels.alertname`",
        ),
        (
            r#"{"title": 3}"#,
            "`title`: expected a string, found a number",
        ),
        (
            r#"{"title": "x", "status": "open"}"#,
            "`status`: expected `firing` or `resolved`, found `open`",
        ),
        (
            r#"{"title": "x", "labels": {"a": {"b": 1}}}"#,
            "`labels.a`: expected a string, found an object",
        ),
        (
            r#"{"title": "x", "startsAt": "yesterday"}"#,
            "`startsAt`: `yesterday` is not an RFC 3339 time like 2024-05-01T10:00:00Z",
        ),
        (
            r#"{"alerts": []}"#,
            "the Alertmanager payload has no alerts (`alerts` is empty)",
        ),
        (
            r#"{"alerts": [{"status": "firing"}]}"#,
            "`alerts[0].labels`: missing: an Alertmanager alert has labels",
        ),
        (
            r#"{"alerts": [{"labels": {"x": "y"}}]}"#,
            "`alerts[0].labels`: no `alertname` label (and no `summary` annotation) to name the incident",
        ),
        (r#"{"alerts": {}}"#, "`alerts`: expected a list of alerts"),
    ];
    for (src, want) in cases {
        let err = incident_from_json(src, NOW).unwrap_err();
        assert_eq!(err.to_string(), want, "{src}");
    }
}

#[test]
fn times_normalise_to_utc() {
    assert_eq!(
        to_utc("2024-02-29T23:30:00-01:00").as_deref(),
        Some("2024-03-01T00:30:00Z")
    );
    assert_eq!(
        to_utc("2024-01-01T00:10:00+00:30").as_deref(),
        Some("2023-12-31T23:40:00Z")
    );
    assert_eq!(
        to_utc("2024-05-01t10:00:00.5z").as_deref(),
        Some("2024-05-01T10:00:00.5Z")
    );
    for bad in [
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-05-01T10:00:00",
        "2024-05-01",
        "2024-05-01T25:00:00Z",
        "2024-05-01T10:00:00.Z",
    ] {
        assert_eq!(to_utc(bad), None, "{bad}");
    }
    for days in [-1_000_000, -1, 0, 1, 19_844, 2_000_000] {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
}

#[test]
fn fnv_is_the_reference_function() {
    // Reference values of FNV-1a 64.
    assert_eq!(fnv_hex(""), "cbf29ce484222325");
    assert_eq!(fnv_hex("a"), "af63dc4c8601ec8c");
}
