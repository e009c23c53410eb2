//! Generic JSON webhooks read through a field mapping.

use medic_intake::generic::{self, Mapping};
use medic_intake::{IntakeError, Source, labels_fingerprint};
use medic_model::IncidentStatus;

const OBJECT: &[u8] = include_bytes!("payloads/generic-object.json");
const ARRAY: &[u8] = include_bytes!("payloads/generic-array.json");

fn mapping() -> Mapping {
    Mapping {
        title: "/check/name".into(),
        severity: Some("/check/state".into()),
        status: Some("/check/state".into()),
        fingerprint: Some("/check/id".into()),
        labels: Some("/tags".into()),
        annotations: Some("/details".into()),
        starts_at: Some("/since".into()),
        resolved_values: vec!["OK".into(), "recovered".into()],
    }
}

fn refused(body: &str, m: &Mapping) -> (String, u16) {
    let e = generic::parse(body.as_bytes(), m).expect_err("should be refused");
    (e.to_string(), e.http_status())
}

#[test]
fn an_object_is_one_alert() {
    let alerts = generic::parse(OBJECT, &mapping()).unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.source, Source::Generic);
    assert_eq!(a.status, IncidentStatus::Firing);
    assert_eq!(a.fingerprint, "chk-9f2c");
    assert_eq!(a.title, "checkout health");
    assert_eq!(a.severity, "CRITICAL");
    let labels: Vec<(&str, &str)> = a
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("canary", "false"),
            ("env", "prod"),
            ("port", "8080"),
            ("service", "checkout")
        ],
        "scalars as text, nulls left out"
    );
    assert_eq!(
        a.annotations["health_url"],
        "http://checkout.internal/health"
    );
    assert_eq!(a.starts_at.as_deref(), Some("2024-05-01T14:00:00+02:00"));
    assert_eq!((a.ends_at.as_ref(), a.group_key.as_ref()), (None, None));

    let incident = a.to_incident("2024-05-01T12:00:05Z");
    assert_eq!(incident.id, "chk-9f2c");
    assert_eq!(incident.source, "generic");
    assert_eq!(incident.started_at, "2024-05-01T12:00:00Z");
}

#[test]
fn an_array_is_one_alert_per_element() {
    let alerts = generic::parse(ARRAY, &mapping()).unwrap();
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts[0].status, IncidentStatus::Firing);
    assert_eq!(alerts[0].fingerprint, "chk-9f2c");
    assert_eq!(
        alerts[1].status,
        IncidentStatus::Resolved,
        "\"ok\" matches \"OK\""
    );
    assert_eq!(alerts[1].starts_at, None);
    // No id: the labels identify it.
    assert_eq!(
        alerts[2].fingerprint,
        labels_fingerprint(&alerts[2].labels, "search latency")
    );
    assert_eq!(alerts[2].title, "search latency");
}

#[test]
fn only_the_title_is_required() {
    let m = Mapping {
        title: "/check/name".into(),
        ..Mapping::default()
    };
    let alerts = generic::parse(ARRAY, &m).unwrap();
    assert_eq!(
        alerts[2].severity, "unknown",
        "no severity label without a labels mapping"
    );
    assert_eq!(alerts[1].status, IncidentStatus::Firing);
    assert!(alerts[0].labels.is_empty());
    assert_eq!(
        alerts[0].fingerprint,
        labels_fingerprint(&Default::default(), "checkout health")
    );
    assert_ne!(alerts[0].fingerprint, alerts[1].fingerprint);

    let with_labels = Mapping {
        labels: Some("/tags".into()),
        status: Some("/check/state".into()),
        ..m
    };
    let alerts = generic::parse(ARRAY, &with_labels).unwrap();
    assert_eq!(alerts[2].severity, "warning", "from the severity label");
    assert_eq!(
        alerts[1].status,
        IncidentStatus::Firing,
        "\"ok\" is not \"resolved\""
    );
    let resolved = br#"{"check":{"name":"x","state":" Resolved "}}"#;
    assert_eq!(
        generic::parse(resolved, &with_labels).unwrap()[0].status,
        IncidentStatus::Resolved,
        "without resolved_values, \"resolved\" resolves"
    );
}

