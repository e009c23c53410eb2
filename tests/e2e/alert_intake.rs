//! One payload, one reading: the same Alertmanager group given to `medic run --alert` and
//! posted to `medic serve` gives the same incidents, with the same ids and the same alerts
//! (both read it with medic-intake and convert it with the same functions).

use crate::harness::serve::{Serve, http};
use crate::support::{free_port, medic, steps_dir};
use medic_core::{JournalStore, RunState};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn workflow(name: &str, group_by: &str) -> String {
    format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: {name}\ntrigger:\n  matchers: ['alertname=~\".+\"']\n{group_by}steps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: {{ annotate: '{{{{ incident.title }}}}' }}\n"
    )
}

/// A group as Alertmanager posts it: two firing checkout alerts, one firing cart alert
/// without a fingerprint (older senders and relays omit it), and a resolved one.
fn group() -> Value {
    let alert = |fp: Option<&str>, status: &str, name: &str, service: &str, sev: &str| {
        let mut a = json!({
            "status": status,
            "labels": {"alertname": name, "service": service, "severity": sev},
            "annotations": {"summary": format!("{service} is unwell")},
            "startsAt": "2026-11-30T10:02:14.512+01:00",
            "endsAt": if status == "resolved" { "2026-11-30T10:07:22Z" } else { "0001-01-01T00:00:00Z" },
            "generatorURL": "http://127.0.0.1:9090/graph"
        });
        if let Some(fp) = fp {
            a["fingerprint"] = fp.into();
        }
        a
    };
    json!({
        "version": "4", "groupKey": "{}:{env=\"prod\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "medic", "groupLabels": {"env": "prod"},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            alert(Some("c0ffee0000000001"), "firing", "CheckoutErrors", "checkout", "warning"),
            alert(Some("c0ffee0000000002"), "firing", "CheckoutLatency", "checkout", "critical"),
            alert(None, "firing", "CartErrors", "cart", "critical"),
            alert(Some("c0ffee0000000003"), "resolved", "CheckoutOld", "checkout", "info"),
        ]
    })
}

/// What both sides must agree on, for one incident.
fn summary(
    id: &str,
    title: &str,
    severity: &str,
    labels: &Value,
    started: &str,
    source: &str,
) -> Value {
    json!({"id": id, "title": title, "severity": severity, "labels": labels,
           "started_at": started, "source": source})
}

/// The incidents of the runs `medic run` made in `data`, by id.
fn run_incidents(data: &Path) -> BTreeMap<String, Value> {
    let store = medic_store::SledStore::open(data.join("store")).unwrap();
    let mut out = BTreeMap::new();
    for meta in store.runs().unwrap() {
        let entries = store.entries(&meta.id).unwrap();
        let i = RunState::fold(&meta.id, &entries).unwrap().incident;
        let labels = serde_json::to_value(&i.labels).unwrap();
        let s = summary(
            &i.id,
            &i.title,
            &i.severity,
            &labels,
            &i.started_at,
            &i.source,
        );
        out.insert(i.id.clone(), s);
    }
    out
}

#[test]
fn medic_run_and_medic_serve_read_one_payload_into_the_same_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("group.json");
    std::fs::write(&payload, group().to_string()).unwrap();
    let flows = [
        ("note", workflow("note", "")),
        (
            "by-service",
            workflow("by-service", "  group-by: [service]\n"),
        ),
    ];

    // medic run, once per workflow, each in its own data directory.
    let mut from_run = BTreeMap::new();
    for (name, yaml) in &flows {
        let data = dir.path().join(format!("run-{name}"));
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        let out = medic()
            .arg("--data")
            .arg(&data)
            .arg("--steps")
            .arg(steps_dir())
            .arg("run")
            .arg(&file)
            .arg("--alert")
            .arg(&payload)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "medic run {name}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        from_run.extend(run_incidents(&data));
    }
    // Three firing alerts by fingerprint, two service groups; the resolved alert starts
    // nothing.
    assert_eq!(from_run.len(), 5, "{from_run:#?}");
    assert!(from_run.contains_key("c0ffee0000000001"));
    assert!(from_run.contains_key("c0ffee0000000002"));
    assert!(!from_run.contains_key("c0ffee0000000003"));

    // medic serve with both workflows, the same payload posted once.
    let data = dir.path().join("serve");
    let files: Vec<(&str, String)> = vec![
        ("note.yaml", flows[0].1.clone()),
        ("by-service.yaml", flows[1].1.clone()),
    ];
    let serve = Serve::with_workflows(&data, free_port(), &files);
    let (status, body) = http(
        serve.port,
        "POST",
        "/intake/alertmanager",
        Some(&group().to_string()),
    )
    .unwrap();
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let from_serve = loop {
        let incidents = serve.get("/api/incidents");
        let all: BTreeMap<String, Value> = incidents
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let id = i["id"].as_str().unwrap().to_string();
                let s = summary(
                    &id,
                    i["title"].as_str().unwrap(),
                    i["severity"].as_str().unwrap(),
                    &i["labels"],
                    i["started_at"].as_str().unwrap(),
                    i["source"].as_str().unwrap(),
                );
                (id, s)
            })
            .collect();
        if all.len() >= 5 || Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(from_serve, from_run);

    // Exact values, from the payload: UTC start, `alertname — summary` titles, and for the
    // alert without a fingerprint the hash of its labels.
    let checkout = &from_run["c0ffee0000000001"];
    assert_eq!(checkout["title"], "CheckoutErrors — checkout is unwell");
    assert_eq!(checkout["started_at"], "2026-11-30T09:02:14.512Z");
    assert_eq!(checkout["source"], "alertmanager");
    let cart_labels: BTreeMap<String, String> = [
        ("alertname", "CartErrors"),
        ("service", "cart"),
        ("severity", "critical"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cart = medic_intake::labels_fingerprint(&cart_labels, "");
    assert_eq!(from_run[&cart]["title"], "CartErrors — cart is unwell");
    // The checkout group: opened by its first alert, described by its last.
    let group = from_run
        .values()
        .find(|i| {
            i["id"].as_str().unwrap().starts_with("by-service-")
                && i["labels"]["service"] == "checkout"
        })
        .unwrap();
    assert_eq!(group["severity"], "critical");
    assert_eq!(group["title"], "CheckoutLatency — checkout is unwell");
}
