//! The one entry point: detection, per-element results, medic's own alert document, the
//! time fallback, and the one conversion to incidents.

use medic_intake::generic::Mapping;
use medic_intake::{IntakeError, Source, detect, incidents_for, read, read_any};
use medic_model::IncidentStatus;
use serde_json::json;

const AM: &[u8] = include_bytes!("payloads/alertmanager-group.json");
const GRAFANA: &[u8] = include_bytes!("payloads/grafana-firing.json");
const PD: &[u8] = include_bytes!("payloads/pagerduty-triggered.json");

#[test]
fn detects_each_format() {
    assert_eq!(detect(AM).unwrap(), Source::Alertmanager);
    assert_eq!(detect(GRAFANA).unwrap(), Source::Grafana);
    assert_eq!(detect(PD).unwrap(), Source::PagerDuty);
    assert_eq!(detect(br#"{"title": "x"}"#).unwrap(), Source::Cli);
    // An Alertmanager payload of another version is still Alertmanager's, and says so.
    let err = read_any(br#"{"version": "3", "alerts": []}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported Alertmanager webhook version \"3\" (medic reads version 4)"
    );
    let err = detect(b"[1]").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cli payload: expected an alert"),
        "{err}"
    );
}

#[test]
fn a_file_and_a_webhook_read_the_same() {
    let file = read_any(AM).unwrap();
    let hook = read(Source::Alertmanager, AM, None).unwrap();
    assert_eq!(file, hook);
    assert_eq!(
        file.into_alerts().unwrap(),
        medic_intake::alertmanager::parse(AM).unwrap()
    );
}

#[test]
fn medics_own_document() {
    let body = json!({
        "title": "Checkout errors", "severity": "critical",
        "labels": {"service": "checkout", "replicas": 3},
        "annotations": {"runbook": "https://runbooks/checkout"},
        "startsAt": "2024-05-01T10:00:00+02:00", "vendorExtra": {"ignored": true}
    });
    let alerts = read_any(body.to_string().as_bytes())
        .unwrap()
        .into_alerts()
        .unwrap();
    let a = &alerts[0];
    assert_eq!((a.source, a.status), (Source::Cli, IncidentStatus::Firing));
    assert_eq!(a.labels["replicas"], "3");
    // No id: the labels' hash, the same rule as for every other source.
    assert_eq!(
        a.fingerprint,
        medic_intake::labels_fingerprint(&a.labels, "Checkout errors")
    );
    let i = a.to_incident("2024-05-01T12:00:00Z");
    assert_eq!(i.started_at, "2024-05-01T08:00:00Z");
    assert_eq!(i.source, "cli");

    let named = read_any(
        br#"{"labels": {"alertname": "Down", "severity": "page"}, "annotations": {"summary": "api down"},
            "status": "resolved", "source": "pagerduty", "id": "INC-7"}"#,
    )
    .unwrap()
    .into_alerts()
    .unwrap();
    let a = &named[0];
    assert_eq!(a.title, "Down — api down");
    assert_eq!(a.severity, "page");
    assert_eq!(a.status, IncidentStatus::Resolved);
    assert_eq!(
        (a.source, a.fingerprint.as_str()),
        (Source::PagerDuty, "INC-7")
    );

    let refused = |body: &str| read_any(body.as_bytes()).unwrap_err().to_string();
    assert_eq!(
        refused(r#"{"severity": "x"}"#),
        "cli payload: title: missing: give a `title`, or a `labels.alertname` (or an `annotations.summary`)"
    );
    assert_eq!(
        refused(r#"{"title": "x", "status": "open"}"#),
        "cli payload: status: expected \"firing\" or \"resolved\", found \"open\""
    );
    assert_eq!(
        refused(r#"{"title": "x", "source": "nagios"}"#),
        "cli payload: source: \"nagios\" is not a source medic knows (alertmanager, grafana, pagerduty, generic, cli)"
    );
}

#[test]
fn one_bad_alert_of_a_group_costs_only_itself() {
    let body = json!({"version": "4", "alerts": [
        {"status": "firing", "fingerprint": "a", "labels": {"alertname": "A"}},
        {"status": "burning", "fingerprint": "b", "labels": {"alertname": "B"}},
        {"status": "firing", "fingerprint": "c", "labels": {"alertname": "C"},
         "startsAt": "2026-11-30 10:02:14 +0100"}
    ]});
    let batch = read(Source::Alertmanager, body.to_string().as_bytes(), None).unwrap();
    let fps: Vec<&str> = batch.alerts().map(|a| a.fingerprint.as_str()).collect();
    assert_eq!(fps, ["a", "c"]);
    let err = batch.items[1].as_ref().unwrap_err();
    assert_eq!(
        err,
        &IntakeError::Shape {
            origin: Source::Alertmanager,
            path: "alerts[1].status".into(),
            message: "expected \"firing\" or \"resolved\", found \"burning\"".into(),
        }
    );
    // A Rails-style time is read, and kept normalised to UTC.
    assert_eq!(
        batch.items[2].as_ref().unwrap().starts_at.as_deref(),
        Some("2026-11-30T09:02:14Z")
    );
}

#[test]
fn an_unreadable_time_falls_back_to_the_receive_time_with_a_note() {
    let mapping = Mapping {
        title: "/name".into(),
        starts_at: Some("/since".into()),
        ..Mapping::default()
    };
    let body = json!([
        {"name": "Disk full", "since": "2026.11.30 10:02:14"},
        {"name": "Odd clock", "since": "last Tuesday"}
    ]);
    let batch = read(Source::Generic, body.to_string().as_bytes(), Some(&mapping)).unwrap();
    let alerts = batch.into_alerts().unwrap();
    assert_eq!(alerts[0].starts_at.as_deref(), Some("2026-11-30T10:02:14Z"));
    assert!(alerts[0].notes.is_empty());
    assert_eq!(alerts[1].starts_at, None);
    let incident = alerts[1].to_incident("2026-11-30T11:00:00Z");
    assert_eq!(incident.started_at, "2026-11-30T11:00:00Z");
    assert_eq!(
        incident.notes,
        [
            "generic /1/since \"last Tuesday\" is not a time medic reads (RFC 3339 like \
          2024-05-01T10:00:00Z, or one of the formats in docs/serve.md); the receive time is \
          used instead"
        ]
    );
}

#[test]
fn incidents_as_medic_serve_opens_them() {
    let yaml = |group_by: &str| {
        format!(
            "apiVersion: medic/v1\nkind: Workflow\nname: w\n{group_by}steps:\n  - id: a\n    phase: detect\n    uses: echo\n"
        )
    };
    let plain = medic_model::parse_workflow("w.yaml", &yaml(""))
        .unwrap()
        .workflow;
    let grouped = medic_model::parse_workflow("w.yaml", &yaml("trigger:\n  group-by: [service]\n"))
        .unwrap()
        .workflow;
    let body = json!({"version": "4", "alerts": [
        {"status": "firing", "fingerprint": "a", "labels": {"alertname": "A", "service": "s", "severity": "warning"}, "startsAt": "2026-11-30T10:00:00Z"},
        {"status": "firing", "fingerprint": "b", "labels": {"alertname": "B", "service": "s", "severity": "critical"}, "startsAt": "2026-11-30T10:01:00Z"},
        {"status": "resolved", "fingerprint": "c", "labels": {"alertname": "C", "service": "t"}}
    ]});
    let alerts = read_any(body.to_string().as_bytes())
        .unwrap()
        .into_alerts()
        .unwrap();
    let now = "2026-11-30T11:00:00Z";
    let ids: Vec<String> = incidents_for(&alerts, &plain, now)
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["a", "b"], "the resolved alert opens nothing");
    let groups = incidents_for(&alerts, &grouped, now);
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(g.id, medic_intake::incident_id(&alerts[0], &grouped));
    assert!(g.id.starts_with("w-"), "{}", g.id);
    assert_eq!(g.started_at, "2026-11-30T10:00:00Z", "opened by the first");
    assert_eq!(
        (g.title.as_str(), g.severity.as_str()),
        ("B", "critical"),
        "described by the last"
    );
}
