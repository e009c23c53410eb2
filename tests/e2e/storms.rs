//! Alert storms and a long life (`medic serve`): a critical alert overtakes a backlog of
//! warnings, storm control caps the runs a workflow starts, and retention removes finished
//! runs while open ones survive a restart.

use crate::harness::serve::{Serve, http};
use crate::support::{StandIn, free_port, poll_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An Alertmanager v4 webhook with one firing alert per name, of `severity`.
fn group(names: &[String], severity: &str) -> String {
    let alerts: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({
                "status": "firing", "labels": {"alertname": n, "severity": severity},
                "annotations": {"summary": format!("{n} is failing")},
                "startsAt": "2026-11-22T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph"
            })
        })
        .collect();
    json!({
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "medic", "groupLabels": {}, "commonLabels": {"severity": severity},
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093", "alerts": alerts
    })
    .to_string()
}

fn post(serve: &Serve, body: &str) -> u64 {
    let (status, answer) = http(serve.port, "POST", "/intake/alertmanager", Some(body)).unwrap();
    assert_eq!(status, 202, "{answer}");
    serde_json::from_str::<Value>(&answer).unwrap()["accepted"]
        .as_u64()
        .unwrap()
}

fn metric(serve: &Serve, line_start: &str) -> Option<u64> {
    let (_, text) = http(serve.port, "GET", "/metrics", None).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
}

fn runs(serve: &Serve) -> Vec<Value> {
    serve.get("/api/runs").as_array().unwrap().clone()
}

#[test]
fn a_critical_alert_starts_before_a_backlog_of_4000_warnings_drains_and_every_warning_is_handled()
 {
    let provider = StandIn::start();
    let p = provider.port;
    let wf = format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: probe\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: check\n    phase: detect\n    uses: http-probe\n    allow: [\"127.0.0.1:{p}\"]\n    with: {{ url: \"http://127.0.0.1:{p}/slow?ms=50\" }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::with_workflows(dir.path(), free_port(), &[("probe.yaml", wf)]);
    let mut accepted = 0;
    for g in 0..40 {
        let names: Vec<String> = (0..100).map(|i| format!("Warn{g}x{i}")).collect();
        accepted += post(&serve, &group(&names, "warning"));
    }
    assert_eq!(accepted, 4000);

    let posted = Instant::now();
    post(&serve, &group(&["Critical0".to_string()], "critical"));
    // The critical run's first step has started (running or done) ...
    let mut crit = None;
    while posted.elapsed() < Duration::from_secs(60) {
        let (_, body) = http(serve.port, "GET", "/api/runs", None).unwrap();
        let all: Value = serde_json::from_str(&body).unwrap();
        if let Some(id) = all
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["incident"] == "Critical0 — Critical0 is failing")
            .and_then(|r| r["id"].as_str())
        {
            let run = serve.get(&format!("/api/runs/{id}"));
            if run["steps"][0]["status"] != "pending" {
                crit = Some(posted.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let latency = crit.expect("the critical alert's step never started");
    // ... while warnings are still waiting: it did not wait for the backlog.
    let unfinished = runs(&serve)
        .iter()
        .filter(|r| r["status"] == "running")
        .count();
    println!(
        "critical alert to first step started: {} ms (polled), with {unfinished} warning runs unfinished",
        latency.as_millis()
    );
    assert!(
        unfinished > 0,
        "the backlog had drained before the critical step started"
    );

    // Every warning is still handled: 4,001 runs, all succeeded.
    let done = poll_until(Duration::from_secs(900), || {
        let all = runs(&serve);
        (all.len() == 4001 && all.iter().all(|r| r["status"] == "succeeded")).then_some(())
    });
    assert!(
        done.is_some(),
        "not every warning alert was handled: {} runs",
        runs(&serve).len()
    );
    assert_eq!(
        metric(&serve, "medic_inbox_items_total{state=\"handled\"}"),
        Some(4001)
    );
}

#[test]
fn the_storm_cap_suppresses_the_21st_run_inside_a_minute_and_records_it_on_the_incident() {
    let dir = tempfile::tempdir().unwrap();
    let note = "apiVersion: medic/v1\nkind: Workflow\nname: page-oncall\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: { annotate: '{{ incident.title }}' }\n";
    let serve = Serve::with_config(
        dir.path(),
        free_port(),
        &[("page.yaml", note.to_string())],
        "[storm]\nmax_runs = 20\nper = \"1m\"\n",
    );
    for i in 0..21 {
        post(&serve, &group(&[format!("Storm{i}")], "critical"));
    }
    // A re-send of the 21st alert joins its incident; it starts nothing either.
    post(&serve, &group(&["Storm20".to_string()], "critical"));
    let handled = poll_until(Duration::from_secs(60), || {
        (metric(&serve, "medic_inbox_items_total{state=\"handled\"}") == Some(22)).then_some(())
    });
    assert!(handled.is_some(), "the inbox was not handled");
    let incidents = serve.get("/api/incidents");
    let incidents = incidents.as_array().unwrap();
    // Nothing acknowledged is lost: every alert has its incident.
    assert_eq!(incidents.len(), 21, "{incidents:?}");
    let suppressed: Vec<&Value> = incidents
        .iter()
        .filter(|i| !i["suppressed"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(suppressed.len(), 1, "{suppressed:?}");
    let s = suppressed[0];
    assert_eq!(s["title"], "Storm20 — Storm20 is failing", "{s}");
    assert_eq!(s["alerts"], 2, "{s}");
    assert_eq!(s["runs"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(s["suppressed"][0]["workflow"], "page-oncall");
    let reason = s["suppressed"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("suppressed by storm control: 20 runs of `page-oncall` already started in the last 1m"),
        "{reason}"
    );
    let done = poll_until(Duration::from_secs(60), || {
        let all = runs(&serve);
        (all.len() == 20 && all.iter().all(|r| r["status"] == "succeeded")).then_some(())
    });
    assert!(done.is_some(), "{:?}", runs(&serve));
    assert_eq!(
        metric(&serve, "medic_storm_suppressed_total{workflow=\"page-oncall\"}"),
        Some(1)
    );
}
