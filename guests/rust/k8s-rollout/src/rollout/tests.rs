//! Unit tests of the rollout rules and the params (host target).

use super::*;
use crate::params::{Action, PARAMS_SCHEMA, Params, ToRevision};

/// The params JSON, parsed and checked as a run does.
fn parse_params(json: &str) -> Result<Params, medic_step::Failure> {
    medic_step::params::parse::<crate::params::Raw>(json).and_then(Params::check)
}

fn deployment(image: &str, revision: u64) -> Value {
    json!({
        "metadata": {"name": "web", "uid": "u-1", "generation": 4,
                     "annotations": {REVISION: revision.to_string(), CHANGE_CAUSE: "now",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": image}]}}},
        "status": {"observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    })
}

fn replica_set(name: &str, image: &str, revision: u64, created: &str, owner: &str) -> Value {
    json!({
        "metadata": {"name": name, "creationTimestamp": created,
                     "annotations": {REVISION: revision.to_string(), CHANGE_CAUSE: format!("to {image}"),
                                     "deployment.kubernetes.io/desired-replicas": "3"},
                     "ownerReferences": [{"uid": owner, "controller": true}]},
        "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": name}},
                              "spec": {"containers": [{"name": "web", "image": image}]}}}
    })
}

fn list() -> Value {
    json!({"items": [
        replica_set("web-c", "web:3", 3, "2026-01-03T00:00:00Z", "u-1"),
        replica_set("web-a", "web:1", 1, "2026-01-01T00:00:00Z", "u-1"),
        replica_set("web-b", "web:2", 2, "2026-01-02T00:00:00Z", "u-1"),
        replica_set("other", "web:9", 9, "2026-01-02T00:00:00Z", "u-2"),
    ]})
}

#[test]
fn only_replica_sets_the_deployment_controls_count() {
    let d = deployment("web:3", 3);
    let l = list();
    let owned = owned(&d, &l);
    let names: Vec<&str> = owned.iter().map(|r| name(r)).collect();
    assert_eq!(names, ["web-a", "web-b", "web-c"]);
    let h = history(&owned);
    assert_eq!(h.iter().map(|r| r.number).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(h[1].change_cause.as_deref(), Some("to web:2"));
    assert_eq!(h[1].images, ["web:2"]);
}

#[test]
fn previous_is_the_second_highest_revision_and_numbers_must_exist() {
    let d = deployment("web:3", 3);
    let l = list();
    let owned = owned(&d, &l);
    assert_eq!(name(find_revision(&d, &owned, None).unwrap()), "web-b");
    assert_eq!(name(find_revision(&d, &owned, Some(1)).unwrap()), "web-a");
    let missing = find_revision(&d, &owned, Some(7)).unwrap_err();
    assert!(missing.message.contains("revision 7"), "{missing:?}");
    assert!(!missing.retryable);
    let only = [owned[0]];
    assert!(
        find_revision(&d, &only, None)
            .unwrap_err()
            .message
            .contains("no rollout history")
    );
}

#[test]
fn the_rollback_patch_is_kubectls() {
    let d = deployment("web:3", 3);
    let l = list();
    let rs = owned(&d, &l)[1];
    let patch = rollback_patch(&d, rs);
    assert_eq!(patch[0]["op"], "replace");
    assert_eq!(patch[0]["path"], "/spec/template");
    assert_eq!(
        patch[0]["value"]["metadata"]["labels"],
        json!({"app": "web"})
    );
    assert_eq!(patch[0]["value"]["spec"]["containers"][0]["image"], "web:2");
    assert_eq!(patch[1]["path"], "/metadata/annotations");
    let annotations = &patch[1]["value"];
    // Bookkeeping kept from the deployment, the rest from the ReplicaSet.
    assert_eq!(annotations[REVISION], "3");
    assert_eq!(
        annotations["kubectl.kubernetes.io/last-applied-configuration"],
        "{}"
    );
    assert_eq!(annotations[CHANGE_CAUSE], "to web:2");
    assert!(
        annotations
            .get("deployment.kubernetes.io/desired-replicas")
            .is_none()
    );
}

#[test]
fn templates_compare_without_the_hash_label_and_empty_fields() {
    let d = deployment("web:2", 2);
    let mut rs = replica_set("web-b", "web:2", 2, "t", "u-1");
    assert!(same_template(&rs, &d));
    rs["spec"]["template"]["spec"]["volumes"] = json!([]);
    assert!(same_template(&rs, &d));
    rs["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:3");
    assert!(!same_template(&rs, &d));
}

#[test]
fn status_messages_match_kubectl() {
    let mut d = deployment("web:1", 1);
    assert_eq!(
        status(&d).message,
        r#"deployment "web" successfully rolled out"#
    );
    assert!(status(&d).done);
    d["metadata"]["generation"] = json!(5);
    assert_eq!(
        status(&d).message,
        "Waiting for deployment spec update to be observed..."
    );
    d["status"] = json!({"observedGeneration": 5, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3});
    assert_eq!(
        status(&d).message,
        r#"Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated..."#
    );
    d["status"]["updatedReplicas"] = json!(3);
    assert_eq!(
        status(&d).message,
        r#"Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination..."#
    );
    d["status"]["replicas"] = json!(3);
    d["status"]["availableReplicas"] = json!(2);
    assert_eq!(
        status(&d).message,
        r#"Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available..."#
    );
    d["status"]["conditions"] =
        json!([{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]);
    let s = status(&d);
    assert!(s.failed && !s.done, "{s:?}");
}

#[test]
fn selectors_and_query_escaping() {
    let mut d = deployment("web:1", 1);
    d["spec"]["selector"]["matchExpressions"] = json!([
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "canary", "operator": "DoesNotExist"}
    ]);
    let s = label_selector(&d).unwrap();
    assert_eq!(s, "app=web,tier in (a,b),!canary");
    assert_eq!(
        medic_step::http::encode(&s),
        "app%3Dweb%2Ctier%20in%20%28a%2Cb%29%2C%21canary"
    );
}

#[test]
fn api_failures_carry_status_and_message_and_retry_only_5xx_and_429() {
    let body = br#"{"kind":"Status","message":"deployments.apps \"x\" not found","code":404}"#;
    let f = api_failure("GET", "/apis/apps/v1/namespaces/d/deployments/x", 404, body);
    assert_eq!(
        f.message,
        r#"GET /apis/apps/v1/namespaces/d/deployments/x: HTTP 404: deployments.apps "x" not found"#
    );
    assert!(!f.retryable);
    assert!(api_failure("PATCH", "/p", 503, b"busy").retryable);
    assert!(api_failure("PATCH", "/p", 429, b"{}").retryable);
    assert!(!api_failure("PATCH", "/p", 403, b"{}").retryable);
}

#[test]
fn undo_target_round_trips() {
    let t = UndoTarget {
        revision: 2,
        replicaset: "web-b".into(),
        from_revision: 3,
        from_images: vec!["web:3".into()],
    };
    assert_eq!(UndoTarget::from_json(&t.to_json()).unwrap(), t);
    assert!(UndoTarget::from_json("{}").is_err());
}

#[test]
fn params_parse_with_defaults_and_name_their_errors() {
    let p = parse_params(
        r#"{"server": "https://k8s.example.com:6443/", "deployment": "web", "action": "undo"}"#,
    )
    .unwrap();
    assert_eq!(p.server, "https://k8s.example.com:6443");
    assert_eq!(p.namespace, "default");
    assert_eq!(p.action, Action::Undo);
    assert_eq!(p.to_revision, ToRevision::Previous);
    assert_eq!(p.token_secret, None);
    let p = parse_params(
        r#"{"server": "http://h", "deployment": "web", "action": "undo", "to_revision": 2}"#,
    )
    .unwrap();
    assert_eq!(p.to_revision, ToRevision::Number(2));
    for (params, needle) in [
        (
            r#"{"server": "h", "deployment": "web", "action": "undo"}"#,
            "param `server` must start with http",
        ),
        (
            r#"{"server": "http://h/api", "deployment": "web", "action": "undo"}"#,
            "no path",
        ),
        (
            r#"{"server": "http://h", "deployment": "Web", "action": "undo"}"#,
            "param `deployment`",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "namespace": "a/b", "action": "undo"}"#,
            "param `namespace`",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "action": "rollback"}"#,
            "param `action`",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "action": "undo", "to_revision": 0}"#,
            "param `to_revision`",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "action": "pause", "to_revision": 1}"#,
            "only applies to action `undo`",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "action": "undo", "poll_ms": 5}"#,
            "only applies to action `status`",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "action": "status", "token_secret": "1x"}"#,
            "param `token_secret`",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "action": "status", "tiemout_ms": 1}"#,
            "unknown param `tiemout_ms`",
        ),
        (
            r#"{"deployment": "web", "action": "status"}"#,
            "missing required param `server`",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "action": "set_image"}"#,
            "needs param `image`",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "action": "scale"}"#,
            "needs param `replicas`",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "action": "scale", "replicas": -1}"#,
            "param `replicas` must be",
        ),
        (
            r#"{"server": "http://h", "deployment": "web", "action": "undo", "image": "x"}"#,
            "param `image` only applies to action `set_image`",
        ),
    ] {
        let e = parse_params(params).unwrap_err();
        assert!(e.message.contains(needle), "{params}: {}", e.message);
        assert!(!e.retryable);
    }
}

