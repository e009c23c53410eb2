//! The actions against the Kubernetes API (apps/v1), each as kubectl does it: the API
//! client, history, undo, pause/resume and the status wait that the roll-forward actions
//! ([`crate::forward`]) share.

use std::time::{Duration, Instant};

use medic_step::host::{self, Level};
use medic_step::http::{self, ErrorCode, Limits, Request, SendError};
use medic_step::{Failure, Outcome};
use serde_json::{Value, json};

use crate::forward;
use crate::params::{Action, Params, ToRevision};
use crate::rollout::{self, UndoTarget};

/// Step-state key of the undo target (see [`UndoTarget`]).
const UNDO_TARGET_KEY: &str = "undo-target";

/// Kubernetes objects and lists of a few ReplicaSets are small; this bounds guest memory if
/// a server sends something huge.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Runs the action `params` asks for.
pub async fn run(params: &Params) -> Result<Outcome, Failure> {
    let api = Api {
        params,
        token: params.token_secret.as_deref().and_then(host::secret),
    };
    match params.action {
        Action::History => history(&api).await.map(Outcome::Done),
        Action::Undo => undo(&api).await.map(Outcome::Done),
        Action::Pause => set_paused(&api, true).await.map(Outcome::Done),
        Action::Resume => set_paused(&api, false).await.map(Outcome::Done),
        Action::Status => status(&api, base_output(&api, "status")).await,
        Action::SetImage => forward::set_image(&api).await,
        Action::Restart => forward::restart(&api).await,
        Action::Scale => forward::scale(&api).await,
    }
}

pub struct Api<'a> {
    pub params: &'a Params,
    /// The bearer token; never logged, never in an error or output.
    token: Option<String>,
}

impl Api<'_> {
    pub fn namespaced(&self, resource: &str) -> String {
        format!(
            "/apis/apps/v1/namespaces/{}/{resource}",
            self.params.namespace
        )
    }

    pub fn deployment_path(&self) -> String {
        format!(
            "{}/{}",
            self.namespaced("deployments"),
            self.params.deployment
        )
    }

    /// One API call; a non-2xx answer becomes a failure carrying the HTTP status and the
    /// Kubernetes `Status` message.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        patch: Option<(&str, &Value)>,
    ) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.params.server);
        let authorization = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![("accept", "application/json")];
        if let Some(value) = &authorization {
            headers.push(("authorization", value));
        }
        let body = patch.map(|(content_type, doc)| {
            headers.push(("content-type", content_type));
            doc.to_string().into_bytes()
        });
        let request = Request {
            method: http::method(method),
            url: &url,
            headers: &headers,
            body: body.as_deref(),
        };
        let reply = http::send(&request, Limits::body(MAX_BODY))
            .await
            .map_err(|e| send_failure(&url, e))?;
        if reply.truncated {
            // Half a JSON document is no use: fail rather than parse it.
            let code = ErrorCode::InternalError(Some(format!(
                "response body larger than {MAX_BODY} bytes"
            )));
            return Err(send_failure(&url, SendError::Http(code)));
        }
        if !(200..300).contains(&reply.status) {
            return Err(rollout::api_failure(
                method,
                path,
                reply.status,
                &reply.body,
            ));
        }
        serde_json::from_slice(&reply.body).map_err(|e| {
            Failure::fatal(format!(
                "{method} {path}: HTTP {} but the body is not JSON ({e}); is `server` a Kubernetes API server?",
                reply.status
            ))
        })
    }

    pub async fn deployment(&self) -> Result<Value, Failure> {
        self.call("GET", &self.deployment_path(), None).await
    }

    /// The deployment's ReplicaSets, as kubectl finds them: by its selector, then only those
    /// it controls.
    async fn replica_sets(&self, deployment: &Value) -> Result<Value, Failure> {
        let selector = rollout::label_selector(deployment)?;
        let path = format!(
            "{}?labelSelector={}",
            self.namespaced("replicasets"),
            http::encode(&selector)
        );
        self.call("GET", &path, None).await
    }
}

