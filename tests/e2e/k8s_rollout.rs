//! The `k8s-rollout` step through the real engine against the Kubernetes API test server;
//! every result is checked against what the real kubectl then reports.

use crate::kube_api::KubeApi;
use crate::support::run;
use medic_core::{Event, FailureKind, RunStatus};
use serde_json::{Value, json};

/// A workflow of k8s-rollout steps: (id, params, extra YAML lines for the step).
pub(crate) fn workflow(steps: &[(&str, Value, &str)]) -> String {
    let mut yaml = String::from("apiVersion: medic/v1\nkind: Workflow\nname: rollback\nsteps:\n");
    for (id, with, extra) in steps {
        yaml.push_str(&format!(
            "  - id: {id}\n    phase: restore\n    uses: k8s-rollout\n    with: {with}\n    allow: [127.0.0.1]\n{extra}"
        ));
    }
    yaml
}

pub(crate) fn params(k: &KubeApi, deployment: &str, action: &str) -> Value {
    json!({"server": k.url(), "namespace": "default", "deployment": deployment, "action": action})
}

/// The API requests the step made (kubectl's carry its user agent).
pub(crate) fn step_requests(k: &KubeApi) -> Vec<Value> {
    k.requests()
        .into_iter()
        .filter(|r| {
            !r["user_agent"]
                .as_str()
                .unwrap_or("")
                .starts_with("kubectl")
        })
        .collect()
}

/// web at revisions 1, 2, 3 (images web:1..3, change-causes "release N").
fn three_releases(k: &KubeApi) {
    k.create_deployment("web", "registry.local/web:1", "release 1");
    k.release("web", "registry.local/web:2", "release 2");
    k.release("web", "registry.local/web:3", "release 3");
}

