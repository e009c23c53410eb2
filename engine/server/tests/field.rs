//! Alerts as the field sends them (issue 11), each example with its exact values, through
//! the real HTTP intake (the router, `oneshot`) and the real processor, store and sandbox.

#[path = "support/field.rs"]
mod support;

use serde_json::{Value, json};
use support::{harness, workflow};

/// An Alertmanager v4 notification for one group.
fn am(group: &str, alerts: Vec<Value>) -> Value {
    let status = if alerts.iter().any(|a| a["status"] == "firing") {
        "firing"
    } else {
        "resolved"
    };
    json!({"version": "4", "groupKey": group, "status": status, "receiver": "medic",
           "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
           "externalURL": "http://am", "truncatedAlerts": 0, "alerts": alerts})
}

fn am_alert(fp: &str, status: &str, labels: Value, starts: &str, ends: &str) -> Value {
    json!({"status": status, "fingerprint": fp, "labels": labels,
           "annotations": {"summary": "CPU above 90%"},
           "startsAt": starts, "endsAt": ends, "generatorURL": "http://prom"})
}

const ZERO: &str = "0001-01-01T00:00:00Z";

/// Issue 11.1: firing → resolved → a late firing with the same `startsAt` (another
/// replica's flush) → resolved is one occurrence and one run; a later `startsAt` is a
/// second occurrence with a second run.
#[tokio::test(flavor = "multi_thread")]
async fn ha_alertmanager_late_resend_is_the_same_occurrence() {
    let h = harness(
        "",
        vec![workflow("cpu", "  matchers: ['alertname=HighCoreUsage']")],
    );
    let labels = json!({"alertname": "HighCoreUsage", "instance": "db-1"});
    let g = "{}:{alertname=\"HighCoreUsage\"}";
    let firing = |starts: &str| {
        am(
            g,
            vec![am_alert("f1", "firing", labels.clone(), starts, ZERO)],
        )
    };
    let resolved = am(
        g,
        vec![am_alert(
            "f1",
            "resolved",
            labels.clone(),
            "2026-11-30T10:02:14.512Z",
            "2026-11-30T10:07:22Z",
        )],
    );
    h.post("alertmanager", &firing("2026-11-30T10:02:14.512Z"))
        .await;
    h.handled(1).await;
    h.post("alertmanager", &resolved).await;
    h.handled(2).await;
    h.post("alertmanager", &firing("2026-11-30T10:02:14.512Z"))
        .await;
    h.handled(3).await;
    h.post("alertmanager", &resolved).await;
    h.handled(4).await;

    let i = &h.incidents().await["f1"];
    assert_eq!(i["generation"], 1);
    assert_eq!(i["status"], "resolved");
    assert_eq!(i["alerts"], 2, "the first firing and its late copy");
    assert_eq!(i["late_alerts"], 1);
    assert_eq!(i["started_at"], "2026-11-30T10:02:14.512Z");
    assert_eq!(i["ended_at"], "2026-11-30T10:07:22.000Z");
    assert_eq!(i["runs"].as_array().unwrap().len(), 1);
    assert_eq!(h.get("/api/runs").await.as_array().unwrap().len(), 1);

    h.post("alertmanager", &firing("2026-11-30T10:31:40Z"))
        .await;
    h.handled(5).await;
    let i = &h.incidents().await["f1"];
    assert_eq!(i["generation"], 2);
    assert_eq!(i["status"], "firing");
    assert_eq!(i["started_at"], "2026-11-30T10:31:40Z");
    let runs = h.runs_until("two runs", |r| r.len() == 2).await;
    assert_ne!(runs[0]["id"], runs[1]["id"]);
    assert!(runs.iter().all(|r| r["workflow"] == "cpu"));
}