fn send_failure(url: &str, error: SendError) -> Failure {
    http::send_failure(error, "server", url)
}

pub fn base_output(api: &Api<'_>, action: &str) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    out.insert("action".into(), action.into());
    out.insert("namespace".into(), api.params.namespace.clone().into());
    out.insert("deployment".into(), api.params.deployment.clone().into());
    out
}

async fn history(api: &Api<'_>) -> Result<Value, Failure> {
    let deployment = api.deployment().await?;
    let list = api.replica_sets(&deployment).await?;
    let owned = rollout::owned(&deployment, &list);
    let revisions: Vec<Value> = rollout::history(&owned)
        .into_iter()
        .map(|r| {
            json!({
                "revision": r.number,
                "change_cause": r.change_cause,
                "images": r.images,
                "replicaset": r.replicaset,
            })
        })
        .collect();
    let mut out = base_output(api, "history");
    out.insert(
        "current_revision".into(),
        rollout::revision(&deployment).into(),
    );
    out.insert("paused".into(), rollout::paused(&deployment).into());
    out.insert("images".into(), rollout::images(&deployment).into());
    out.insert("revisions".into(), revisions.into());
    Ok(Value::Object(out))
}

async fn undo(api: &Api<'_>) -> Result<Value, Failure> {
    let deployment = api.deployment().await?;
    if rollout::paused(&deployment) {
        return Err(Failure::fatal(format!(
            "you cannot roll back a paused deployment ({}/{}): resume it first (action: resume) and try again",
            api.params.namespace, api.params.deployment
        )));
    }
    // The target is resolved once, before anything changes, and saved: a later attempt of
    // this step rolls back to the same ReplicaSet even though "previous" now means another.
    let (target, resumed) = match host::state_get(UNDO_TARGET_KEY) {
        Some(saved) => (UndoTarget::from_json(&saved)?, true),
        None => {
            let list = api.replica_sets(&deployment).await?;
            let owned = rollout::owned(&deployment, &list);
            let wanted = match api.params.to_revision {
                ToRevision::Previous => None,
                ToRevision::Number(n) => Some(n),
            };
            let rs = rollout::find_revision(&deployment, &owned, wanted)?;
            let target = UndoTarget {
                revision: rollout::revision(rs),
                replicaset: rollout::name(rs).to_owned(),
                from_revision: rollout::revision(&deployment),
                from_images: rollout::images(&deployment),
            };
            host::state_set(UNDO_TARGET_KEY, &target.to_json());
            host::log(
                Level::Info,
                &format!(
                    "undo target: revision {} (ReplicaSet {}), from revision {}",
                    target.revision, target.replicaset, target.from_revision
                ),
            );
            (target, false)
        }
    };
    let rs_path = format!("{}/{}", api.namespaced("replicasets"), target.replicaset);
    let rs = api.call("GET", &rs_path, None).await.map_err(|f| {
        if f.message.contains("HTTP 404") {
            Failure::fatal(format!(
                "ReplicaSet {} of revision {} no longer exists: {}",
                target.replicaset, target.revision, f.message
            ))
        } else {
            f
        }
    })?;
    let to_images = rollout::images(&rs);
    let mut out = base_output(api, "undo");
    out.insert("from_revision".into(), target.from_revision.into());
    out.insert("to_revision".into(), target.revision.into());
    out.insert("replicaset".into(), target.replicaset.clone().into());
    out.insert("from_images".into(), target.from_images.clone().into());
    out.insert("to_images".into(), to_images.clone().into());
    out.insert("target_from_earlier_attempt".into(), resumed.into());
    if rollout::same_template(&rs, &deployment) {
        let message = format!(
            "skipped rollback (current template already matches revision {})",
            target.revision
        );
        host::annotate(&format!(
            "k8s-rollout: {}/{} {message}",
            api.params.namespace, api.params.deployment
        ));
        out.insert("rolled_back".into(), false.into());
        out.insert("message".into(), message.into());
        return Ok(Value::Object(out));
    }
    let patch = rollout::rollback_patch(&deployment, &rs);
    api.call(
        "PATCH",
        &api.deployment_path(),
        Some(("application/json-patch+json", &patch)),
    )
    .await?;
    let message = format!(
        "rolled back from revision {} ({}) to revision {} ({})",
        target.from_revision,
        target.from_images.join(", "),
        target.revision,
        to_images.join(", ")
    );
    host::annotate(&format!(
        "k8s-rollout: {}/{} {message}",
        api.params.namespace, api.params.deployment
    ));
    out.insert("rolled_back".into(), true.into());
    out.insert("message".into(), message.into());
    Ok(Value::Object(out))
}

