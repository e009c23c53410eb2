//! Grafana unified alerting webhook payloads, in the format of Grafana's webhook notifier docs.

use medic_intake::{Source, grafana};
use medic_model::IncidentStatus;

const FIRING: &[u8] = include_bytes!("payloads/grafana-firing.json");
const RESOLVED: &[u8] = include_bytes!("payloads/grafana-resolved.json");
const ALERTMANAGER: &[u8] = include_bytes!("payloads/alertmanager-group.json");

#[test]
fn firing() {
    let alerts = grafana::parse(FIRING).unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.source, Source::Grafana);
    assert_eq!(a.status, IncidentStatus::Firing);
    assert_eq!(a.fingerprint, "c6eadffa33fcdf37");
    assert_eq!(
        a.title,
        "High memory usage — Checkout is running out of memory in eu-1"
    );
    assert_eq!(a.severity, "unknown", "no severity label");
    assert_eq!(a.labels["team"], "payments");
    assert_eq!(a.labels.len(), 4);
    assert_eq!(
        a.annotations["runbook_url"],
        "https://runbooks.example.org/checkout-memory"
    );
    assert_eq!(
        a.starts_at.as_deref(),
        Some("2024-05-01T14:10:03.157076+02:00")
    );
    assert_eq!(a.ends_at, None);
    assert!(
        a.group_key
            .as_deref()
            .unwrap()
            .contains(r#"{__grafana_receiver__="medic"}"#)
    );

    let incident = a.to_incident("2024-05-01T12:11:00Z");
    assert_eq!(incident.id, "c6eadffa33fcdf37");
    assert_eq!(incident.source, "grafana");
    assert_eq!(incident.started_at, "2024-05-01T12:10:03.157076Z");
}

#[test]
fn resolved_reaches_the_same_incident() {
    let firing = &grafana::parse(FIRING).unwrap()[0];
    let resolved = &grafana::parse(RESOLVED).unwrap()[0];
    assert_eq!(resolved.status, IncidentStatus::Resolved);
    assert_eq!(resolved.fingerprint, firing.fingerprint);
    assert_eq!(resolved.title, firing.title);
    assert_eq!(
        resolved.ends_at.as_deref(),
        Some("2024-05-01T14:25:03+02:00")
    );
    assert_eq!(resolved.to_incident("x").status, IncidentStatus::Resolved);
}

#[test]
fn an_alertmanager_payload_is_another_version() {
    let e = grafana::parse(ALERTMANAGER).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"unsupported Grafana webhook version "4" (medic reads version 1)"#
    );
    assert_eq!(e.http_status(), 422);
}

#[test]
fn errors_name_grafana() {
    let e = grafana::parse(b"{\"version\":\"1\",").unwrap_err();
    assert_eq!(
        e.to_string(),
        "grafana payload: invalid JSON at line 1 column 15: EOF while parsing a value"
    );
    assert_eq!(e.http_status(), 400);

    let e = grafana::parse(br#"{"version":"1","alerts":[{"status":"firing","values":{"B":1},"labels":null,"annotations":"x"}]}"#)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "grafana payload: alerts[0].annotations: expected an object of strings, found a string"
    );
    assert_eq!(e.http_status(), 422);
}
