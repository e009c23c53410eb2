//! PagerDuty v3 webhooks and their signatures, in the format of PagerDuty's v3 webhook and
//! "Verifying Signatures" docs.

use medic_intake::{IntakeError, Source, pagerduty};
use medic_model::IncidentStatus;

const TRIGGERED: &[u8] = include_bytes!("payloads/pagerduty-triggered.json");
const RESOLVED: &[u8] = include_bytes!("payloads/pagerduty-resolved.json");
const ANNOTATED: &[u8] = include_bytes!("payloads/pagerduty-annotated.json");
const SERVICE_UPDATED: &[u8] = include_bytes!("payloads/pagerduty-service-updated.json");

// HMAC-SHA256 of the exact bytes of payloads/pagerduty-triggered.json, computed outside Rust
// (Python's hmac module) so the test does not check the code against itself. Reformatting
// that file changes its bytes and breaks these on purpose.
const OLD_SECRET: &str = "whsec-old-2f9a";
const NEW_SECRET: &str = "whsec-new-71c3";
const OLD_SIG: &str = "553c2ee2cbe696bdbd3321f62a52ff45784c33b6b7ed02230133efaac638c266";
const NEW_SIG: &str = "c5f32d35815c4b45f59ae7906c6ec72362273c4edcf3d34dcd39c9f3dde6f50f";

fn secrets(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

fn refused(header: &str, secrets: &[String]) -> (String, u16) {
    let e = pagerduty::verify(TRIGGERED, header, secrets).expect_err("should be refused");
    (e.to_string(), e.http_status())
}

#[test]
fn triggered() {
    let alerts = pagerduty::parse(TRIGGERED).unwrap();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.source, Source::PagerDuty);
    assert_eq!(a.status, IncidentStatus::Firing);
    assert_eq!(a.fingerprint, "Q2OGV1RBLTF8ZL");
    assert_eq!(a.title, "Checkout 5xx rate above 5%");
    assert_eq!(a.severity, "P1", "the priority, when there is one");
    let labels: Vec<(&str, &str)> = a
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("escalation_policy", "Payments on-call"),
            ("incident_number", "4711"),
            ("priority", "P1"),
            ("service", "Checkout API"),
            ("service_id", "PF9KMXH"),
            ("teams", "Payments,SRE"),
            ("urgency", "high"),
        ]
    );
    assert_eq!(
        a.annotations["html_url"],
        "https://acme.pagerduty.com/incidents/Q2OGV1RBLTF8ZL"
    );
    assert_eq!(a.annotations["event_type"], "incident.triggered");
    assert_eq!(a.annotations["event_id"], "01DEN3M3C5ZG4K2YN4J1H6ZQHX");
    assert_eq!(a.annotations["assignees"], "Ada Lovelace");
    assert_eq!(a.annotations["pagerduty_status"], "triggered");
    assert_eq!(a.starts_at.as_deref(), Some("2024-05-01T12:04:01Z"));
    assert_eq!(a.ends_at, None);
    assert_eq!(a.group_key.as_deref(), Some("checkout-error-rate"));

    let incident = a.to_incident("2024-05-01T12:05:00Z");
    assert_eq!(incident.id, "Q2OGV1RBLTF8ZL");
    assert_eq!(incident.source, "pagerduty");
    assert_eq!(incident.started_at, "2024-05-01T12:04:01Z");
}

#[test]
fn resolved() {
    let alerts = pagerduty::parse(RESOLVED).unwrap();
    let a = &alerts[0];
    assert_eq!(a.status, IncidentStatus::Resolved);
    assert_eq!(
        a.fingerprint, "Q2OGV1RBLTF8ZL",
        "the same incident as the trigger"
    );
    assert_eq!(a.severity, "high", "no priority: the urgency");
    assert!(!a.labels.contains_key("priority"));
    assert!(
        !a.annotations.contains_key("assignees"),
        "nobody is assigned any more"
    );
    assert_eq!(a.ends_at.as_deref(), Some("2024-05-01T12:31:47.911Z"));
}

#[test]
fn other_incident_events_follow_the_incident_status() {
    let acked = std::str::from_utf8(TRIGGERED)
        .unwrap()
        .replace("incident.triggered", "incident.acknowledged")
        .replace(r#""status": "triggered""#, r#""status": "acknowledged""#);
    let a = &pagerduty::parse(acked.as_bytes()).unwrap()[0];
    assert_eq!(a.status, IncidentStatus::Firing);

    let late = std::str::from_utf8(RESOLVED)
        .unwrap()
        .replace("incident.resolved", "incident.priority_updated");
    let a = &pagerduty::parse(late.as_bytes()).unwrap()[0];
    assert_eq!(
        a.status,
        IncidentStatus::Resolved,
        "data.status says resolved"
    );
}

#[test]
fn events_that_are_not_incidents_are_ignored() {
    assert_eq!(pagerduty::parse(ANNOTATED).unwrap(), vec![]);
    assert_eq!(pagerduty::parse(SERVICE_UPDATED).unwrap(), vec![]);
    let ping = br#"{"event":{"id":"01","event_type":"pagey.ping","resource_type":"pagey",
        "occurred_at":"2024-05-01T12:00:00Z","agent":null,"client":null,"data":{"message":"Hello from your friend Pagey!","type":"ping"}}}"#;
    assert_eq!(pagerduty::parse(ping).unwrap(), vec![]);
}

