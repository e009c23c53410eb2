//! The `prom-check` step through the real engine against a real Prometheus that scrapes a
//! metric the test controls (prom_stack's MetricTarget): the step sees what monitoring sees.

use crate::harness::prom_stack::{MetricTarget, PromStack, StackConfig, WebhookReceiver};
use crate::support::{Ran, engine_with, http_get, new_run, poll_until};
use medic_core::{Event, FailureKind, HostCall, JournalStore, RunState, RunStatus};
use std::time::Duration;

const METRIC: &str = "checkout_errors_ratio";

/// Prometheus scraping one MetricTarget every second (job `checkout`). The Alertmanager
/// the stack also starts is unused here.
struct Setup {
    target: MetricTarget,
    stack: PromStack,
    _hook: WebhookReceiver,
}

impl Setup {
    fn start(value: f64) -> Setup {
        let target = MetricTarget::start(METRIC, value);
        let hook = WebhookReceiver::start();
        let scrape = format!("127.0.0.1:{}", target.port());
        let stack = PromStack::start(StackConfig {
            scrape_targets: vec![("checkout", scrape, "/metrics")],
            rules: "groups: []\n",
            webhook_url: &hook.url("/unused"),
            webhook_bearer: None,
        });
        let setup = Setup {
            target,
            stack,
            _hook: hook,
        };
        setup.wait_for(value);
        setup
    }

    /// Sets the metric and waits until Prometheus's latest sample has the new value.
    fn set(&self, value: f64) {
        self.target.set(value);
        self.wait_for(value);
    }

    fn wait_for(&self, value: f64) {
        let url = format!("{}/api/v1/query?query={METRIC}", self.stack.prometheus_url);
        let seen = poll_until(Duration::from_secs(30), || {
            let (_, body) = http_get(&url).ok()?;
            let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
            let v = doc["data"]["result"][0]["value"][1]
                .as_str()?
                .parse::<f64>()
                .ok()?;
            (v == value).then_some(())
        });
        assert!(
            seen.is_some(),
            "prometheus never saw {METRIC} = {value}\n{}",
            self.stack.diagnostics()
        );
    }
}

/// A one-step verify workflow running prom-check with `with` (a YAML flow mapping body).
fn workflow(stack: &PromStack, with: &str, retry: &str) -> String {
    let host = stack.prometheus_url.trim_start_matches("http://");
    format!(
        r#"apiVersion: medic/v1
kind: Workflow
name: recovered
steps:
  - id: check
    phase: verify
    uses: prom-check
    with: {{ url: "{url}", {with} }}
    allow: ["{host}"]
    secrets: [PROM_TOKEN]
    retry: {retry}
    timeout: 20s
"#,
        url = stack.prometheus_url
    )
}

/// What these tests read from a run beyond the shared [`Ran`] helpers.
trait CheckRan {
    /// The messages of the failed attempts, in order.
    fn failures(&self) -> Vec<String>;
}

impl CheckRan for Ran {
    fn failures(&self) -> Vec<String> {
        let failures = self.entries.iter().filter_map(|e| match &e.event {
            Event::AttemptFailed { failure, .. } => {
                assert_eq!(failure.kind, FailureKind::StepError, "{failure:?}");
                Some(failure.message.clone())
            }
            _ => None,
        });
        failures.collect()
    }
}

const TOKEN: &str = "prom-bearer-5e6f7a8b9c";