#[tokio::test(flavor = "multi_thread")]
async fn history_lists_what_kubectl_lists() {
    let k = KubeApi::start();
    three_releases(&k);
    let ran = run(
        &workflow(&[("history", params(&k, "web", "history"), "")]),
        &[],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    let out = ran.output("history");
    assert_eq!(out["current_revision"], 3);
    assert_eq!(out["paused"], false);
    let got: Vec<(u64, String, String)> = out["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["change_cause"].as_str().unwrap().to_string(),
                r["images"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let kubectl: Vec<(u64, String)> = k.history("web");
    assert_eq!(
        got.iter()
            .map(|(r, c, _)| (*r, c.clone()))
            .collect::<Vec<_>>(),
        kubectl
    );
    for (rev, _, image) in &got {
        let detail = k.kubectl_ok(&[
            "rollout",
            "history",
            "deployment/web",
            &format!("--revision={rev}"),
        ]);
        assert!(detail.contains(image.as_str()), "revision {rev}: {detail}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn undo_to_a_given_revision_ends_where_kubectl_says() {
    let k = KubeApi::start();
    three_releases(&k);
    let mut with = params(&k, "web", "undo");
    with["to_revision"] = json!(1);
    let ran = run(&workflow(&[("undo", with, "")]), &[]).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    let out = ran.output("undo");
    assert_eq!(out["from_revision"], 3);
    assert_eq!(out["to_revision"], 1);
    assert_eq!(out["from_images"], json!(["registry.local/web:3"]));
    assert_eq!(out["to_images"], json!(["registry.local/web:1"]));
    assert_eq!(out["rolled_back"], true);

    k.wait_rollout("web");
    assert_eq!(k.image("web"), "registry.local/web:1");
    // Exactly as `kubectl rollout undo --to-revision=1` leaves it: revision 1 is now 4.
    let history = k.history("web");
    assert_eq!(
        history,
        [
            (2, "release 2".to_string()),
            (3, "release 3".to_string()),
            (4, "release 1".to_string())
        ]
    );
    let d = k.deployment("web");
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "4"
    );
    assert_eq!(
        d["metadata"]["annotations"]["kubernetes.io/change-cause"],
        "release 1"
    );
    // It used kubectl's request: a JSON patch of the template and annotations.
    let patches: Vec<Value> = step_requests(&k)
        .into_iter()
        .filter(|r| r["method"] == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0]["content_type"], "application/json-patch+json");
    assert_eq!(patches[0]["body"][0]["path"], "/spec/template");

    // A revision that is not in the history fails clearly, once (not retryable).
    let mut with = params(&k, "web", "undo");
    with["to_revision"] = json!(1);
    let ran = run(
        &workflow(&[("undo", with, "    retry: { attempts: 3, backoff: 10ms }\n")]),
        &[],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(ran.state.steps["undo"].attempt, 1);
    let reason = ran.state.reason.unwrap();
    assert!(
        reason.contains("unable to find specified revision 1 in history"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_and_resume_are_idempotent() {
    let k = KubeApi::start();
    k.create_deployment("api", "registry.local/api:1", "v1");
    let ran = run(
        &workflow(&[
            ("pause", params(&k, "api", "pause"), ""),
            ("pause-again", params(&k, "api", "pause"), ""),
        ]),
        &[],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    assert_eq!(ran.output("pause")["changed"], true);
    assert_eq!(ran.output("pause")["paused"], true);
    assert_eq!(ran.output("pause-again")["changed"], false);
    assert_eq!(ran.output("pause-again")["paused_before"], true);
    assert_eq!(k.deployment("api")["spec"]["paused"], true);

    // While paused: a new image does not roll out, and undo is refused as kubectl does.
    k.kubectl_ok(&["set", "image", "deployment/api", "app=registry.local/api:2"]);
    let ran = run(&workflow(&[("undo", params(&k, "api", "undo"), "")]), &[]).await;
    assert_eq!(ran.status, RunStatus::Failed);
    let reason = ran.state.reason.unwrap();
    assert!(
        reason.contains("cannot roll back a paused deployment"),
        "{reason}"
    );
    // Status on a paused, held rollout says so instead of waiting out its budget.
    let ran = run(
        &workflow(&[("status", params(&k, "api", "status"), "")]),
        &[],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    let reason = ran.state.reason.unwrap();
    assert!(
        reason.contains("0 out of 3 new replicas have been updated")
            && reason.contains("the deployment is paused"),
        "{reason}"
    );

    let ran = run(
        &workflow(&[
            ("resume", params(&k, "api", "resume"), ""),
            ("resume-again", params(&k, "api", "resume"), ""),
        ]),
        &[],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    assert_eq!(ran.output("resume")["changed"], true);
    assert_eq!(ran.output("resume")["paused"], false);
    assert_eq!(ran.output("resume-again")["changed"], false);
    k.wait_rollout("api");
    assert_eq!(k.deployment("api")["spec"]["paused"], false);
    assert_eq!(k.history("api").len(), 2, "the held change rolled out");
    // Two changes, two PATCHes: the no-ops sent nothing.
    let patches: Vec<Value> = step_requests(&k)
        .into_iter()
        .filter(|r| r["method"] == "PATCH")
        .collect();
    assert!(
        patches
            .iter()
            .all(|p| p["content_type"] == "application/strategic-merge-patch+json"),
        "{patches:?}"
    );
    assert_eq!(patches.len(), 2, "{patches:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_waits_for_the_rollout_and_says_not_yet_when_over_budget() {
    let k = KubeApi::with(None, 1500);
    k.create_deployment("shop", "registry.local/shop:1", "v1");

    k.kubectl_ok(&[
        "set",
        "image",
        "deployment/shop",
        "app=registry.local/shop:2",
    ]);
    let mut with = params(&k, "shop", "status");
    with["poll_ms"] = json!(100);
    with["timeout_ms"] = json!(20000);
    let ran = run(&workflow(&[("status", with, "")]), &[]).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    let out = ran.output("status");
    assert_eq!(out["done"], true);
    assert_eq!(
        out["message"],
        r#"deployment "shop" successfully rolled out"#
    );
    assert_eq!(out["images"], json!(["registry.local/shop:2"]));
    assert_eq!(out["updated_replicas"], 3);
    // It polled: more than one read of the deployment in one attempt.
    let reads = step_requests(&k)
        .iter()
        .filter(|r| {
            r["method"] == "GET" && r["path"] == "/apis/apps/v1/namespaces/default/deployments/shop"
        })
        .count();
    assert!(reads >= 2, "{reads} reads");
    assert_eq!(ran.state.steps["status"].attempt, 1);
    // kubectl agrees, without waiting.
    let once = k.kubectl_ok(&["rollout", "status", "deployment/shop", "--watch=false"]);
    assert_eq!(once.trim(), r#"deployment "shop" successfully rolled out"#);

    // Over budget: the attempt ends as "not ready yet" (retry-after), and with no attempts
    // left the step fails saying what kubectl would say.
    k.kubectl_ok(&[
        "set",
        "image",
        "deployment/shop",
        "app=registry.local/shop:3",
    ]);
    let mut with = params(&k, "shop", "status");
    with["poll_ms"] = json!(50);
    with["timeout_ms"] = json!(100);
    let ran = run(&workflow(&[("status", with, "")]), &[]).await;
    assert_eq!(ran.status, RunStatus::Failed);
    let not_ready = ran.entries.iter().any(|e| {
        matches!(&e.event, Event::AttemptFailed { failure, .. } if failure.kind == FailureKind::NotReady
            && failure.message.contains(r#"Waiting for deployment "shop" rollout to finish"#))
    });
    assert!(not_ready, "{:?}", ran.state.steps["status"].last_failure);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_not_in_the_allow_list_is_refused() {
    let k = KubeApi::start();
    k.create_deployment("web", "registry.local/web:1", "v1");
    let before = k.requests().len();
    let yaml = workflow(&[("history", params(&k, "web", "history"), "")])
        .replace("allow: [127.0.0.1]", "allow: [k8s.example.com]");
    let ran = run(&yaml, &[]).await;
    assert_eq!(ran.status, RunStatus::Failed);
    let reason = ran.state.reason.unwrap();
    // The engine reports the grant violation itself, naming the host and port.
    assert!(
        reason.contains(&format!("host not allowed: 127.0.0.1:{}", k.port)),
        "{reason}"
    );
    assert_eq!(ran.state.steps["history"].attempt, 1, "not retried");
    assert_eq!(k.requests().len(), before, "nothing reached the server");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_comes_from_the_named_secret_and_stays_secret() {
    let k = KubeApi::with(Some("k8s-token-5a7c9e"), 200);
    // kubectl sends no token over plain HTTP: the deployment is created with raw requests.
    k.seed("web", &[("registry.local/web:1", "v1")]);
    let mut with = params(&k, "web", "history");
    with["token_secret"] = json!("PROD_K8S");
    let granted = "    secrets: [PROD_K8S]\n";
    let ran = run(
        &workflow(&[("history", with.clone(), granted)]),
        &[("PROD_K8S", "k8s-token-5a7c9e")],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    assert_eq!(ran.output("history")["current_revision"], 1);
    assert!(k.requests().iter().all(|r| r["authorized"] == true));
    let journal = serde_json::to_string(&ran.entries).unwrap();
    assert!(!journal.contains("k8s-token-5a7c9e"), "{journal}");

    // Named but not granted: medic fails the attempt, final.
    let ran = run(
        &workflow(&[(
            "history",
            with,
            "    retry: { attempts: 3, backoff: 10ms }\n",
        )]),
        &[("PROD_K8S", "k8s-token-5a7c9e")],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(ran.state.steps["history"].attempt, 1);
    let reason = ran.state.reason.unwrap();
    assert!(reason.contains("secret not granted: PROD_K8S"), "{reason}");

    // No `token_secret`: anonymous requests, and the server's 401 is final and named.
    let ran = run(
        &workflow(&[(
            "history",
            params(&k, "web", "history"),
            "    retry: { attempts: 3, backoff: 10ms }\n",
        )]),
        &[],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(ran.state.steps["history"].attempt, 1);
    let reason = ran.state.reason.unwrap();
    assert!(
        reason.contains(
            "GET /apis/apps/v1/namespaces/default/deployments/web: HTTP 401: Unauthorized"
        ),
        "{reason}"
    );
    assert_eq!(k.requests().last().unwrap()["authorized"], false);
}

/// The undo's PATCH reaches the server and is applied, but its response is lost (HTTP 500):
/// the step is retried. The retry must roll back to the revision the first attempt chose,
/// which it reads back from step state — recomputing "previous" from the changed
/// deployment would pick the bad release again and flip back.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_undo_to_previous_does_not_flip_back() {
    let k = KubeApi::start();
    three_releases(&k);
    k.fail_next_after_applying("PATCH", 500);
    let ran = run(
        &workflow(&[(
            "undo",
            params(&k, "web", "undo"),
            "    retry: { attempts: 3, backoff: 300ms }\n",
        )]),
        &[],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    let step = &ran.state.steps["undo"];
    assert_eq!(step.attempt, 2, "the first attempt failed after its PATCH");
    let first = ran
        .entries
        .iter()
        .find_map(|e| match &e.event {
            Event::AttemptFailed { failure, .. } => Some(failure.message.clone()),
            _ => None,
        })
        .unwrap();
    assert!(first.contains("HTTP 500"), "{first}");
    assert_eq!(
        step.state
            .get("undo-target")
            .map(|s| serde_json::from_str::<Value>(s).unwrap()["revision"].clone()),
        Some(json!(2))
    );
    let out = ran.output("undo");
    assert_eq!(out["to_revision"], 2);
    assert_eq!(out["from_revision"], 3);
    assert_eq!(out["target_from_earlier_attempt"], true);
    assert_eq!(
        out["rolled_back"], false,
        "the first attempt's PATCH already did it"
    );

    k.wait_rollout("web");
    assert_eq!(k.image("web"), "registry.local/web:2");
    assert_eq!(
        k.history("web"),
        [
            (1, "release 1".to_string()),
            (3, "release 3".to_string()),
            (4, "release 2".to_string())
        ]
    );
    // The hazard the saved target avoids: "previous" now means the bad release.
    k.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    k.wait_rollout("web");
    assert_eq!(k.image("web"), "registry.local/web:3");
}
