//! The Kubernetes API test server is faithful where medic relies on it: the real kubectl
//! (v1.32) drives it through create, set image, annotate, rollout history, undo, pause,
//! resume and status, and reports what the Kubernetes documentation says it reports.

use crate::kube_api::KubeApi;

fn causes(rows: &[(u64, String)]) -> Vec<(u64, &str)> {
    rows.iter().map(|(r, c)| (*r, c.as_str())).collect()
}

#[test]
fn history_and_undo_follow_the_revision_rules() {
    let k = KubeApi::start();
    k.create_deployment("web", "registry.local/web:1.0", "initial release 1.0");
    k.release("web", "registry.local/web:1.1", "release 1.1");
    k.release("web", "registry.local/web:1.2", "release 1.2 (bad)");
    assert_eq!(
        causes(&k.history("web")),
        [
            (1, "initial release 1.0"),
            (2, "release 1.1"),
            (3, "release 1.2 (bad)")
        ]
    );

    // One revision in detail: its pod template, with the hash label the controller added.
    let rev2 = k.kubectl_ok(&["rollout", "history", "deployment/web", "--revision=2"]);
    assert!(
        rev2.contains("deployment.apps/web with revision #2"),
        "{rev2}"
    );
    assert!(rev2.contains("registry.local/web:1.1"), "{rev2}");
    assert!(rev2.contains("pod-template-hash="), "{rev2}");
    assert!(
        rev2.contains("kubernetes.io/change-cause: release 1.1"),
        "{rev2}"
    );
    let missing = k.kubectl(&["rollout", "history", "deployment/web", "--revision=9"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("unable to find the specified revision")
    );

    // Undo to a given revision: its ReplicaSet comes back as the next revision (4), so
    // revision 1 disappears from the history and its change-cause moves to 4.
    let out = k.kubectl_ok(&["rollout", "undo", "deployment/web", "--to-revision=1"]);
    assert_eq!(out.trim(), "deployment.apps/web rolled back");
    k.wait_rollout("web");
    assert_eq!(
        causes(&k.history("web")),
        [
            (2, "release 1.1"),
            (3, "release 1.2 (bad)"),
            (4, "initial release 1.0")
        ]
    );
    let dep = k.deployment("web");
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.local/web:1.0"
    );
    assert_eq!(
        dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "4"
    );
    assert_eq!(
        dep["metadata"]["annotations"]["kubernetes.io/change-cause"],
        "initial release 1.0"
    );
    assert!(
        dep["spec"]["template"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none(),
        "the hash label stays on ReplicaSets: {dep}"
    );
    // The brought-back ReplicaSet remembers its old number.
    let rs: serde_json::Value =
        serde_json::from_str(&k.kubectl_ok(&["get", "replicasets", "-l", "app=web", "-o", "json"]))
            .unwrap();
    let back = rs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4")
        .expect("a ReplicaSet at revision 4");
    assert_eq!(
        back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"],
        "1"
    );

    // Undo without a revision: the previous one (3), which becomes 5.
    k.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    k.wait_rollout("web");
    assert_eq!(
        causes(&k.history("web")),
        [
            (2, "release 1.1"),
            (4, "initial release 1.0"),
            (5, "release 1.2 (bad)")
        ]
    );
    assert_eq!(k.image("web"), "registry.local/web:1.2");

    // Rolling back to the current template changes nothing, and says so.
    let out = k.kubectl_ok(&["rollout", "undo", "deployment/web", "--to-revision=5"]);
    assert!(
        out.contains("skipped rollback (current template already matches revision 5)"),
        "{out}"
    );
    let gone = k.kubectl(&["rollout", "undo", "deployment/web", "--to-revision=1"]);
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr)
            .contains("unable to find specified revision 1 in history"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
}

#[test]
fn a_paused_deployment_holds_template_changes_until_resumed() {
    let k = KubeApi::start();
    k.create_deployment("api", "registry.local/api:1", "v1");
    assert_eq!(
        k.kubectl_ok(&["rollout", "pause", "deployment/api"]).trim(),
        "deployment.apps/api paused"
    );
    let again = k.kubectl(&["rollout", "pause", "deployment/api"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is already paused"),
        "{again:?}"
    );

    // The template changes, but no new ReplicaSet (revision) appears while paused.
    k.kubectl_ok(&["set", "image", "deployment/api", "app=registry.local/api:2"]);
    k.annotate_cause("api", "v2");
    // Once the controller has observed the change...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let dep = loop {
        let dep = k.deployment("api");
        if dep["status"]["observedGeneration"] == dep["metadata"]["generation"] {
            break dep;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never observed: {dep}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // ...there is still one revision. The change-cause is copied to the new ReplicaSet,
    // which does not exist yet.
    assert_eq!(causes(&k.history("api")), [(1, "v1")]);
    assert_eq!(dep["spec"]["paused"], true);
    let progressing = dep["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap();
    assert_eq!(progressing["reason"], "DeploymentPaused");
    assert_eq!(progressing["status"], "Unknown");

    // rollout status reports the held rollout and, with a timeout, gives up.
    let once = k.kubectl_ok(&["rollout", "status", "deployment/api", "--watch=false"]);
    assert_eq!(
        once.trim(),
        r#"Waiting for deployment "api" rollout to finish: 0 out of 3 new replicas have been updated..."#
    );
    let waited = k.kubectl(&["rollout", "status", "deployment/api", "--timeout=1s"]);
    assert!(!waited.status.success());
    assert!(
        String::from_utf8_lossy(&waited.stderr).contains("timed out waiting for the condition"),
        "{waited:?}"
    );
    // A paused deployment cannot be rolled back.
    let undo = k.kubectl(&["rollout", "undo", "deployment/api", "--to-revision=1"]);
    assert!(!undo.status.success());
    assert!(
        String::from_utf8_lossy(&undo.stderr).contains("you cannot rollback a paused deployment"),
        "{undo:?}"
    );

    assert_eq!(
        k.kubectl_ok(&["rollout", "resume", "deployment/api"])
            .trim(),
        "deployment.apps/api resumed"
    );
    let again = k.kubectl(&["rollout", "resume", "deployment/api"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is not paused"),
        "{again:?}"
    );
    let status = k.wait_rollout("api");
    assert!(
        status
            .trim_end()
            .ends_with(r#"deployment "api" successfully rolled out"#),
        "{status}"
    );
    assert_eq!(causes(&k.history("api")), [(1, "v1"), (2, "v2")]);
    assert_eq!(k.image("api"), "registry.local/api:2");
}

#[test]
fn rollout_status_waits_for_the_rollout_to_complete() {
    let k = KubeApi::with(None, 1500);
    k.create_deployment("shop", "registry.local/shop:1", "v1");
    k.kubectl_ok(&[
        "set",
        "image",
        "deployment/shop",
        "app=registry.local/shop:2",
    ]);
    let during = k.deployment("shop");
    let done = |d: &serde_json::Value| {
        d["status"]["updatedReplicas"] == 3
            && d["status"]["replicas"] == 3
            && d["status"]["availableReplicas"] == 3
            && d["status"]["observedGeneration"] == d["metadata"]["generation"]
    };
    assert!(
        !done(&during),
        "not complete right after the change: {during}"
    );
    let out = k.wait_rollout("shop");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .first()
            .unwrap()
            .starts_with(r#"Waiting for deployment "shop" rollout to finish"#),
        "{out}"
    );
    assert_eq!(
        *lines.last().unwrap(),
        r#"deployment "shop" successfully rolled out"#
    );
    let after = k.deployment("shop");
    assert!(done(&after), "{after}");
    let conditions = after["status"]["conditions"].as_array().unwrap();
    let find = |t: &str| conditions.iter().find(|c| c["type"] == t).unwrap().clone();
    assert_eq!(find("Available")["status"], "True");
    assert_eq!(find("Progressing")["reason"], "NewReplicaSetAvailable");
}

#[test]
fn get_deployment_json_carries_the_api_fields() {
    let k = KubeApi::start();
    k.create_deployment("cart", "registry.local/cart:7", "v7");
    let d = k.deployment("cart");
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["metadata"]["namespace"], "default");
    assert_eq!(d["metadata"]["generation"], 1);
    assert!(d["metadata"]["uid"].as_str().unwrap().len() >= 32);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    // Defaults the API server fills in.
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert_eq!(d["status"]["readyReplicas"], 3);

    // A selector that does not match the template is refused as the API server does.
    let bad = k.file(
        "bad.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: y}}\n    spec: {containers: [{name: a, image: b}]}\n",
    );
    let out = k.kubectl(&["create", "--validate=false", "-f", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("`selector` does not match template `labels`"),
        "{out:?}"
    );
}

/// kubectl sends credentials only over TLS, so it can only show the refusal; the step's
/// tests (k8s_rollout) use the token.
#[test]
fn a_server_with_a_token_refuses_requests_without_it() {
    let k = KubeApi::with(Some("kube-test-token"), 200);
    let manifest = r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "db"},
        "spec": {"selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "db:1"}]}}}}"#;
    let (status, created) = k.api(
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        manifest,
    );
    assert_eq!(status, 201, "{created}");
    let anonymous = k.kubectl(&["get", "deployment", "db", "-o", "json"]);
    assert!(!anonymous.status.success());
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert!(
        stderr.contains("You must be logged in to the server"),
        "{stderr}"
    );
    let (status, dep) = k.api("GET", "/apis/apps/v1/namespaces/default/deployments/db", "");
    assert_eq!(status, 200, "{dep}");
    assert_eq!(dep["metadata"]["name"], "db");
}

/// kubectl's roll-forward commands against the test server: `scale` (the autoscaling/v1
/// scale subresource, with and without a `--current-replicas` precondition), `rollout
/// restart` (the `restartedAt` annotation, a new revision) and `set image`.
#[test]
fn scale_restart_and_set_image_work_as_kubectl_documents() {
    let k = KubeApi::start();
    k.create_deployment("web", "registry.local/web:1", "release 1");

    let out = k.kubectl_ok(&["scale", "deployment/web", "--replicas=5"]);
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    k.wait_rollout("web");
    let got =
        |path: &str| k.kubectl_ok(&["get", "deployment/web", "-o", &format!("jsonpath={path}")]);
    assert_eq!(got("{.spec.replicas} {.status.availableReplicas}"), "5 5");
    // The Scale object kubectl reads and writes.
    let (code, scale) = k.api(
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        "",
    );
    assert_eq!(code, 200, "{scale}");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(scale["status"]["selector"], "app=web");
    // A precondition that does not hold is refused, one that holds is applied (GET + PUT).
    let stale = k.kubectl(&[
        "scale",
        "deployment/web",
        "--replicas=2",
        "--current-replicas=4",
    ]);
    assert!(!stale.status.success());
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("Expected replicas to be 4, was 5"),
        "{}",
        String::from_utf8_lossy(&stale.stderr)
    );
    k.kubectl_ok(&[
        "scale",
        "deployment/web",
        "--replicas=2",
        "--current-replicas=5",
    ]);
    assert_eq!(got("{.spec.replicas}"), "2");
    let bad = k.kubectl(&["scale", "deployment/web", "--replicas=-1"]);
    assert!(!bad.status.success());

    let out = k.kubectl_ok(&["rollout", "restart", "deployment/web"]);
    assert_eq!(out.trim(), "deployment.apps/web restarted");
    k.wait_rollout("web");
    let at = got("{.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}");
    assert!(at.ends_with('Z') && at.contains('T'), "{at}");
    assert_eq!(
        k.history("web").iter().map(|(r, _)| *r).collect::<Vec<_>>(),
        [1, 2],
        "a restart is a new revision"
    );

    let out = k.kubectl_ok(&["set", "image", "deployment/web", "app=registry.local/web:2"]);
    assert_eq!(out.trim(), "deployment.apps/web image updated");
    k.wait_rollout("web");
    assert_eq!(k.image("web"), "registry.local/web:2");
    assert_eq!(k.history("web").len(), 3);
}