async fn run(yaml: &str) -> Ran {
    crate::support::run(yaml, &[("PROM_TOKEN", TOKEN)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn passes_below_the_threshold_and_fails_above_it_naming_the_values() {
    let setup = Setup::start(0.01);
    let with = format!(r#"query: "{METRIC}", op: "<", value: 0.05, token_secret: PROM_TOKEN"#);
    let ran = run(&workflow(&setup.stack, &with, "{ attempts: 1 }")).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());
    let out = ran.output("check");
    assert_eq!(out["satisfied"], true, "{out}");
    let sample = &out["evaluations"][0][0];
    assert_eq!(sample["value"], 0.01, "{out}");
    let series = sample["series"].as_str().unwrap();
    assert!(
        series.starts_with(METRIC) && series.contains(r#"job="checkout""#),
        "{out}"
    );
    assert!(
        ran.timeline()
            .contains("note: prom-check ok: checkout_errors_ratio < 0.05"),
        "{}",
        ran.timeline()
    );
    // The bearer token went out (the journal records the header) and is redacted there.
    let journal = serde_json::to_string(&ran.entries).unwrap();
    assert!(!journal.contains(TOKEN), "{journal}");
    assert!(
        journal.contains("Bearer [redacted:PROM_TOKEN]"),
        "{journal}"
    );

    setup.set(0.5);
    let retry = "{ attempts: 2, backoff: 10ms }";
    let ran = run(&workflow(&setup.stack, &with, retry)).await;
    assert_eq!(ran.status, RunStatus::Failed, "{}", ran.timeline());
    // Not satisfied is retryable: the workflow's retry policy decides how long to check.
    assert_eq!(ran.state.steps["check"].attempt, 2, "{}", ran.timeline());
    let failures = ran.failures();
    assert_eq!(failures.len(), 2, "{failures:?}");
    let message = &failures[1];
    assert!(
        message.starts_with("not satisfied: checkout_errors_ratio < 0.05; 1 of 1 series fail: "),
        "{message}"
    );
    assert!(
        message.contains(r#"job="checkout""#) && message.ends_with("=0.5"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consecutive_evaluations_pass_once_the_metric_has_recovered() {
    let setup = Setup::start(0.5);
    let with =
        format!(r#"query: "{METRIC}", op: "<=", value: 0.05, consecutive: 3, interval_ms: 500"#);
    let yaml = workflow(
        &setup.stack,
        &with,
        "{ attempts: 30, backoff: 500ms, factor: 1 }",
    );
    let t = engine_with(&[("PROM_TOKEN", TOKEN)], None);
    let run_id = t.engine.create_run(new_run(&yaml)).unwrap();
    // Recover only once the step has failed on the bad value at least once. The watcher
    // owns the stack and hands it back, so Prometheus outlives the run.
    let store = t.store.clone();
    let watched = run_id.clone();
    let watcher = tokio::task::spawn_blocking(move || {
        let failed_once = poll_until(Duration::from_secs(30), || {
            let entries = store.entries(&watched).ok()?;
            let failed = entries
                .iter()
                .any(|e| matches!(e.event, Event::AttemptFailed { .. }));
            failed.then_some(())
        });
        if failed_once.is_some() {
            setup.set(0.01);
        }
        (failed_once, setup)
    });
    let status = t.engine.drive(&run_id).await.unwrap();
    let (failed_once, _setup) = watcher.await.unwrap();
    assert!(failed_once.is_some(), "the step never failed on 0.5");
    let (state, entries) = RunState::load_with_journal(t.store.as_ref(), &run_id).unwrap();
    let ran = Ran {
        status,
        state,
        entries,
    };
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());
    let failures = ran.failures();
    assert!(
        failures[0].starts_with("not satisfied (evaluation 1 of 3): checkout_errors_ratio <= 0.05")
            && failures[0].ends_with("=0.5"),
        "{failures:?}"
    );
    let out = ran.output("check");
    let evaluations = out["evaluations"].as_array().unwrap();
    assert_eq!(evaluations.len(), 3, "{out}");
    for evaluation in evaluations {
        assert_eq!(evaluation[0]["value"], 0.01, "{out}");
    }
    // The waits between evaluations really waited (two gaps of 500 ms).
    let took = ran.entries.iter().find_map(|e| match &e.event {
        Event::AttemptSucceeded { duration_ms, .. } => Some(*duration_ms),
        _ => None,
    });
    assert!(took.is_some_and(|ms| ms >= 1000), "{took:?}");
}

/// All `consecutive` evaluations must hold: a relapse after the first one fails the check,
/// saying which evaluation saw it.
#[tokio::test(flavor = "multi_thread")]
async fn a_relapse_during_consecutive_evaluations_fails_the_check() {
    let setup = Setup::start(0.01);
    let with =
        format!(r#"query: "{METRIC}", op: "<", value: 0.05, consecutive: 5, interval_ms: 1500"#);
    let yaml = workflow(&setup.stack, &with, "{ attempts: 1 }");
    let t = engine_with(&[("PROM_TOKEN", TOKEN)], None);
    let run_id = t.engine.create_run(new_run(&yaml)).unwrap();
    // The relapse comes once the first evaluation has its answer (HTTP responses are
    // journalled durably before the step sees them).
    let store = t.store.clone();
    let watched = run_id.clone();
    let watcher = tokio::task::spawn_blocking(move || {
        let answered = poll_until(Duration::from_secs(30), || {
            let entries = store.entries(&watched).ok()?;
            let answered = entries.iter().any(|e| {
                matches!(
                    e.event,
                    Event::HostCall {
                        call: HostCall::HttpResponse { .. },
                        ..
                    }
                )
            });
            answered.then_some(())
        });
        if answered.is_some() {
            setup.set(0.5);
        }
        (answered, setup)
    });
    let status = t.engine.drive(&run_id).await.unwrap();
    let (answered, _setup) = watcher.await.unwrap();
    assert!(
        answered.is_some(),
        "the first evaluation never got an answer"
    );
    let (state, entries) = RunState::load_with_journal(t.store.as_ref(), &run_id).unwrap();
    let ran = Ran {
        status,
        state,
        entries,
    };
    assert_eq!(ran.status, RunStatus::Failed, "{}", ran.timeline());
    let failures = ran.failures();
    let message = failures.first().cloned().unwrap_or_default();
    let evaluation = message
        .strip_prefix("not satisfied (evaluation ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u32>().ok());
    assert!(
        evaluation.is_some_and(|n| (2..=5).contains(&n)),
        "{message}\n{}",
        ran.timeline()
    );
    assert!(
        message.contains(" of 5): checkout_errors_ratio < 0.05; "),
        "{message}"
    );
    assert!(message.ends_with("=0.5"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_result_fails_unless_the_policy_says_pass() {
    let setup = Setup::start(0.01);
    let missing = r#"query: "checkout_errors_ratio{job=\"gone\"}", op: "<", value: 0.05"#;
    let ran = run(&workflow(&setup.stack, missing, "{ attempts: 1 }")).await;
    assert_eq!(ran.status, RunStatus::Failed);
    let reason = ran.state.reason.clone().unwrap_or_default();
    assert!(
        reason
            .contains(r#"checkout_errors_ratio{job="gone"} < 0.05; the query returned no series"#),
        "{reason}"
    );

    let pass = format!(r#"{missing}, on_empty: pass"#);
    let ran = run(&workflow(&setup.stack, &pass, "{ attempts: 1 }")).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());
    assert_eq!(ran.output("check")["evaluations"][0], serde_json::json!([]));

    // A query Prometheus cannot parse is final: not retried, with Prometheus's message.
    let bad = r#"query: "rate(checkout_errors_ratio[", op: "<", value: 1"#;
    let ran = run(&workflow(
        &setup.stack,
        bad,
        "{ attempts: 3, backoff: 10ms }",
    ))
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(ran.state.steps["check"].attempt, 1, "{}", ran.timeline());
    let reason = ran.state.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("Prometheus answered 400") && reason.contains("bad_data"),
        "{reason}"
    );
}

#[test]
fn the_documented_example_validates() {
    crate::harness::docs::assert_doc_examples_validate("docs/providers/prom-check.md");
}