/// A PagerDuty v3 incident event.
fn pd(event: &str, id: &str, status: &str, priority: &str) -> Value {
    json!({"event": {"id": format!("{event}-{priority}"), "event_type": event,
        "resource_type": "incident", "occurred_at": "2026-11-30T10:20:00Z",
        "data": {"id": id, "type": "incident", "status": status, "title": "Checkout down",
                 "created_at": "2026-11-30T10:00:00Z", "urgency": "high",
                 "priority": {"summary": priority},
                 "service": {"id": "PSVC", "summary": "Checkout API"}}}})
}

/// Issue 11.1: PagerDuty's `incident.reopened` keeps `created_at` and still reopens.
#[tokio::test(flavor = "multi_thread")]
async fn pagerduty_reopened_is_a_new_occurrence() {
    let h = harness("", vec![workflow("pd", "  source: [pagerduty]")]);
    h.post(
        "pagerduty",
        &pd("incident.triggered", "Q1", "triggered", "P2"),
    )
    .await;
    h.post(
        "pagerduty",
        &pd("incident.resolved", "Q1", "resolved", "P2"),
    )
    .await;
    h.post(
        "pagerduty",
        &pd("incident.reopened", "Q1", "triggered", "P2"),
    )
    .await;
    h.handled(3).await;
    let i = &h.incidents().await["Q1"];
    assert_eq!(
        (i["generation"].clone(), i["status"].clone()),
        (json!(2), json!("firing"))
    );
    assert_eq!(i["late_alerts"], 0);
    h.runs_until("a run per occurrence", |r| r.len() == 2).await;
}

/// Issue 11.2 and 11.3: several matchers in one item, braces, quoted UTF-8 label names and
/// dotted `group-by` names start the workflows they should, and only those.
#[tokio::test(flavor = "multi_thread")]
async fn matchers_as_alertmanager_writes_them() {
    let h = harness(
        "",
        vec![
            workflow("plain", "  matchers: ['alertname=HighErrorRate, env=prod']"),
            workflow(
                "braced",
                "  matchers: ['{alertname=\"HighErrorRate\", env=\"prod\"}']",
            ),
            workflow(
                "otel",
                "  matchers: ['\"service.name\"=\"rails\"']\n  group-by: [service.namespace]",
            ),
        ],
    );
    let labels = |env: &str, fp: &str| {
        am_alert(
            fp,
            "firing",
            json!({"alertname": "HighErrorRate", "env": env, "service.name": "rails",
                   "service.namespace": "shop"}),
            "2026-11-30T10:00:00Z",
            ZERO,
        )
    };
    h.post(
        "alertmanager",
        &am("g", vec![labels("prod", "p1"), labels("dev", "d1")]),
    )
    .await;
    h.handled(2).await;
    let runs = h.runs_until("three runs", |r| r.len() == 3).await;
    let mut workflows: Vec<&str> = runs
        .iter()
        .map(|r| r["workflow"].as_str().unwrap())
        .collect();
    workflows.sort();
    assert_eq!(workflows, ["braced", "otel", "plain"]);
    let incidents = h.incidents().await;
    assert_eq!(
        incidents["p1"]["runs"].as_array().unwrap().len(),
        2,
        "plain and braced"
    );
    // Both alerts share service.namespace=shop: one `otel` incident, one run.
    let otel: Vec<&Value> = incidents
        .values()
        .filter(|i| i["id"].as_str().unwrap().starts_with("otel-"))
        .collect();
    assert_eq!(otel.len(), 1);
    assert_eq!(otel[0]["alerts"], 2);
    assert!(
        !incidents.contains_key("d1"),
        "the dev alert is in the otel group only"
    );
}

