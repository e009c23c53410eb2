//! Postmortem drafts of real runs: an alert that starts two workflows in `medic serve`
//! gets one postmortem on the API (`/api/incidents/{id}/postmortem`) and from
//! `medic postmortem`, byte for byte the same; a follow-up step posts its run's time to
//! mitigate and postmortem link. The journals are recorded into tests/golden/postmortem/
//! with `MEDIC_BLESS=1` for the golden tests of medic-postmortem (examples_restore.rs
//! records the examples' journals the same way).

use crate::harness::serve::{Serve, TOKEN, http};
use crate::support::{free_port, medic};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

// ---- harness, shared with examples_restore ----

/// The journal of each run, as `medic runs show RUN --json --journal` prints it (the store
/// must be free: stop `medic serve` first). With `MEDIC_BLESS=1`, also written to
/// tests/golden/postmortem/<name>.journals.json, the fixture of medic-postmortem's golden
/// tests, with every value of `secrets` (`(name, value)`) replaced by `[redacted:NAME]`
/// in case one reached the journal (the callers also assert that none did).
pub fn record_journals(
    data: &Path,
    runs: &[String],
    name: &str,
    secrets: &[(&str, &str)],
) -> Value {
    let recorded: Vec<Value> = runs
        .iter()
        .map(|id| {
            let out = medic()
                .arg("--data")
                .arg(data)
                .args(["runs", "show", id, "--json", "--journal"])
                .output()
                .unwrap();
            assert!(out.status.success(), "runs show {id}: {out:?}");
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            json!({"id": id, "entries": report["journal"]})
        })
        .collect();
    let doc = Value::Array(recorded);
    if std::env::var("MEDIC_BLESS").is_ok_and(|v| v == "1") {
        let dir = crate::support::repo().join("tests/golden/postmortem");
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        for (secret, value) in secrets.iter().filter(|(_, v)| v.len() >= 8) {
            text = text.replace(value, &format!("[redacted:{secret}]"));
        }
        std::fs::write(dir.join(format!("{name}.journals.json")), text).unwrap();
    }
    doc
}

/// `medic postmortem ID --format FORMAT` on a store: stdout.
pub fn postmortem_cli(data: &Path, id: &str, format: &str, extra: &[&str]) -> String {
    let out = medic()
        .arg("--data")
        .arg(data)
        .args(["postmortem", id, "--format", format])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "medic postmortem {id}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Fails naming the output and format when `secret` appears in any of them, as is or
/// base64-encoded (the Markdown embeds the picture as base64).
pub fn assert_no_secret(outputs: &[(&str, &str)], secrets: &[&str]) {
    use base64::Engine as _;
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        for (name, text) in outputs {
            assert!(!text.contains(secret), "{name} contains a secret value");
            assert!(
                !text.contains(&b64[..b64.len() - 4]),
                "{name} contains a secret, base64"
            );
        }
    }
}

// ---- tests ----

const TRIAGE: &str = r#"apiVersion: medic/v1
kind: Workflow
name: triage
trigger:
  matchers: ['alertname="CheckoutDown"']
steps:
  - id: look
    phase: detect
    uses: echo
    with: { annotate: "looked at {{ incident.title }}" }
  - id: tell
    phase: communicate
    uses: echo
    with: { annotate: "told #incidents" }
  - id: flip
    phase: restore
    uses: echo
    with: { annotate: "flag off", retryable: true, retry_after_ms: 400, retry_until_attempt: 2 }
    retry: { attempts: 3 }
  - id: check
    phase: verify
    uses: echo
    with: { annotate: "healthy" }
"#;

const ESCALATE: &str = r#"apiVersion: medic/v1
kind: Workflow
name: escalate
trigger:
  matchers: ['alertname="CheckoutDown"']
steps:
  - id: ask
    phase: restore
    gate: { prompt: "Roll checkout back?", approvers: [alice], deadline: 10m, on-deadline: reject }
  - id: rollback
    phase: restore
    if: steps.ask.output.approved
    uses: echo
    with: { annotate: "rolled back" }
  - id: report
    phase: follow-up
    uses: echo
    with: { annotate: "restored in {{ run.metrics.time_to_mitigate.text }}, postmortem draft: {{ run.postmortem_url }}" }
"#;