async fn set_paused(api: &Api<'_>, want: bool) -> Result<Value, Failure> {
    let action = if want { "pause" } else { "resume" };
    let deployment = api.deployment().await?;
    let before = rollout::paused(&deployment);
    let mut out = base_output(api, action);
    out.insert("paused_before".into(), before.into());
    if before == want {
        out.insert("paused".into(), want.into());
        out.insert("changed".into(), false.into());
        return Ok(Value::Object(out));
    }
    // The strategic merge patch `kubectl rollout pause/resume` sends.
    let patch = json!({"spec": {"paused": want}});
    let updated = api
        .call(
            "PATCH",
            &api.deployment_path(),
            Some(("application/strategic-merge-patch+json", &patch)),
        )
        .await?;
    host::annotate(&format!(
        "k8s-rollout: {}/{} {}",
        api.params.namespace,
        api.params.deployment,
        if want { "paused" } else { "resumed" }
    ));
    out.insert("paused".into(), rollout::paused(&updated).into());
    out.insert("changed".into(), true.into());
    Ok(Value::Object(out))
}

/// Waits, as `kubectl rollout status` does, until the rollout is complete (the output is
/// `out` plus the deployment's state), has failed, or this attempt's `timeout_ms` is
/// nearly used up (then `retry-after`, so the next attempt keeps waiting).
pub async fn status(
    api: &Api<'_>,
    mut out: serde_json::Map<String, Value>,
) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let budget = Duration::from_millis(api.params.timeout_ms);
    let poll = Duration::from_millis(api.params.poll_ms);
    let mut last = String::new();
    loop {
        let deployment = api.deployment().await?;
        let seen = rollout::status(&deployment);
        if seen.message != last {
            host::log(Level::Info, &seen.message);
            last.clone_from(&seen.message);
        }
        if seen.done {
            out.insert("done".into(), true.into());
            out.insert("message".into(), seen.message.into());
            out.insert("revision".into(), rollout::revision(&deployment).into());
            out.insert("paused".into(), rollout::paused(&deployment).into());
            out.insert("images".into(), rollout::images(&deployment).into());
            let status = deployment.get("status").cloned().unwrap_or(json!({}));
            for (field, key) in [
                ("observedGeneration", "observed_generation"),
                ("replicas", "replicas"),
                ("updatedReplicas", "updated_replicas"),
                ("readyReplicas", "ready_replicas"),
                ("availableReplicas", "available_replicas"),
            ] {
                out.insert(key.into(), status.get(field).cloned().unwrap_or(json!(0)));
            }
            return Ok(Outcome::Done(Value::Object(out)));
        }
        if seen.failed {
            return Err(Failure::fatal(seen.message));
        }
        if rollout::paused(&deployment) {
            // kubectl would wait for its --timeout; a paused rollout never progresses, so
            // waiting here only burns the attempt budget.
            return Err(Failure::fatal(format!(
                "{} (the deployment is paused: the rollout will not progress until it is resumed)",
                seen.message
            )));
        }
        if started.elapsed() + poll > budget {
            return Ok(Outcome::RetryAfter {
                ms: api.params.poll_ms,
                reason: seen.message,
            });
        }
        wstd::task::sleep(poll.into()).await;
    }
}
