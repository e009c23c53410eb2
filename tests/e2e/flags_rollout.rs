//! flags-unleash `set_rollout` through the real engine against a real Unleash (the one
//! `flags_unleash` starts): after each run the environment's strategies are read back
//! through Unleash's own Admin API.

use crate::flags_unleash::{ENV, PROJECT, allow, run, unleash};
use crate::unleash::{ADMIN_TOKEN, Unleash};
use medic_core::RunStatus;
use serde_json::{Value, json};

/// A one-step workflow: `set_rollout` of `feature` to `percentage`, 3 attempts.
fn workflow(u: &Unleash, feature: &str, percentage: u8) -> String {
    format!(
        r#"apiVersion: medic/v1
kind: Workflow
name: rollout
steps:
  - id: flag
    phase: restore
    uses: flags-unleash
    with:
      url: "{url}"
      feature: {feature}
      environment: {ENV}
      action: set_rollout
      percentage: {percentage}
      token_secret: UNLEASH_TOKEN
    secrets: [UNLEASH_TOKEN]
    allow: [{allow}]
    retry: {{ attempts: 3, backoff: 10ms }}
"#,
        url = u.url,
        allow = allow(u)
    )
}

/// The production strategies of `feature`, as Unleash lists them.
fn strategies(u: &Unleash, feature: &str) -> Vec<Value> {
    let path =
        format!("/api/admin/projects/{PROJECT}/features/{feature}/environments/{ENV}/strategies");
    let (status, body) = u.admin("GET", &path, None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn add_strategy(u: &Unleash, feature: &str, strategy: Value) {
    let path =
        format!("/api/admin/projects/{PROJECT}/features/{feature}/environments/{ENV}/strategies");
    let (status, body) = u.admin("POST", &path, Some(&strategy.to_string()));
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn set_rollout_adds_then_moves_the_percentage_and_keeps_the_rest() {
    let u = unleash();
    u.create_feature(PROJECT, "rollout-moves");

    // No strategy yet: one is added, at 5%, while the flag stays off.
    let ran = run(&workflow(u, "rollout-moves", 5), ADMIN_TOKEN).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());
    let out = ran.output("flag").clone();
    assert_eq!(out["previous_percentage"], Value::Null);
    assert_eq!(out["percentage"], 5);
    assert_eq!(out["changed"], true);
    assert_eq!(out["enabled"], false);
    let now = strategies(u, "rollout-moves");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["name"], "flexibleRollout");
    assert_eq!(now[0]["id"], out["strategy_id"]);
    assert_eq!(
        now[0]["parameters"],
        json!({"rollout": "5", "stickiness": "default", "groupId": "rollout-moves"})
    );
    assert!(
        ran.timeline()
            .contains("rollout 5% (new gradual rollout strategy) (the flag is disabled there"),
        "{}",
        ran.timeline()
    );
    assert!(
        !u.enabled(PROJECT, "rollout-moves", ENV),
        "set_rollout does not enable"
    );

    // A constraint and a title someone set in Unleash survive the next stage.
    let id = now[0]["id"].as_str().unwrap().to_string();
    let path = format!(
        "/api/admin/projects/{PROJECT}/features/rollout-moves/environments/{ENV}/strategies/{id}"
    );
    let mut edited = now[0].clone();
    edited["title"] = json!("EU first");
    edited["constraints"] = json!([{"contextName": "region", "operator": "IN", "values": ["eu"]}]);
    let body = json!({"name": "flexibleRollout", "title": edited["title"], "constraints": edited["constraints"], "parameters": edited["parameters"]});
    let (status, reply) = u.admin("PUT", &path, Some(&body.to_string()));
    assert_eq!(status, 200, "{reply}");
    u.set_enabled(PROJECT, "rollout-moves", ENV, true);

    let ran = run(&workflow(u, "rollout-moves", 25), ADMIN_TOKEN).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());
    let out = ran.output("flag").clone();
    assert_eq!(
        (&out["previous_percentage"], &out["percentage"]),
        (&json!(5), &json!(25))
    );
    assert_eq!(out["enabled"], true);
    assert_eq!(
        out["strategy_id"],
        id.as_str(),
        "the same strategy, changed in place"
    );
    let now = strategies(u, "rollout-moves");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["parameters"]["rollout"], "25");
    assert_eq!(now[0]["parameters"]["groupId"], "rollout-moves");
    assert_eq!(now[0]["title"], "EU first");
    assert_eq!(now[0]["constraints"][0]["contextName"], "region");
    assert_eq!(now[0]["constraints"][0]["values"], json!(["eu"]));
    assert!(
        ran.timeline().contains("rollout 25% (was 5%)"),
        "{}",
        ran.timeline()
    );

    // Already 25%: read, nothing written.
    let ran = run(&workflow(u, "rollout-moves", 25), ADMIN_TOKEN).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());
    assert_eq!(ran.output("flag")["changed"], false);
    let writes: Vec<_> = ran
        .requests()
        .into_iter()
        .filter(|(m, _)| m != "GET")
        .collect();
    assert!(writes.is_empty(), "{writes:?}");

    // Back to 0%: the undo of a gradual rollout.
    let ran = run(&workflow(u, "rollout-moves", 0), ADMIN_TOKEN).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());
    assert_eq!(
        strategies(u, "rollout-moves")[0]["parameters"]["rollout"],
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn set_rollout_refuses_when_another_strategy_lets_everyone_in() {
    let u = unleash();
    u.create_feature(PROJECT, "rollout-shadowed");
    add_strategy(
        u,
        "rollout-shadowed",
        json!({"name": "flexibleRollout", "parameters": {"rollout": "5", "stickiness": "default", "groupId": "rollout-shadowed"}}),
    );
    add_strategy(
        u,
        "rollout-shadowed",
        json!({"name": "default", "parameters": {}}),
    );

    let ran = run(&workflow(u, "rollout-shadowed", 25), ADMIN_TOKEN).await;
    assert_eq!(ran.status, RunStatus::Failed, "{}", ran.timeline());
    let reason = ran.state.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("other enabled strategies (default (")
            && reason.contains("remove or disable them first"),
        "{reason}"
    );
    assert_eq!(ran.state.steps["flag"].attempt, 1, "not retried");
    let now = strategies(u, "rollout-shadowed");
    let rollout = now.iter().find(|s| s["name"] == "flexibleRollout").unwrap();
    assert_eq!(rollout["parameters"]["rollout"], "5", "unchanged");
}
