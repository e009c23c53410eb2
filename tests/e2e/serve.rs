//! `medic serve` as a process: alerts in over HTTP, runs out; kill -9 loses nothing acked.

use crate::harness::serve::{Serve, TOKEN, http};
use crate::support::free_port;
use serde_json::json;
use std::time::{Duration, Instant};

/// An Alertmanager v4 webhook (documented format) carrying one firing alert.
fn alertmanager(i: usize) -> String {
    json!({
        "version": "4", "groupKey": format!("{{}}:{{alertname=\"Burst{i}\"}}"), "truncatedAlerts": 0,
        "status": "firing", "receiver": "medic", "groupLabels": {"alertname": format!("Burst{i}")},
        "commonLabels": {"alertname": format!("Burst{i}")}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": "firing", "labels": {"alertname": format!("Burst{i}"), "severity": "critical"},
            "annotations": {"summary": format!("burst alert {i}")},
            "startsAt": "2026-11-22T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": format!("{i:016x}")
        }]
    })
    .to_string()
}

#[test]
fn kill_9_after_a_burst_of_acknowledged_alerts_loses_none_and_duplicates_none() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut serve = Serve::start(dir.path(), port);
    let mut acked = 0;
    for i in 0..40 {
        let (status, body) =
            http(port, "POST", "/intake/alertmanager", Some(&alertmanager(i))).unwrap();
        assert_eq!(status, 202, "{body}");
        acked += 1;
        // Every alert is sent twice: re-sends must not start second runs.
        let (status, _) =
            http(port, "POST", "/intake/alertmanager", Some(&alertmanager(i))).unwrap();
        assert_eq!(status, 202);
    }
    serve.child.kill().unwrap(); // SIGKILL, right after the last acknowledgement
    serve.child.wait().unwrap();
    drop(serve);

    let serve = Serve::start(dir.path(), free_port());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let incidents = serve.get("/api/incidents");
        let runs = serve.get("/api/runs");
        let done = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "succeeded")
            .count();
        if incidents.as_array().unwrap().len() == acked && done == acked {
            // One incident per alert, each with exactly one run, counting both sends.
            for inc in incidents.as_array().unwrap() {
                assert_eq!(inc["runs"].as_array().unwrap().len(), 1, "{inc}");
                assert_eq!(inc["alerts"], 2, "{inc}");
            }
            assert_eq!(runs.as_array().unwrap().len(), acked);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after restart: {} incidents, {done} finished runs of {acked} acked alerts",
            incidents.as_array().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, metrics) = http(serve.port, "GET", "/metrics", None).unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!("medic_runs{{status=\"succeeded\"}} {acked}")),
        "{metrics}"
    );
}

/// Real Prometheus scrapes a target whose metric the test flips; its rule fires; real
/// Alertmanager posts to `medic serve`; the checkout-flag workflow runs against the
/// stand-in service and retoggles the flag. Then the metric recovers, the resolved
/// notification arrives and the incident shows resolved. Prometheus also scrapes medic.
#[test]
fn real_prometheus_and_alertmanager_drive_medic_serve_end_to_end() {
    use crate::harness::prom_stack::{MetricTarget, PromStack, StackConfig};
    use crate::support::poll_until;
    let service = crate::support::StandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let workflow = std::fs::read_to_string(
        crate::support::repo().join("examples/checkout-flag/workflow.yaml"),
    )
    .unwrap();
    let serve = Serve::with_workflows(dir.path(), port, &[("checkout-flag.yaml", workflow)]);
    let target = MetricTarget::start("checkout_errors_ratio", 0.0);
    let rules = format!(
        "groups:\n  - name: checkout\n    rules:\n      - alert: CheckoutErrorRate\n        expr: checkout_errors_ratio > 0.05\n        for: 0s\n        labels:\n          severity: critical\n          service: checkout\n        annotations:\n          summary: \"checkout 5xx ratio is {{{{ $value }}}}\"\n          service_url: \"{}\"\n",
        service.url()
    );
    let hook = format!("http://127.0.0.1:{port}/intake/alertmanager");
    let stack = PromStack::start(StackConfig {
        scrape_targets: vec![
            (
                "checkout",
                format!("127.0.0.1:{}", target.port()),
                "/metrics",
            ),
            ("medic", format!("127.0.0.1:{port}"), "/metrics"),
        ],
        rules: &rules,
        webhook_url: &hook,
        webhook_bearer: Some(TOKEN),
    });
    let up = |job: &str| {
        poll_until(Duration::from_secs(30), || {
            stack.target_health(job).filter(|h| h == "up")
        })
    };
    assert!(up("checkout").is_some(), "{}", stack.diagnostics());
    assert!(
        up("medic").is_some(),
        "Prometheus cannot scrape medic's /metrics\n{}",
        stack.diagnostics()
    );

    target.set(0.5);
    let run = poll_until(Duration::from_secs(90), || {
        let runs = serve.get("/api/runs");
        runs.as_array()?
            .iter()
            .find(|r| r["status"] != "running")
            .cloned()
    })
    .unwrap_or_else(|| panic!("no finished run\n{}", stack.diagnostics()));
    assert_eq!(run["workflow"], "checkout-bad-flag");
    assert_eq!(
        run["status"],
        "succeeded",
        "{}",
        serve.get(&format!("/api/runs/{}", run["id"].as_str().unwrap()))
    );
    assert_eq!(
        service.get("/flags/new-checkout")["enabled"],
        false,
        "the flag was retoggled"
    );
    let incidents = serve.get("/api/incidents");
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    assert_eq!(incidents[0]["status"], "firing");
    assert_eq!(incidents[0]["source"], "alertmanager");

    target.set(0.0);
    let resolved = poll_until(Duration::from_secs(90), || {
        let i = serve.get("/api/incidents");
        (i[0]["status"] == "resolved").then_some(i)
    });
    assert!(resolved.is_some(), "no resolution\n{}", stack.diagnostics());
    assert_eq!(
        serve.get("/api/runs").as_array().unwrap().len(),
        1,
        "resolution starts nothing"
    );
    assert_eq!(stack.target_health("medic").as_deref(), Some("up"));
}
