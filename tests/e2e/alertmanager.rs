//! Real Alertmanager: the harness in `prom_stack` proven against a plain recording receiver
//! (firing and resolved notifications as the webhook receiver documents them), and two
//! replicas in a cluster both notifying `medic serve`, which runs the workflow once.

use crate::prom_stack::{
    MetricTarget, PromStack, RECEIVER, Request, StackConfig, WebhookReceiver, http_get, poll_until,
};
use crate::serve::{Serve, free_port, http};
use std::time::{Duration, Instant};

const RULES: &str = r#"groups:
  - name: checkout
    rules:
      - alert: CheckoutErrorRate
        expr: checkout_errors_ratio > 0.05
        for: 0s
        labels:
          severity: critical
          service: checkout
        annotations:
          summary: "checkout 5xx ratio is {{ $value }}"
"#;

const TOKEN: &str = "s3cret-intake-token";
const HOOK_PATH: &str = "/intake/alertmanager";

fn nonempty(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

/// Waits for the webhook notification whose `status` is `status`, checks what every
/// notification must carry, and returns its single alert.
fn notification(hook: &WebhookReceiver, stack: &PromStack, status: &str) -> serde_json::Value {
    let since = Instant::now();
    let is_status = |r: &Request| {
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        v["status"] == status
    };
    let req = hook
        .wait_for(Duration::from_secs(60), is_status)
        .unwrap_or_else(|| panic!("no {status} notification in 60 s\n{}", stack.diagnostics()));
    eprintln!("{status} notification after {:?}", since.elapsed());
    let bearer = format!("Bearer {TOKEN}");
    let ctype = req.header("content-type").unwrap_or_default();
    let ok = req.method == "POST" && req.path == HOOK_PATH && ctype.starts_with("application/json");
    assert!(
        ok && req.header("authorization") == Some(&bearer),
        "{req:?}"
    );
    let body = req.json();
    let alert = body["alerts"][0].clone();
    let ok = body["version"] == "4" && body["receiver"] == RECEIVER && nonempty(&body["groupKey"]);
    assert!(
        ok && body["alerts"].as_array().map(Vec::len) == Some(1),
        "{body}"
    );
    assert!(
        alert["status"] == status && nonempty(&alert["fingerprint"]),
        "{body}"
    );
    let labels = [
        ("alertname", "CheckoutErrorRate"),
        ("severity", "critical"),
        ("service", "checkout"),
        ("job", "checkout"),
    ];
    for (name, value) in labels {
        assert_eq!(alert["labels"][name], value, "label {name}: {body}");
    }
    alert
}

#[test]
fn real_alertmanager_delivers_firing_and_resolved_notifications() {
    let started = Instant::now();
    let target = MetricTarget::start("checkout_errors_ratio", 0.0);
    let hook = WebhookReceiver::start();
    let hook_url = hook.url(HOOK_PATH);
    let scrape = format!("127.0.0.1:{}", target.port());
    let stack = PromStack::start(StackConfig {
        scrape_targets: vec![("checkout", scrape, "/metrics")],
        rules: RULES,
        webhook_url: &hook_url,
        webhook_bearer: Some(TOKEN),
    });
    eprintln!("stack ready after {:?}", started.elapsed());

    let up = || stack.target_health("checkout").filter(|h| h == "up");
    let diag = || stack.diagnostics();
    assert!(
        poll_until(Duration::from_secs(30), up).is_some(),
        "never up\n{}",
        diag()
    );
    eprintln!("checkout target up after {:?}", started.elapsed());
    let seen = hook.requests();
    assert!(seen.is_empty(), "notified while healthy: {seen:?}");

    target.set(0.5);
    let firing = notification(&hook, &stack, "firing");
    let summary = &firing["annotations"]["summary"];
    assert_eq!(summary, "checkout 5xx ratio is 0.5", "{firing}");
    assert_eq!(firing["endsAt"], "0001-01-01T00:00:00Z", "{firing}");
    assert_eq!(stack.alerts()[0]["state"], "firing", "{}", diag());

    target.set(0.0);
    let resolved = notification(&hook, &stack, "resolved");
    assert_eq!(resolved["fingerprint"], firing["fingerprint"], "{resolved}");
    assert_eq!(resolved["startsAt"], firing["startsAt"], "{resolved}");
    assert_ne!(resolved["endsAt"], "0001-01-01T00:00:00Z", "{resolved}");
    assert_eq!(stack.target_health("checkout").as_deref(), Some("up"));
    eprintln!("whole test {:?}", started.elapsed());
}

/// How many webhook notifications an Alertmanager says it sent (its own `/metrics`).
fn notifications_sent(am_url: &str) -> u64 {
    let (_, text) = http_get(&format!("{am_url}/metrics")).unwrap();
    text.lines()
        .filter(|l| l.starts_with("alertmanager_notifications_total{") && l.contains("webhook"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Issue 11: Alertmanager in HA runs as gossiping replicas that each notify; medic must
/// run the workflow once for an alert that fires and resolves, whatever order and number
/// of copies the replicas deliver (late copies included: docs/serve.md, occurrences).
#[test]
fn two_clustered_alertmanagers_notifying_medic_run_the_workflow_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let serve = Serve::start(dir.path(), port);
    let target = MetricTarget::start("checkout_errors_ratio", 0.0);
    let hook = format!("http://127.0.0.1:{port}/intake/alertmanager");
    let stack = PromStack::start_cluster(
        StackConfig {
            scrape_targets: vec![(
                "checkout",
                format!("127.0.0.1:{}", target.port()),
                "/metrics",
            )],
            rules: RULES,
            webhook_url: &hook,
            webhook_bearer: Some(crate::serve::TOKEN),
        },
        2,
    );
    let up = || stack.target_health("checkout").filter(|h| h == "up");
    assert!(
        poll_until(Duration::from_secs(30), up).is_some(),
        "{}",
        stack.diagnostics()
    );

    target.set(0.5);
    let fired = poll_until(Duration::from_secs(90), || {
        let runs = serve.get("/api/runs");
        (runs.as_array()?.iter().any(|r| r["status"] != "running")).then_some(runs)
    });
    assert!(fired.is_some(), "no finished run\n{}", stack.diagnostics());

    target.set(0.0);
    let resolved = poll_until(Duration::from_secs(90), || {
        let i = serve.get("/api/incidents");
        (i[0]["status"] == "resolved").then_some(i)
    });
    assert!(resolved.is_some(), "no resolution\n{}", stack.diagnostics());
    // Both replicas notified: the copies medic had to fold into one occurrence.
    let sent: Vec<u64> = (stack.alertmanager_urls().iter())
        .map(|u| {
            let some = || Some(notifications_sent(u)).filter(|n| *n >= 1);
            poll_until(Duration::from_secs(30), some).unwrap_or(0)
        })
        .collect();
    assert!(
        sent.iter().all(|n| *n >= 1),
        "each replica notifies: {sent:?}\n{}",
        stack.diagnostics()
    );
    // Let any late copy arrive (group_interval is 1 s), then count.
    std::thread::sleep(Duration::from_secs(5));
    let (_, metrics) = http(port, "GET", "/metrics", None).unwrap();
    let accepted = "medic_alerts_received_total{source=\"alertmanager\",result=\"accepted\"}";
    let received: u64 = (metrics.lines())
        .find_map(|l| l.strip_prefix(accepted)?.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        received >= sent.iter().sum::<u64>(),
        "{received} received, {sent:?} sent"
    );

    let incidents = serve.get("/api/incidents");
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    assert_eq!(incidents[0]["generation"], 1, "{incidents}");
    assert_eq!(incidents[0]["status"], "resolved", "{incidents}");
    let runs = serve.get("/api/runs");
    assert_eq!(runs.as_array().unwrap().len(), 1, "exactly one run: {runs}");
    assert_eq!(runs[0]["status"], "succeeded", "{runs}");
}
