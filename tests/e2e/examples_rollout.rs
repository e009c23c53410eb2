//! examples/guarded-rollout through its own script, with this build's medic and steps,
//! against the real Unleash and Prometheus the script starts. The regression is the test's
//! to choose (`GUARDED_ROLLOUT_BUG_SHARE`): the stand-in checkout service fails that share
//! of the requests of the users the flag lets in, Prometheus scrapes it, and the workflow's
//! checks read it from Prometheus. The outcome is read from Unleash itself: the strategy's
//! percentage now, and every percentage it held, from Unleash's event log.
//!
//! Needs scripts/deps.d/10-prometheus and 20-unleash; the script fails naming the missing
//! installer.

use crate::examples_restore::{Example, assert_stopped, error_ratio, request, step};
use serde_json::Value;

/// The rollout percentages the flag's production strategies were given, oldest first, from
/// Unleash's event log (strategy added or updated).
fn percentages_over_time(example: &Example) -> Vec<String> {
    let (status, log) = request(
        example.get("UNLEASH_URL"),
        "GET",
        "/api/admin/events/new-checkout",
        Some(example.get("UNLEASH_TOKEN")),
    );
    assert_eq!(status, 200, "{log}");
    let mut events: Vec<&Value> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                e["type"].as_str(),
                Some("feature-strategy-add" | "feature-strategy-update")
            ) && e["environment"] == "production"
        })
        .collect();
    events.sort_by_key(|e| e["id"].as_u64());
    events
        .iter()
        .map(|e| {
            e["data"]["parameters"]["rollout"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

/// The production strategies of the flag now, and whether it is enabled there.
fn production(example: &Example) -> (bool, Vec<Value>) {
    let (status, feature) = request(
        example.get("UNLEASH_URL"),
        "GET",
        "/api/admin/projects/default/features/new-checkout",
        Some(example.get("UNLEASH_TOKEN")),
    );
    assert_eq!(status, 200, "{feature}");
    let env = feature["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "production")
        .expect("a production environment")
        .clone();
    (
        env["enabled"].as_bool().unwrap(),
        env["strategies"].as_array().cloned().unwrap_or_default(),
    )
}

#[test]
fn guarded_rollout_stops_at_the_regression_and_retoggles_to_zero() {
    let example = Example::start("guarded-rollout", &[("GUARDED_ROLLOUT_BUG_SHARE", "0.3")]);
    let unleash = example.get("UNLEASH_URL").to_string();

    // Unleash moved 5 → 25, then back to 0 when Prometheus saw the regression; 100 never.
    assert_eq!(
        percentages_over_time(&example),
        ["5", "25", "0"],
        "{}",
        example.output()
    );
    let (enabled, strategies) = production(&example);
    assert!(enabled, "the flag stays on, at 0%");
    assert_eq!(strategies.len(), 1, "{strategies:?}");
    assert_eq!(strategies[0]["name"], "flexibleRollout");
    assert_eq!(strategies[0]["parameters"]["rollout"], "0");

    // Prometheus: checkout healthy again.
    let ratio = error_ratio(example.get("PROM_URL"));
    assert!(ratio < 0.01, "error ratio {ratio}");

    let report = example.run_report();
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(step(&report, "check-5")["status"], "succeeded");
    assert_eq!(step(&report, "stage-25")["output"]["percentage"], 25);
    assert_eq!(
        step(&report, "stage-25")["output"]["previous_percentage"],
        5
    );
    assert_eq!(step(&report, "check-25")["status"], "failed", "{report:#}");
    assert_eq!(step(&report, "stage-100")["status"], "skipped");
    assert_eq!(step(&report, "retoggle")["output"]["percentage"], 0);
    assert_eq!(
        step(&report, "retoggle")["output"]["previous_percentage"],
        25
    );
    assert_eq!(step(&report, "healthy")["status"], "succeeded");

    let (ok, output) = example.finish();
    assert!(ok, "the script failed:\n{output}");
    assert_stopped(&unleash, "Unleash");
}
