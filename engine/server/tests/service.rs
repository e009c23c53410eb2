//! `medic serve`'s router, driven with `oneshot` (no socket), over a real sled store and
//! the real sandbox running test components.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use medic_server::{LoadedWorkflow, ServeConfig, Service, router};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const TOKEN: &str = "t0ken";

fn payload(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../intake/tests/payloads/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn component(name: &str) -> String {
    medic_test_programs::path(name)
        .unwrap_or_else(|| panic!("no test component {name}"))
        .to_string()
}

fn workflow(yaml: &str) -> LoadedWorkflow {
    let doc = medic_model::parse_workflow("wf.yaml", yaml).unwrap();
    let components: BTreeMap<String, String> = doc
        .workflow
        .steps
        .iter()
        .map(|s| (s.id.clone(), component(&s.uses)))
        .collect();
    LoadedWorkflow {
        workflow: doc.workflow,
        file: "wf.yaml".into(),
        components,
    }
}

struct Harness {
    svc: Arc<Service>,
    _dir: tempfile::TempDir,
}

fn harness(extra_config: &str) -> Harness {
    // Matches any alert named like the documented Alertmanager example's.
    harness_with(
        extra_config,
        "apiVersion: medic/v1\nkind: Workflow\nname: on-call\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: { annotate: '{{ incident.title }}' }\n",
    )
}

fn harness_with(extra_config: &str, workflow_yaml: &str) -> Harness {
    harness_with_processor(extra_config, workflow_yaml, true)
}

/// With `process` false, alerts are acknowledged into the inbox and wait there until the
/// test starts the processor.
fn harness_with_processor(extra_config: &str, workflow_yaml: &str, process: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(medic_store::SledStore::open(dir.path().join("store")).unwrap());
    let sandbox =
        Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
    let config = ServeConfig::parse(&format!(
        "tokens = [\"{TOKEN}\"]\nconcurrency = 2\n{extra_config}"
    ))
    .unwrap();
    let wf = workflow(workflow_yaml);
    let svc = Service::new(store, sandbox, config, vec![wf]).unwrap();
    if process {
        tokio::spawn(medic_server::process(svc.clone()));
    }
    Harness { svc, _dir: dir }
}

async fn send(
    h: &Harness,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router(h.svc.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

const JSON: (&str, &str) = ("content-type", "application/json");
const AUTH: (&str, &str) = ("authorization", "Bearer t0ken");

async fn get(h: &Harness, uri: &str) -> Value {
    let (s, v) = send(h, "GET", uri, &[AUTH], Vec::new()).await;
    assert_eq!(s, StatusCode::OK, "{uri}: {v}");
    v
}

/// Polls until `f` holds (bounded): runs finish asynchronously.
async fn eventually(h: &Harness, what: &str, f: impl Fn(&Value, &Value) -> bool) -> (Value, Value) {
    for _ in 0..200 {
        let runs = get(h, "/api/runs").await;
        let incidents = get(h, "/api/incidents").await;
        if f(&runs, &incidents) {
            return (runs, incidents);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alertmanager_group_starts_one_run_per_new_incident_and_dedupes_resends() {
    let h = harness("");
    let body = payload("alertmanager-group.json");
    let (s, v) = send(
        &h,
        "POST",
        "/intake/alertmanager",
        &[JSON, AUTH],
        body.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let accepted = v["accepted"].as_u64().unwrap();
    assert!(accepted >= 2, "{v}");
    // The documented group has one firing and one resolved alert: one run.
    let (runs, incidents) = eventually(&h, "the run to finish", |runs, _| {
        runs.as_array().unwrap().len() == 1 && runs[0]["status"] == "succeeded"
    })
    .await;
    assert_eq!(runs.as_array().unwrap().len(), 1);
    let firing: Vec<_> = incidents
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "firing")
        .collect();
    assert_eq!(firing.len(), 1, "{incidents}");

    // The same group again: no second run, the incident counts the alert.
    let (s, _) = send(&h, "POST", "/intake/alertmanager", &[JSON, AUTH], body).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (runs, _) = eventually(&h, "the re-sent alert to be handled", |_, inc| {
        inc.as_array()
            .unwrap()
            .iter()
            .any(|i| i["status"] == "firing" && i["alerts"] == 2)
    })
    .await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");

    // The run's report has the timeline, with the annotation from the step.
    let id = runs[0]["id"].as_str().unwrap();
    let run = get(&h, &format!("/api/runs/{id}")).await;
    assert_eq!(run["steps"][0]["status"], "succeeded");
    assert!(
        run["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("note: ")),
        "{run}"
    );

    let (s, metrics) = send(&h, "GET", "/metrics", &[], Vec::new()).await;
    assert_eq!(s, StatusCode::OK);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("medic_alerts_received_total{source=\"alertmanager\",result=\"accepted\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("medic_runs{status=\"succeeded\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "medic_step_duration_seconds_count{component=\"echo\",result=\"succeeded\"} 1"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_a_4xx_that_says_what_is_wrong() {
    let h = harness("");
    let am = payload("alertmanager-group.json");
    /// (uri, headers, body, expected status, text the error must contain)
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "/intake/alertmanager",
            vec![JSON],
            am.clone(),
            StatusCode::UNAUTHORIZED,
            "bearer token",
        ),
        (
            "/intake/alertmanager",
            vec![JSON, ("authorization", "Bearer nope")],
            am.clone(),
            StatusCode::UNAUTHORIZED,
            "bearer token",
        ),
        (
            "/intake/alertmanager",
            vec![AUTH, ("content-type", "text/plain")],
            am.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/json",
        ),
        (
            "/intake/alertmanager",
            vec![JSON, AUTH],
            b"{\"version\": \"4\", ".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            "/intake/alertmanager",
            vec![JSON, AUTH],
            b"{\"version\": \"3\", \"alerts\": []}".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "version",
        ),
        (
            "/intake/nagios",
            vec![JSON, AUTH],
            am.clone(),
            StatusCode::NOT_FOUND,
            "unknown alert source `nagios`",
        ),
        (
            "/intake/generic",
            vec![JSON, AUTH],
            b"{}".to_vec(),
            StatusCode::NOT_FOUND,
            "generic intake is not configured",
        ),
        (
            "/intake/alertmanager",
            vec![JSON, AUTH],
            vec![b' '; 2 << 20],
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
        (
            "/api/runs",
            vec![],
            Vec::new(),
            StatusCode::UNAUTHORIZED,
            "bearer token",
        ),
    ];
    for (uri, headers, body, want, needle) in cases {
        let method = if uri.starts_with("/api") {
            "GET"
        } else {
            "POST"
        };
        let (s, v) = send(&h, method, uri, &headers, body).await;
        assert_eq!(s, want, "{uri} {headers:?}: {v}");
        assert!(
            v.to_string().contains(needle),
            "{uri}: {v} should mention {needle:?}"
        );
    }
    // Nothing above was accepted.
    assert_eq!(get(&h, "/api/incidents").await, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn pagerduty_signatures_rotation_and_duplicate_webhook_ids() {
    use hmac_sig::sign;
    let h = harness("[pagerduty]\nsecrets = [\"old-secret\", \"new-secret\"]\n");
    let body = payload("pagerduty-triggered.json");
    let pd = |sig: String, id: &'static str| {
        vec![
            JSON,
            (
                "x-pagerduty-signature",
                Box::leak(sig.into_boxed_str()) as &str,
            ),
            ("x-webhook-id", id),
        ]
    };

    let (s, v) = send(
        &h,
        "POST",
        "/intake/pagerduty",
        &pd(format!("v1={}", sign("wrong", &body)), "w1"),
        body.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // Signed with the new secret, header carrying both old and new signatures.
    let header = format!(
        "v1={},v1={}",
        sign("stale", &body),
        sign("new-secret", &body)
    );
    let (s, v) = send(
        &h,
        "POST",
        "/intake/pagerduty",
        &pd(header.clone(), "w2"),
        body.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["accepted"], 1);
    // PagerDuty retries with the same X-Webhook-Id: acknowledged, not stored again.
    let (s, v) = send(&h, "POST", "/intake/pagerduty", &pd(header, "w2"), body).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["duplicate"], true);
    let (_, incidents) = eventually(&h, "the pagerduty incident", |_, i| {
        i.as_array().unwrap().len() == 1
    })
    .await;
    assert_eq!(incidents[0]["alerts"], 1, "{incidents}");
    assert_eq!(incidents[0]["source"], "pagerduty");
}

/// HMAC-SHA256, as PagerDuty signs (hex), computed independently of medic's verifier.
mod hmac_sig {
    pub fn sign(secret: &str, body: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let mut key = secret.as_bytes().to_vec();
        if key.len() > 64 {
            key = Sha256::digest(&key).to_vec();
        }
        key.resize(64, 0);
        let ipad: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::digest([ipad.as_slice(), body].concat());
        hex::encode(Sha256::digest([opad.as_slice(), inner.as_slice()].concat()))
    }
}

/// Fired and resolved before the processor looks: both alerts are handled in one batch,
/// whose run is written only with the batch. The resolution must still reach that run.
#[tokio::test(flavor = "multi_thread")]
async fn an_incident_fired_and_resolved_within_one_batch_tells_its_new_run() {
    let h = harness_with_processor(
        "",
        "apiVersion: medic/v1\nkind: Workflow\nname: on-call\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n",
        false,
    );
    for body in ["grafana-firing.json", "grafana-resolved.json"] {
        let (s, v) = send(&h, "POST", "/intake/grafana", &[JSON, AUTH], payload(body)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}: {v}");
    }
    tokio::spawn(medic_server::process(h.svc.clone()));
    let (runs, _) = eventually(&h, "the run to finish", |runs, i| {
        i.as_array()
            .unwrap()
            .iter()
            .any(|i| i["status"] == "resolved")
            && runs
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["status"] != "running")
    })
    .await;
    let id = runs[0]["id"].as_str().unwrap();
    let journal = h.svc.engine().store().entries(id).unwrap();
    assert!(
        journal.iter().any(|e| matches!(
            e.event,
            medic_core::Event::IncidentUpdated {
                status: medic_model::IncidentStatus::Resolved,
                ..
            }
        )),
        "the run never heard its incident resolved: {journal:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grafana_firing_then_resolved_resolves_the_incident() {
    let h = harness("");
    let (s, v) = send(
        &h,
        "POST",
        "/intake/grafana",
        &[JSON, AUTH],
        payload("grafana-firing.json"),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (_, incidents) = eventually(&h, "the grafana incident and its run", |runs, i| {
        !i.as_array().unwrap().is_empty()
            && runs
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["status"] == "succeeded")
    })
    .await;
    assert!(
        incidents
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["source"] == "grafana" && i["status"] == "firing"),
        "{incidents}"
    );
    let (s, _) = send(
        &h,
        "POST",
        "/intake/grafana",
        &[JSON, AUTH],
        payload("grafana-resolved.json"),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (runs, incidents) = eventually(&h, "the resolution", |_, i| {
        i.as_array()
            .unwrap()
            .iter()
            .any(|i| i["status"] == "resolved" && !i["resolved"].is_null())
    })
    .await;
    // Resolving starts nothing new.
    assert_eq!(
        runs.as_array().unwrap().len(),
        incidents[0]["runs"].as_array().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_json_is_read_through_the_configured_mapping() {
    let h = harness(
        "[generic]\ntitle = \"/check/name\"\nseverity = \"/check/state\"\nstatus = \"/check/state\"\nfingerprint = \"/check/id\"\nlabels = \"/tags\"\nannotations = \"/details\"\nresolved_values = [\"OK\"]\n",
    );
    let (s, v) = send(
        &h,
        "POST",
        "/intake/generic",
        &[JSON, AUTH],
        payload("generic-object.json"),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (_, incidents) = eventually(&h, "the generic incident", |_, i| {
        i.as_array().unwrap().len() == 1
    })
    .await;
    let i = &incidents[0];
    assert_eq!(i["id"], "chk-9f2c");
    assert_eq!(i["title"], "checkout health");
    assert_eq!(i["severity"], "CRITICAL");
    assert_eq!(i["status"], "firing");
    assert_eq!(i["labels"]["service"], "checkout");
    assert_eq!(i["source"], "generic");
}

/// An Alertmanager v4 webhook with one alert per (fingerprint, instance), all for the
/// checkout service.
/// How many runs the first incident names (its current occurrence's).
fn inc_runs(incidents: &serde_json::Value) -> usize {
    incidents[0]["runs"].as_array().map_or(0, Vec::len)
}

fn checkout_alerts(status: &str, alerts: &[(&str, &str)]) -> Vec<u8> {
    checkout_alerts_from(status, alerts, "2026-11-22T03:00:00Z")
}

/// [`checkout_alerts`] whose alerts started at `starts_at` (RFC 3339).
fn checkout_alerts_from(status: &str, alerts: &[(&str, &str)], starts_at: &str) -> Vec<u8> {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(fp, instance)| {
            serde_json::json!({"status": status,
                "labels": {"alertname": "CheckoutErrors", "service": "checkout", "instance": instance},
                "annotations": {}, "startsAt": starts_at,
                "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fp})
        })
        .collect();
    serde_json::json!({"version": "4", "groupKey": "{}:{service=\"checkout\"}", "status": status,
        "receiver": "medic", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://am", "alerts": alerts})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn group_by_makes_several_alerts_one_incident_that_resolves_with_the_last() {
    let h = harness_with(
        "",
        "apiVersion: medic/v1\nkind: Workflow\nname: checkout\ntrigger:\n  matchers: ['alertname=\"CheckoutErrors\"']\n  group-by: [service]\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: { annotate: '{{ incident.labels.instance }}' }\n",
    );
    let post = |body: Vec<u8>| send(&h, "POST", "/intake/alertmanager", &[JSON, AUTH], body);
    let (s, v) = post(checkout_alerts(
        "firing",
        &[("a1", "pod-1"), ("a2", "pod-2")],
    ))
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // A third instance joins later: still the same incident, still one run.
    let (s, _) = post(checkout_alerts("firing", &[("a3", "pod-3")])).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // Runs and incidents are read one after the other while the processor works: wait
    // for what is asserted on both.
    let (runs, incidents) = eventually(&h, "three alerts in one incident", |runs, inc| {
        inc.as_array().unwrap().len() == 1
            && inc[0]["alerts"] == 3
            && !runs.as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(incidents[0]["status"], "firing");

    // Two of three resolve: the incident still fires.
    let (s, _) = post(checkout_alerts(
        "resolved",
        &[("a1", "pod-1"), ("a3", "pod-3")],
    ))
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let incidents = get(&h, "/api/incidents").await;
    assert_eq!(incidents[0]["status"], "firing", "{incidents}");
    // The last one resolves: so does the incident.
    let (s, _) = post(checkout_alerts("resolved", &[("a2", "pod-2")])).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (runs, _) = eventually(&h, "the incident to resolve", |_, inc| {
        inc[0]["status"] == "resolved"
    })
    .await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");

    // A new firing after the resolution (it started after the occurrence ended: not a
    // late copy from an Alertmanager replica) is a new occurrence with its own run.
    let later = medic_model::time::format_ms(
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
            + 1_000,
    );
    let (s, _) = post(checkout_alerts_from("firing", &[("a2", "pod-2")], &later)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (runs, incidents) = eventually(&h, "a second occurrence", |runs, inc| {
        runs.as_array().unwrap().len() >= 2 && inc[0]["generation"] == 2
    })
    .await;
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    assert_eq!(inc_runs(&incidents), 1, "{incidents}");
}