/// An Alertmanager notification for the checkout alert; impact started at `starts_ms`
/// (a real alert's `startsAt` is minutes before medic hears of it, not days).
fn alert(status: &str, starts_ms: u64) -> String {
    let now = medic_core::clock::rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"CheckoutDown\"}", "truncatedAlerts": 0,
        "status": status, "receiver": "medic", "groupLabels": {"alertname": "CheckoutDown"},
        "commonLabels": {"alertname": "CheckoutDown"}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": status, "labels": {"alertname": "CheckoutDown", "severity": "critical"},
            "annotations": {"summary": "checkout answers 503"},
            "startsAt": medic_core::clock::rfc3339(starts_ms),
            "endsAt": if status == "resolved" { now } else { "0001-01-01T00:00:00Z".into() },
            "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": "c4ec0a7d00000002"
        }]
    })
    .to_string()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_incident_with_two_runs_gets_one_postmortem_on_the_api_and_the_cli() {
    // Impact started 90 s before the alert reached medic.
    let starts_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 90_000;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = "external_url = \"https://medic.example.com\"\n";
    let serve = Serve::with_config(
        dir.path(),
        port,
        &[
            ("triage.yaml", TRIAGE.into()),
            ("escalate.yaml", ESCALATE.into()),
        ],
        extra,
    );
    let (status, body) = http(
        port,
        "POST",
        "/intake/alertmanager",
        Some(&alert("firing", starts_ms)),
    )
    .unwrap();
    assert_eq!(status, 202, "{body}");

    let runs = || serve.get("/api/runs");
    wait_for("both runs", || runs().as_array().unwrap().len() == 2);
    let ids: Vec<String> = runs()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let escalate = ids
        .iter()
        .find(|i| i.starts_with("escalate"))
        .unwrap()
        .clone();
    wait_for("the gate to open", || {
        let run = serve.get(&format!("/api/runs/{escalate}"));
        run["steps"][0]["gate"]["open"] == true
    });
    // Alertmanager says the alerts resolved while the gate waits: journalled by that run.
    let (status, body) = http(
        port,
        "POST",
        "/intake/alertmanager",
        Some(&alert("resolved", starts_ms)),
    )
    .unwrap();
    assert_eq!(status, 202, "{body}");
    wait_for("the resolution to reach the run", || {
        serve.get(&format!("/api/runs/{escalate}"))["incident"]["status"] == "resolved"
    });
    let decision =
        json!({"decision": "approve", "by": "alice", "comment": "error rate still rising"});
    let (status, body) = http(
        port,
        "POST",
        &format!("/api/runs/{escalate}/gates/ask"),
        Some(&decision.to_string()),
    )
    .unwrap();
    assert_eq!(status, 202, "{body}");
    wait_for("both runs to finish", || {
        runs()
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "succeeded")
    });

    let incident = serve.get("/api/incidents")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let api = |path: &str| {
        let (status, body) = http(port, "GET", path, None).unwrap();
        (status, body)
    };
    let (status, json_api) = api(&format!("/api/incidents/{incident}/postmortem?format=json"));
    assert_eq!(status, 200, "{json_api}");
    let facts: Value = serde_json::from_str(&json_api).unwrap();
    assert_eq!(facts["runs"].as_array().unwrap().len(), 2);
    assert_eq!(facts["incident"]["status"], "resolved");
    assert_eq!(facts["gates"][0]["by"], "alice");
    assert_eq!(facts["gates"][0]["comment"], "error rate still rising");
    assert!(facts["metrics"]["time_to_mitigate"]["seconds"].is_number());
    assert!(facts["metrics"]["time_to_resolve"]["seconds"].is_number());
    let kinds: Vec<&str> = facts["restore"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["other", "other"],
        "echo is neither a flag nor a rollout"
    );
    assert!(
        facts["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "retry" && r["step"] == "flip")
    );
    let (status, md) = api(&format!("/api/incidents/{incident}/postmortem"));
    assert_eq!(status, 200);
    assert!(md.starts_with("# Postmortem draft: CheckoutDown"), "{md}");
    let (status, svg) = api(&format!("/api/runs/{escalate}/postmortem?format=svg"));
    assert_eq!(status, 200);
    assert!(svg.starts_with("<svg"));
    let (status, html) = api(&format!("/api/incidents/{incident}/postmortem?format=html"));
    assert_eq!((status, html.starts_with("<!DOCTYPE html>")), (200, true));
    let (status, body) = api(&format!("/api/runs/{escalate}/postmortem?format=pdf"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("md, json, html or svg"), "{body}");
    let (status, _) = api("/api/incidents/nope/postmortem");
    assert_eq!(status, 404);
    let (status, _) = crate::support::http_request(
        &format!("127.0.0.1:{port}"),
        "GET",
        &format!("/api/runs/{escalate}/postmortem"),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(status, 401, "the postmortem is behind the API token");

    // The follow-up step got its run's metrics and link in its template.
    let run = serve.get(&format!("/api/runs/{escalate}"));
    let report = run["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|l| l.as_str().filter(|l| l.contains("restored in")))
        .unwrap_or_else(|| panic!("no report note: {run:#}"))
        .to_string();
    assert!(
        report.contains(&format!(
            "postmortem draft: https://medic.example.com/api/runs/{escalate}/postmortem"
        )),
        "{report}"
    );
    assert!(
        !report.contains("unknown"),
        "time to mitigate was known: {report}"
    );

    drop(serve);
    // The CLI on the same store and config writes the same bytes as the API.
    let config = dir.path().join("medic.toml");
    let config = config.to_str().unwrap();
    let json_cli = postmortem_cli(dir.path(), &incident, "json", &["--config", config]);
    assert_eq!(json_cli, json_api);
    let out = dir.path().join("pm.md");
    postmortem_cli(
        dir.path(),
        &incident,
        "md",
        &["--config", config, "-o", out.to_str().unwrap()],
    );
    let md_file = std::fs::read_to_string(&out).unwrap();
    assert!(
        md_file.contains("](pm.svg)"),
        "the picture is linked beside it"
    );
    assert!(dir.path().join("pm.svg").exists());
    let template = dir.path().join("team.md");
    std::fs::write(
        &template,
        "{{ incident.title }}: mitigated in {{ metrics.time_to_mitigate.text }}\n",
    )
    .unwrap();
    let team = postmortem_cli(
        dir.path(),
        &incident,
        "md",
        &["--template", template.to_str().unwrap()],
    );
    // Alertmanager's intake titles the incident `alertname — summary`; impact started
    // 90 s before the alert, so minutes (not days, not seconds) to mitigate.
    assert!(
        team.starts_with("CheckoutDown — checkout answers 503: mitigated in ")
            && team.contains(" m "),
        "{team}"
    );
    assert_no_secret(
        &[("md", &md), ("json", &json_api), ("html", &html)],
        &[TOKEN],
    );

    let mut ids = ids;
    ids.sort();
    record_journals(dir.path(), &ids, "two-runs", &[("TOKEN", TOKEN)]);
}