#[test]
fn bad_payloads_are_4xx_and_say_where() {
    let m = mapping();
    let cases = [
        (
            r#"{"check":{}}"#,
            "generic payload: /check/name: missing (the mapping takes the alert's title from here)",
            422,
        ),
        (
            r#"{"check":{"name":"  "}}"#,
            "generic payload: /check/name: is empty; an alert needs a title",
            422,
        ),
        (
            r#"[{"check":{"name":"a"}}, "b"]"#,
            "generic payload: /1: expected an object, found a string",
            422,
        ),
        (
            r#"[{"check":{"name":"a"}}, {"check":{"name":["b"]}}]"#,
            "generic payload: /1/check/name: expected a string, found an array",
            422,
        ),
        (
            r#"{"check":{"name":"a"},"tags":{"nested":{"x":1}}}"#,
            "generic payload: /tags/nested: expected a string, found an object",
            422,
        ),
        (
            r#"{"check":{"name":"a"},"tags":"x"}"#,
            "generic payload: /tags: expected an object of strings, found a string",
            422,
        ),
        (
            "\"alert\"",
            "generic payload: expected a JSON object (one alert) or an array of them, found a string",
            422,
        ),
        (
            "{\"check\": {\"name\": \"a\",}}",
            "generic payload: invalid JSON at line 1 column 24: trailing comma",
            400,
        ),
    ];
    for (body, message, status) in cases {
        assert_eq!(refused(body, &m), (message.to_string(), status), "{body}");
    }
}

#[test]
fn a_bad_mapping_is_the_servers_fault() {
    let cases = [
        (
            Mapping::default(),
            r#"generic mapping: title: must point at the title, e.g. "/title""#,
        ),
        (
            Mapping {
                title: "check.name".into(),
                ..Mapping::default()
            },
            r#"generic mapping: title: "check.name" is not a JSON pointer: it must start with "/", e.g. "/alert/title""#,
        ),
        (
            Mapping {
                title: "/t".into(),
                labels: Some("/a~b".into()),
                ..Mapping::default()
            },
            r#"generic mapping: labels: "/a~b" is not a JSON pointer: "~" must be written "~0" (and "/" inside a name "~1")"#,
        ),
    ];
    for (m, message) in cases {
        let e = m.validate().unwrap_err();
        assert_eq!(e.to_string(), message);
        assert_eq!(
            e.http_status(),
            500,
            "the sender should retry once the config is fixed"
        );
        assert_eq!(generic::parse(b"{}", &m), Err(e));
    }
    assert!(mapping().validate().is_ok());
}

#[test]
fn pointer_escapes_follow_rfc_6901() {
    let m = Mapping {
        title: "/a~1b/c~0d".into(),
        ..Mapping::default()
    };
    let alerts = generic::parse(br#"{"a/b":{"c~d":"escaped"}}"#, &m).unwrap();
    assert_eq!(alerts[0].title, "escaped");
    assert!(matches!(
        generic::parse(b"{}", &m),
        Err(IntakeError::Shape { path, .. }) if path == "/a~1b/c~0d"
    ));
}

#[test]
fn a_mapping_reads_from_engine_config() {
    let m: Mapping = serde_json::from_str(
        r#"{"title": "/check/name", "labels": "/tags", "resolved_values": ["OK"]}"#,
    )
    .unwrap();
    assert_eq!(m.labels.as_deref(), Some("/tags"));
    assert_eq!(m.severity, None);
}

#[test]
fn unix_times_are_read_and_unreadable_ones_noted() {
    let m = mapping();
    let alerts = generic::parse(
        br#"[{"check":{"name":"a"},"since":1714564800},
        {"check":{"name":"b"},"since":"soon"}]"#,
        &m,
    )
    .unwrap();
    assert_eq!(
        alerts[0].starts_at.as_deref(),
        Some("2024-05-01T12:00:00.000Z")
    );
    assert!(alerts[0].notes.is_empty());
    assert_eq!(alerts[1].starts_at, None);
    assert_eq!(alerts[1].notes.len(), 1);
    assert!(alerts[1].notes[0].starts_with("generic /1/since \"soon\" is not a time medic reads"));
}
