//! Roll forward with `k8s-rollout`: `set_image`, `restart` and `scale` through the real
//! engine against the Kubernetes API test server; every result is read back with the real
//! kubectl, and the requests are the ones kubectl sends for the same commands.

use crate::k8s_rollout::{params, step_requests, workflow};
use crate::kube_api::KubeApi;
use crate::support::run;
use medic_core::{Event, RunStatus};
use serde_json::{Value, json};

/// The step's writes (PATCH and PUT) to `path`.
fn writes(k: &KubeApi, path: &str) -> Vec<Value> {
    step_requests(k)
        .into_iter()
        .filter(|r| r["method"] != "GET" && r["path"] == path)
        .collect()
}

const WEB: &str = "/apis/apps/v1/namespaces/default/deployments/web";

#[tokio::test(flavor = "multi_thread")]
async fn set_image_rolls_forward_and_waits_as_kubectl_does() {
    let k = KubeApi::start();
    k.create_deployment("web", "registry.local/web:1", "release 1");
    let mut with = params(&k, "web", "set_image");
    with["image"] = json!("registry.local/web:2");
    with["poll_ms"] = json!(50);
    let ran = run(&workflow(&[("forward", with.clone(), "")]), &[]).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    let out = ran.output("forward");
    assert_eq!(out["container"], "app", "the pod's only container: {out}");
    assert_eq!(out["from_image"], "registry.local/web:1");
    assert_eq!(out["to_image"], "registry.local/web:2");
    assert_eq!(out["changed"], true);
    assert_eq!(out["done"], true, "it waited for the rollout: {out}");
    assert_eq!(
        out["message"],
        r#"deployment "web" successfully rolled out"#
    );
    assert_eq!(out["images"], json!(["registry.local/web:2"]));

    // kubectl sees what `kubectl set image` would have left: the image, a new revision,
    // a finished rollout.
    assert_eq!(k.image("web"), "registry.local/web:2");
    assert_eq!(
        k.history("web").iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        [1, 2]
    );
    let once = k.kubectl_ok(&["rollout", "status", "deployment/web", "--watch=false"]);
    assert_eq!(once.trim(), r#"deployment "web" successfully rolled out"#);
    // The request `kubectl set image` sends: a strategic merge patch of the container.
    let patches = writes(&k, WEB);
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(
        patches[0]["content_type"],
        "application/strategic-merge-patch+json"
    );
    assert_eq!(
        patches[0]["body"],
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.local/web:2"}]}}}})
    );

    // Again in a new run: nothing to change, nothing sent, still a success.
    let ran = run(&workflow(&[("forward", with, "")]), &[]).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    assert_eq!(ran.output("forward")["changed"], false);
    assert_eq!(writes(&k, WEB).len(), 1, "no second patch");

    // A container the pod does not have: named in a final error, nothing sent.
    let mut with = params(&k, "web", "set_image");
    with["image"] = json!("registry.local/web:3");
    with["container"] = json!("sidecar");
    let ran = run(
        &workflow(&[(
            "forward",
            with,
            "    retry: { attempts: 3, backoff: 10ms }\n",
        )]),
        &[],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    let reason = ran.state.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(r#"unable to find container named "sidecar""#)
            && reason.contains("(it has: app)"),
        "{reason}"
    );
    assert_eq!(ran.state.steps["forward"].attempt, 1, "not retried");
    assert_eq!(k.image("web"), "registry.local/web:2");
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_sets_restarted_at_once_even_across_attempts() {
    // A slow rollout and a short wait: the first attempt restarts and runs out of its
    // budget (retry-after), the next ones keep waiting. One restart, not three.
    let k = KubeApi::with(None, 1200);
    k.create_deployment("web", "registry.local/web:1", "release 1");
    let mut with = params(&k, "web", "restart");
    with["poll_ms"] = json!(100);
    with["timeout_ms"] = json!(300);
    let ran = run(
        &workflow(&[(
            "restart",
            with,
            "    retry: { attempts: 20, backoff: 100ms }\n",
        )]),
        &[],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    assert!(
        ran.state.steps["restart"].attempt >= 2,
        "the wait took more than one attempt"
    );
    let not_yet = ran.entries.iter().any(|e| {
        matches!(&e.event, Event::AttemptFailed { failure, .. }
            if failure.message.contains(r#"Waiting for deployment "web" rollout to finish"#))
    });
    assert!(not_yet, "an attempt ended as not ready yet");
    let out = ran.output("restart");
    let restarted_at = out["restarted_at"].as_str().unwrap().to_string();
    assert_eq!(out["from_revision"], 1);
    assert_eq!(out["done"], true);

    // The annotation `kubectl rollout restart` sets, on the pod template, in RFC 3339.
    let dep = k.deployment("web");
    assert_eq!(
        dep["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        restarted_at.as_str()
    );
    assert!(
        restarted_at.len() == 20
            && restarted_at.ends_with('Z')
            && restarted_at.as_bytes()[10] == b'T',
        "{restarted_at}"
    );
    let patches = writes(&k, WEB);
    assert_eq!(patches.len(), 1, "restarted once: {patches:?}");
    assert_eq!(
        patches[0]["body"],
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": restarted_at}}}}})
    );
    // One new revision: new pods, same image.
    assert_eq!(
        k.history("web").iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(k.image("web"), "registry.local/web:1");

    // A paused deployment is refused as kubectl refuses it.
    k.kubectl_ok(&["rollout", "pause", "deployment/web"]);
    let ran = run(
        &workflow(&[("restart", params(&k, "web", "restart"), "")]),
        &[],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    let reason = ran.state.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("can't restart paused deployment"),
        "{reason}"
    );
    let refused = k.kubectl(&["rollout", "restart", "deployment/web"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("can't restart paused deployment"),
        "kubectl says the same"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_uses_the_scale_subresource_as_kubectl_does() {
    let k = KubeApi::start();
    k.create_deployment("web", "registry.local/web:1", "release 1");
    let mut with = params(&k, "web", "scale");
    with["replicas"] = json!(5);
    with["poll_ms"] = json!(50);
    let ran = run(&workflow(&[("scale", with, "")]), &[]).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    let out = ran.output("scale");
    assert_eq!(out["from_replicas"], 3);
    assert_eq!(out["to_replicas"], 5);
    assert_eq!(out["done"], true);
    assert_eq!(out["available_replicas"], 5);

    let scale_path = format!("{WEB}/scale");
    let patches = writes(&k, &scale_path);
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0]["content_type"], "application/merge-patch+json");
    assert_eq!(patches[0]["body"], json!({"spec": {"replicas": 5}}));
    // kubectl reads the same through the subresource and the deployment.
    let replicas = k.kubectl_ok(&[
        "get",
        "deployment/web",
        "-o",
        "jsonpath={.spec.replicas} {.status.availableReplicas}",
    ]);
    assert_eq!(replicas.trim(), "5 5");
    // No new revision: scaling does not change the pod template.
    assert_eq!(k.history("web").len(), 1);

    // Down to zero is allowed, as with kubectl.
    let mut with = params(&k, "web", "scale");
    with["replicas"] = json!(0);
    let ran = run(&workflow(&[("scale", with, "")]), &[]).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:?}", ran.state.reason);
    let replicas = k.kubectl_ok(&["get", "deployment/web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas.trim(), "0");
}
