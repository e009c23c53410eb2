//! Bad input never panics and never asks for a 5xx: a deterministic, in-tree complement to
//! the cargo-fuzz targets under `fuzz/` (which need nightly), run with every `cargo test`.

use medic_intake::generic::{self, Mapping};
use medic_intake::{IntakeError, alertmanager, grafana, pagerduty};
use serde_json::Value;

const PAYLOADS: [&[u8]; 9] = [
    include_bytes!("payloads/alertmanager-group.json"),
    include_bytes!("payloads/grafana-firing.json"),
    include_bytes!("payloads/grafana-resolved.json"),
    include_bytes!("payloads/pagerduty-triggered.json"),
    include_bytes!("payloads/pagerduty-resolved.json"),
    include_bytes!("payloads/pagerduty-annotated.json"),
    include_bytes!("payloads/pagerduty-service-updated.json"),
    include_bytes!("payloads/generic-object.json"),
    include_bytes!("payloads/generic-array.json"),
];

fn mapping() -> Mapping {
    Mapping {
        title: "/check/name".into(),
        severity: Some("/check/state".into()),
        status: Some("/check/state".into()),
        fingerprint: Some("/check/id".into()),
        labels: Some("/tags".into()),
        annotations: Some("/details".into()),
        starts_at: Some("/since".into()),
        resolved_values: vec!["OK".into()],
    }
}

/// Every parser on `body`; each result is either alerts or a 400/422.
fn check(body: &[u8], m: &Mapping) {
    let results: [(&str, Result<Vec<medic_intake::Alert>, IntakeError>); 4] = [
        ("alertmanager", alertmanager::parse(body)),
        ("grafana", grafana::parse(body)),
        ("pagerduty", pagerduty::parse(body)),
        ("generic", generic::parse(body, m)),
    ];
    for (name, result) in results {
        if let Err(e) = result {
            let status = e.http_status();
            assert!(
                status == 400 || status == 422,
                "{name}: {status} for {:?}: {e}",
                String::from_utf8_lossy(body)
            );
            assert!(!e.to_string().is_empty());
        }
    }
    let sig = pagerduty::verify(body, &String::from_utf8_lossy(body), &["s".to_string()]);
    assert!(sig.is_err_and(|e| e.http_status() == 401));
}

#[test]
fn every_truncation_and_byte_flip() {
    let m = mapping();
    for payload in PAYLOADS {
        for end in 0..payload.len() {
            check(&payload[..end], &m);
        }
        let mut body = payload.to_vec();
        for i in (0..body.len()).step_by(3) {
            let original = body[i];
            for b in [b'"', b'{', b']', b'1', b'\\', 0xff] {
                body[i] = b;
                check(&body, &m);
            }
            body[i] = original;
        }
    }
}

/// Replace each value in the document, one at a time, with a value of every other kind: this
/// reaches every "expected X, found Y" branch that byte flips rarely do.
#[test]
fn every_value_of_every_kind() {
    let m = mapping();
    let kinds = [
        Value::Null,
        Value::from(7),
        Value::from(-1.5),
        Value::from(true),
        Value::from(""),
        Value::from("0001-01-01T00:00:00Z"),
        Value::from("resolved"),
        serde_json::json!([]),
        serde_json::json!([{}]),
        serde_json::json!({}),
        serde_json::json!({"k": [1]}),
    ];
    for payload in PAYLOADS {
        let doc: Value = serde_json::from_slice(payload).unwrap();
        let mut pointers = Vec::new();
        collect_pointers(&doc, String::new(), &mut pointers);
        for p in &pointers {
            for kind in &kinds {
                let mut mutated = doc.clone();
                *mutated.pointer_mut(p).unwrap() = kind.clone();
                check(&serde_json::to_vec(&mutated).unwrap(), &m);
            }
        }
    }
}

fn collect_pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                collect_pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

#[test]
fn deep_nesting_is_a_400_not_a_stack_overflow() {
    for open in [b'[', b'{'] {
        let body: Vec<u8> = if open == b'[' {
            std::iter::repeat_n(b'[', 100_000).collect()
        } else {
            b"{\"a\":".repeat(100_000)
        };
        check(&body, &mapping());
        let e = alertmanager::parse(&body).unwrap_err();
        assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
        assert_eq!(e.http_status(), 400);
    }
}

#[test]
fn odd_times_are_refused_not_panicked_on() {
    for t in [
        "2024-05-01T10:00:00+0é:00",
        "2024-05-01T10:00:00+é:000",
        "2024-05-01T10:00:00.",
        "2024-05-01T10:00:00.1é",
        "é024-05-01T10:00:00Z",
        "2024-05-01T10:00:00+99:00",
        "9999-12-31T23:59:60-23:59",
        "2024-05-01T10:00:00Zé",
    ] {
        let body =
            serde_json::json!({"version": "4", "alerts": [{"status": "firing", "startsAt": t}]});
        check(&serde_json::to_vec(&body).unwrap(), &mapping());
    }
}