/// Issue 11.4: times in Rails and Zabbix style are read; an unreadable one falls back to
/// the receive time with a note; one bad element of a batch costs only itself.
#[tokio::test(flavor = "multi_thread")]
async fn generic_times_and_per_element_answers() {
    let h = harness(
        "[generic]\ntitle = \"/name\"\nfingerprint = \"/id\"\nstarts_at = \"/since\"\nlabels = \"/tags\"\n",
        vec![workflow("any", "  source: [generic]")],
    );
    let batch = json!([
        {"id": "rails", "name": "Checkout slow", "since": "2026-11-30 10:02:14 +0100"},
        {"id": "zabbix", "name": "Disk full", "since": "2026.11.30 10:02:14"},
        {"id": "perfect", "name": "Queue stuck", "since": "2026-11-30T10:02:14.512Z"},
        {"id": "unreadable", "name": "Odd clock", "since": "last Tuesday"},
        {"id": "untitled", "since": "2026-11-30T10:02:14Z"},
        {"id": "badtags", "name": "Tags", "tags": "env=prod"}
    ]);
    let answer = h.post("generic", &batch).await;
    assert_eq!(answer["accepted"], 4);
    assert_eq!(
        answer["rejected"],
        json!([
            {"index": 4, "error": "generic payload: /4/name: missing (the mapping takes the alert's title from here)"},
            {"index": 5, "error": "generic payload: /5/tags: expected an object of strings, found a string"}
        ])
    );
    h.handled(4).await;
    let i = h.incidents().await;
    assert_eq!(i["rails"]["started_at"], "2026-11-30T09:02:14Z");
    assert_eq!(i["zabbix"]["started_at"], "2026-11-30T10:02:14Z");
    assert_eq!(i["perfect"]["started_at"], "2026-11-30T10:02:14.512Z");
    for id in ["rails", "zabbix", "perfect"] {
        assert_eq!(i[id]["notes"], json!([]), "{id}");
    }
    let odd = &i["unreadable"];
    assert_eq!(
        odd["notes"],
        json!([
            "generic /3/since \"last Tuesday\" is not a time medic reads (RFC 3339 like \
                2024-05-01T10:00:00Z, or one of the formats in docs/serve.md); the receive \
                time is used instead"
        ])
    );
    // The receive time: medic's clock when the batch came in, whole seconds.
    let started = odd["started_at"].as_str().unwrap();
    assert!(started.ends_with('Z') && started.len() == 20, "{started}");
    assert!(started >= "2026-01-01", "{started}");

    // A batch with nothing good in it is refused whole, saying why.
    let (s, v) = h
        .send(
            "POST",
            "/intake/generic",
            json!([{"id": "x"}]).to_string().into_bytes(),
        )
        .await;
    assert_eq!(s.as_u16(), 422, "{v}");
    assert_eq!(
        v["error"],
        "generic payload: /0/name: missing (the mapping takes the alert's title from here)"
    );
}

