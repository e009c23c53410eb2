//! Real Prometheus and Alertmanager, started by the harness (`harness::prom_stack`), proven
//! here with a plain recording receiver: the notifications `medic serve` is tested against
//! are the ones monitoring actually sends.

use crate::harness::prom_stack::{
    CHECKOUT_RULES, MetricTarget, PromStack, RECEIVER, Request, StackConfig, WebhookReceiver,
};
use crate::support::poll_until;
use std::time::{Duration, Instant};

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
        rules: CHECKOUT_RULES,
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