#[test]
fn schema_lists_every_param() {
    let schema: Value = serde_json::from_str(PARAMS_SCHEMA).unwrap();
    let mut names: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "action",
            "container",
            "deployment",
            "image",
            "namespace",
            "poll_ms",
            "replicas",
            "server",
            "timeout_ms",
            "to_revision",
            "token_secret"
        ]
    );
    assert_eq!(
        schema["required"],
        json!(["server", "deployment", "action"])
    );
}

#[test]
fn roll_forward_patches_are_kubectls() {
    let dep = deployment("registry.local/web:1", 1);
    assert_eq!(
        find_container(&dep, None).unwrap(),
        ("web".to_string(), "registry.local/web:1".to_string())
    );
    assert_eq!(find_container(&dep, Some("web")).unwrap().0, "web");
    let e = find_container(&dep, Some("sidecar")).unwrap_err();
    assert!(
        e.message
            .contains("unable to find container named \"sidecar\""),
        "{}",
        e.message
    );
    assert!(e.message.contains("(it has: web)"), "{}", e.message);
    let mut two = dep.clone();
    two["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "proxy", "image": "envoy:1"}));
    let e = find_container(&two, None).unwrap_err();
    assert!(
        e.message.contains("has 2 containers (web, proxy)"),
        "{}",
        e.message
    );

    assert_eq!(
        set_image_patch("web", "registry.local/web:2"),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "registry.local/web:2"}]}}}})
    );
    assert_eq!(
        restart_patch("2026-11-30T13:12:00Z"),
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-30T13:12:00Z"}}}}})
    );
    assert_eq!(restarted_at(&dep), None);
    assert_eq!(scale_patch(5), json!({"spec": {"replicas": 5}}));
    assert_eq!(desired_replicas(&dep), 3);
}

#[test]
fn rfc3339_in_utc() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_796_044_320), "2026-11-30T13:12:00Z");
    assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
}