/// Issue 11.5: a PagerDuty incident raised from P4 to P1 refreshes the incident and starts
/// the P1 workflow; an Alertmanager group whose severity changed refreshes its incident.
#[tokio::test(flavor = "multi_thread")]
async fn escalation_refreshes_the_incident_and_starts_new_workflows() {
    let h = harness(
        "",
        vec![
            workflow("p1-page", "  source: [pagerduty]\n  severity: [P1]"),
            workflow(
                "note",
                "  matchers: ['alertname=Latency']\n  group-by: [alertname]",
            ),
            workflow(
                "page",
                "  matchers: ['alertname=Latency']\n  severity: [critical]\n  group-by: [alertname]",
            ),
        ],
    );
    h.post(
        "pagerduty",
        &pd("incident.triggered", "Q4", "triggered", "P4"),
    )
    .await;
    h.handled(1).await;
    let i = &h.incidents().await["Q4"];
    assert_eq!(
        (i["severity"].clone(), i["runs"].clone()),
        (json!("P4"), json!([]))
    );

    h.post(
        "pagerduty",
        &pd("incident.priority_updated", "Q4", "triggered", "P1"),
    )
    .await;
    h.handled(2).await;
    let i = &h.incidents().await["Q4"];
    assert_eq!(i["severity"], "P1");
    assert_eq!(i["labels"]["priority"], "P1");
    assert_eq!(i["generation"], 1);
    assert_eq!(i["runs"].as_array().unwrap().len(), 1);
    let run = i["runs"][0].as_str().unwrap().to_string();
    assert!(run.starts_with("p1-page-"), "{run}");
    // Told again, nothing new starts: the run id is the same.
    h.post(
        "pagerduty",
        &pd("incident.priority_updated", "Q4", "triggered", "P1"),
    )
    .await;
    h.handled(3).await;
    assert_eq!(h.incidents().await["Q4"]["runs"], json!([run]));

    let g = "{}:{alertname=\"Latency\"}";
    let alert = |fp: &str, sev: &str| {
        am_alert(
            fp,
            "firing",
            json!({"alertname": "Latency", "severity": sev}),
            "2026-11-30T10:00:00Z",
            ZERO,
        )
    };
    h.post("alertmanager", &am(g, vec![alert("w1", "warning")]))
        .await;
    h.handled(4).await;
    h.post(
        "alertmanager",
        &am(g, vec![alert("w1", "warning"), alert("c1", "critical")]),
    )
    .await;
    h.handled(6).await;
    let incidents = h.incidents().await;
    let note: Vec<&Value> = incidents
        .values()
        .filter(|i| i["id"].as_str().unwrap().starts_with("note-"))
        .collect();
    assert_eq!(note.len(), 1);
    assert_eq!(
        note[0]["severity"], "critical",
        "the group's latest notification"
    );
    assert_eq!(note[0]["alerts"], 3);
    assert_eq!(note[0]["runs"].as_array().unwrap().len(), 1);
    let page: Vec<&Value> = incidents
        .values()
        .filter(|i| i["id"].as_str().unwrap().starts_with("page-"))
        .collect();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["runs"].as_array().unwrap().len(), 1);
}

/// Issue 11.7: `/metrics` counts accepted and handled inbox items and shows the inbox depth
/// now; runs and incidents carry millisecond times; runs list newest first.
#[tokio::test(flavor = "multi_thread")]
async fn where_intake_stands_and_run_order() {
    let h = harness(
        "",
        vec![workflow("any", "  matchers: ['alertname=~\".+\"']")],
    );
    for n in 0..3 {
        let a = am_alert(
            &format!("fp{n}"),
            "firing",
            json!({"alertname": format!("A{n}")}),
            "2026-11-30T10:00:00Z",
            ZERO,
        );
        h.post("alertmanager", &am("g", vec![a])).await;
        h.handled(n + 1).await;
    }
    let m = h.metrics().await;
    assert!(
        m.contains("medic_inbox_items_total{state=\"accepted\"} 3\n"),
        "{m}"
    );
    assert!(
        m.contains("medic_inbox_items_total{state=\"handled\"} 3\n"),
        "{m}"
    );
    assert!(m.contains("medic_queue_depth{queue=\"inbox\"} 0\n"), "{m}");

    let runs = h.runs_until("three runs", |r| r.len() == 3).await;
    let created: Vec<&str> = runs
        .iter()
        .map(|r| r["created"].as_str().unwrap())
        .collect();
    for c in &created {
        assert_eq!(c.len(), "2026-11-30T10:00:00.000Z".len(), "{c}");
        assert_eq!(&c[19..20], ".", "{c}");
    }
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
    // The incident of the last alert opened last, so its run is first.
    let last = &h.incidents().await["fp2"];
    assert_eq!(runs[0]["id"], last["runs"][0]);
    assert_eq!(last["first_seen"].as_str().unwrap().len(), 24);
    // The same order on every call.
    assert_eq!(
        h.get("/api/runs").await.as_array().unwrap()[..3]
            .iter()
            .map(|r| r["id"].clone())
            .collect::<Vec<_>>(),
        runs.iter().map(|r| r["id"].clone()).collect::<Vec<_>>()
    );
}