#[test]
fn wrong_shapes_are_422_and_say_where() {
    let cases = [
        (
            "[1]",
            "pagerduty payload: expected an object, found an array",
        ),
        (r#"{"messages":[]}"#, "pagerduty payload: event: missing"),
        (
            r#"{"event":{}}"#,
            "pagerduty payload: event.event_type: missing",
        ),
        (
            r#"{"event":{"event_type":"incident.triggered"}}"#,
            "pagerduty payload: event.data: missing",
        ),
        (
            r#"{"event":{"event_type":"incident.triggered","data":{"type":"incident"}}}"#,
            "pagerduty payload: event.data.id: missing",
        ),
        (
            r#"{"event":{"event_type":"incident.triggered","data":{"id":"P1","urgency":3}}}"#,
            "pagerduty payload: event.data.urgency: expected a string, found a number",
        ),
        (
            r#"{"event":{"event_type":"incident.triggered","data":{"id":"P1","service":"x"}}}"#,
            "pagerduty payload: event.data.service: expected an object, found a string",
        ),
        (
            r#"{"event":{"event_type":"incident.triggered","data":{"id":"P1","teams":[{"summary":1}]}}}"#,
            "pagerduty payload: event.data.teams[0].summary: expected a string, found a number",
        ),
    ];
    for (body, message) in cases {
        let e = pagerduty::parse(body.as_bytes()).expect_err(body);
        assert_eq!(
            (e.to_string(), e.http_status()),
            (message.to_string(), 422),
            "{body}"
        );
    }
    let e = pagerduty::parse(b"{\"event\": nul}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "pagerduty payload: invalid JSON at line 1 column 14: expected ident"
    );
    assert_eq!(e.http_status(), 400);
}

#[test]
fn a_minimal_incident_gets_defaults() {
    let body = br#"{"event":{"event_type":"incident.triggered","data":{"id":"P1"}}}"#;
    let a = &pagerduty::parse(body).unwrap()[0];
    assert_eq!(a.title, "PagerDuty incident P1");
    assert_eq!(a.severity, "unknown");
    assert!(a.labels.is_empty());
    assert_eq!(
        a.to_incident("2024-05-01T00:00:00Z").started_at,
        "2024-05-01T00:00:00Z"
    );
}

#[test]
fn a_valid_signature_verifies() {
    let header = format!("v1={NEW_SIG}");
    assert_eq!(
        pagerduty::verify(TRIGGERED, &header, &secrets(&[NEW_SECRET])),
        Ok(())
    );
}

#[test]
fn rotation_any_signature_may_match_any_secret() {
    // PagerDuty signs with the old and the new secret while both are live.
    let both = format!("v1={OLD_SIG},v1={NEW_SIG}");
    assert_eq!(
        pagerduty::verify(TRIGGERED, &both, &secrets(&[NEW_SECRET])),
        Ok(())
    );
    assert_eq!(
        pagerduty::verify(TRIGGERED, &both, &secrets(&[OLD_SECRET])),
        Ok(())
    );
    // medic may hold both secrets while PagerDuty already signs with one of them only.
    let two = secrets(&["unrelated", OLD_SECRET, NEW_SECRET]);
    assert_eq!(
        pagerduty::verify(TRIGGERED, &format!("v1={NEW_SIG}"), &two),
        Ok(())
    );
    assert_eq!(
        pagerduty::verify(TRIGGERED, &format!("v1={OLD_SIG}"), &two),
        Ok(())
    );
    // Spaces after the commas, other versions and junk entries are skipped.
    let mixed = format!("v0=abc, v1=zz, v1={NEW_SIG}");
    assert_eq!(
        pagerduty::verify(TRIGGERED, &mixed, &secrets(&[NEW_SECRET])),
        Ok(())
    );
}

#[test]
fn invalid_signatures_are_401() {
    let mismatch = (
        "pagerduty signature: does not match any configured secret".to_string(),
        401,
    );
    let header = format!("v1={OLD_SIG},v1={NEW_SIG}");
    assert_eq!(refused(&header, &secrets(&["whsec-other"])), mismatch);
    // A signature of the right secret over other bytes.
    let e = pagerduty::verify(RESOLVED, &header, &secrets(&[NEW_SECRET])).unwrap_err();
    assert_eq!(e, IntakeError::SignatureMismatch);
    // The signature without its version prefix is not a v1 signature.
    assert_eq!(
        refused(NEW_SIG, &secrets(&[NEW_SECRET])),
        (
            "pagerduty signature: no v1 signature in header".to_string(),
            401
        )
    );
    assert_eq!(
        refused("v2=abcdef", &secrets(&[NEW_SECRET])),
        (
            "pagerduty signature: no v1 signature in header".to_string(),
            401
        )
    );
    assert_eq!(refused("v1=", &secrets(&[NEW_SECRET])), mismatch);
    assert_eq!(refused("v1=not-hex", &secrets(&[NEW_SECRET])), mismatch);
}

#[test]
fn a_missing_signature_is_401() {
    let expected = (
        "pagerduty signature: the X-PagerDuty-Signature header is missing or empty \
         (PagerDuty signs every v3 webhook)"
            .to_string(),
        401,
    );
    assert_eq!(refused("", &secrets(&[NEW_SECRET])), expected);
    assert_eq!(refused("  ", &secrets(&[NEW_SECRET])), expected);
}

#[test]
fn without_secrets_nothing_verifies() {
    assert_eq!(
        refused(&format!("v1={NEW_SIG}"), &[]),
        (
            "pagerduty signature: no webhook secret is configured, so no request can be verified"
                .to_string(),
            401
        )
    );
}
