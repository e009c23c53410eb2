//! The rollout rules, as kubectl applies them (pure, unit-tested on the host).
//!
//! Sources: kubectl's `polymorphichelpers/rollback.go` (which ReplicaSet a revision is,
//! the skipped-annotation list, the JSON patch), `history.go` (revisions and change-causes)
//! and `rollout_status.go` (when a rollout is complete), and `util/deployment` (a
//! deployment's ReplicaSets: selected by its selector *and* controlled by it).

use serde_json::{Map, Value, json};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const HASH_LABEL: &str = "pod-template-hash";

/// Annotations a rollback keeps from the deployment instead of copying them from the
/// ReplicaSet (kubectl's `annotationsToSkip`).
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

pub use medic_step::Failure;

/// An API answer that is not a success: the remote status, the Kubernetes `Status` message
/// (or the start of the body), and retryable only for 5xx and 429.
pub fn api_failure(method: &str, path: &str, status: u16, body: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(body);
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect());
    Failure::remote(status, format!("{method} {path}: HTTP {status}: {detail}"))
}

fn annotations(obj: &Value) -> Option<&Map<String, Value>> {
    obj.pointer("/metadata/annotations")
        .and_then(Value::as_object)
}

/// The `deployment.kubernetes.io/revision` of an object; 0 when absent (as kubectl).
pub fn revision(obj: &Value) -> u64 {
    annotations(obj)
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn paused(deployment: &Value) -> bool {
    deployment
        .pointer("/spec/paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The container images of a pod template (of a deployment or a ReplicaSet object).
pub fn images(obj: &Value) -> Vec<String> {
    obj.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The deployment's label selector in the query syntax (`matchLabels` and
/// `matchExpressions`), to list its ReplicaSets as kubectl does.
pub fn label_selector(deployment: &Value) -> Result<String, Failure> {
    let selector = deployment
        .pointer("/spec/selector")
        .ok_or_else(|| Failure::fatal("the deployment has no spec.selector"))?;
    let mut terms = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            terms.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        terms.push(match e.get("operator").and_then(Value::as_str) {
            Some("In") => format!("{key} in ({})", values.join(",")),
            Some("NotIn") => format!("{key} notin ({})", values.join(",")),
            Some("Exists") => key.to_owned(),
            Some("DoesNotExist") => format!("!{key}"),
            other => {
                return Err(Failure::fatal(format!(
                    "the deployment's selector has an unknown operator {other:?}"
                )));
            }
        });
    }
    Ok(terms.join(","))
}

/// The ReplicaSets of a list that the deployment controls (owner reference with
/// `controller: true` and the deployment's uid), oldest first by creation time then name.
pub fn owned<'a>(deployment: &Value, list: &'a Value) -> Vec<&'a Value> {
    let uid = deployment.pointer("/metadata/uid").and_then(Value::as_str);
    let mut out: Vec<&Value> = list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|rs| {
            rs.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|o| {
                    o.get("controller").and_then(Value::as_bool) == Some(true)
                        && o.get("uid").and_then(Value::as_str) == uid
                })
        })
        .collect();
    out.sort_by_key(|rs| {
        (
            rs.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            name(rs).to_owned(),
        )
    });
    out
}

/// Removes empty maps, empty lists and nulls: apimachinery's semantic equality treats them
/// as absent, and servers differ in which they send.
fn normalised(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalised(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalised).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A pod template without the `pod-template-hash` label.
fn template_without_hash(obj: &Value) -> Value {
    let mut template = obj
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    template
}

/// kubectl's `equalIgnoreHash`: the two pod templates are the same but for the hash label.
pub fn same_template(a: &Value, b: &Value) -> bool {
    normalised(&template_without_hash(a)) == normalised(&template_without_hash(b))
}

/// One revision, as `kubectl rollout history` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub number: u64,
    pub change_cause: Option<String>,
    pub images: Vec<String>,
    pub replicaset: String,
}

/// Every revision of the deployment, oldest first.
pub fn history(replica_sets: &[&Value]) -> Vec<Revision> {
    let mut out: Vec<Revision> = replica_sets
        .iter()
        .map(|rs| Revision {
            number: revision(rs),
            change_cause: annotations(rs)
                .and_then(|a| a.get(CHANGE_CAUSE))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            images: images(rs),
            replicaset: name(rs).to_owned(),
        })
        .collect();
    out.sort_by_key(|r| r.number);
    out
}

/// The ReplicaSet holding a revision: the given number, or for `None` the second highest
/// (kubectl's `deploymentRevision`).
pub fn find_revision<'a>(
    deployment: &Value,
    replica_sets: &[&'a Value],
    to: Option<u64>,
) -> Result<&'a Value, Failure> {
    if let Some(n) = to {
        return replica_sets
            .iter()
            .find(|rs| revision(rs) == n)
            .copied()
            .ok_or_else(|| {
                Failure::fatal(format!(
                    "unable to find specified revision {n} in history of deployment {:?}",
                    name(deployment)
                ))
            });
    }
    let mut by_revision: Vec<&Value> = replica_sets.to_vec();
    by_revision.sort_by_key(|rs| std::cmp::Reverse(revision(rs)));
    by_revision.get(1).copied().ok_or_else(|| {
        Failure::fatal(format!(
            "no rollout history found for deployment {:?}: there is no previous revision",
            name(deployment)
        ))
    })
}

/// The JSON patch `kubectl rollout undo` sends: the ReplicaSet's template (without the hash
/// label) and annotations (the deployment's own bookkeeping ones kept).
pub fn rollback_patch(deployment: &Value, replica_set: &Value) -> Value {
    let mut template = replica_set
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    let mut merged = Map::new();
    if let Some(current) = annotations(deployment) {
        for key in ANNOTATIONS_TO_SKIP {
            if let Some(v) = current.get(key) {
                merged.insert(key.to_owned(), v.clone());
            }
        }
    }
    if let Some(from_rs) = annotations(replica_set) {
        for (k, v) in from_rs {
            if !ANNOTATIONS_TO_SKIP.contains(&k.as_str()) {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": merged},
    ])
}

/// What `kubectl rollout status` would say about the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub done: bool,
    pub message: String,
    /// The rollout cannot complete: it exceeded its progress deadline.
    pub failed: bool,
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// kubectl's `DeploymentStatusViewer.Status`, message for message.
pub fn status(deployment: &Value) -> Status {
    let name = name(deployment);
    let waiting = |message: String| Status {
        done: false,
        message,
        failed: false,
    };
    let generation = int(deployment, "/metadata/generation");
    if generation > int(deployment, "/status/observedGeneration") {
        return waiting("Waiting for deployment spec update to be observed...".into());
    }
    let timed_out = deployment
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Progressing")
                && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
        });
    if timed_out {
        return Status {
            done: false,
            message: format!("deployment {name:?} exceeded its progress deadline"),
            failed: true,
        };
    }
    let replicas = deployment.pointer("/spec/replicas").and_then(Value::as_i64);
    let updated = int(deployment, "/status/updatedReplicas");
    let total = int(deployment, "/status/replicas");
    let available = int(deployment, "/status/availableReplicas");
    if let Some(want) = replicas
        && updated < want
    {
        return waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {want} new replicas have been updated..."
        ));
    }
    if total > updated {
        return waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            total - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    Status {
        done: true,
        message: format!("deployment {name:?} successfully rolled out"),
        failed: false,
    }
}

/// The annotation `kubectl rollout restart` sets on the pod template; a new value is a new
/// template, so the controller rolls out new pods (kubectl's `polymorphichelpers/objectrestarter.go`).
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The names of a pod template's containers, in order.
pub fn container_names(obj: &Value) -> Vec<String> {
    obj.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The container `set_image` changes and its current image: the named one, or the pod's only
/// one when no name is given. Errors list the names there are, as kubectl's
/// `unable to find container named "x"` does not.
pub fn find_container(
    deployment: &Value,
    wanted: Option<&str>,
) -> Result<(String, String), Failure> {
    let containers = deployment
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let names = container_names(deployment);
    let found = match wanted {
        Some(name) => containers
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name)),
        None if containers.len() == 1 => containers.first(),
        None => {
            return Err(Failure::fatal(format!(
                "deployment {:?} has {} containers ({}): name one with param `container`",
                name(deployment),
                containers.len(),
                names.join(", ")
            )));
        }
    };
    let container = found.ok_or_else(|| {
        Failure::fatal(format!(
            "unable to find container named {:?} in deployment {:?} (it has: {})",
            wanted.unwrap_or_default(),
            name(deployment),
            names.join(", ")
        ))
    })?;
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let name = container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok((name, image))
}

/// The strategic merge patch `kubectl set image deployment/x container=image` sends: the
/// container, found by its merge key `name`, with its new image.
pub fn set_image_patch(container: &str, image: &str) -> Value {
    json!({"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}})
}

/// The strategic merge patch `kubectl rollout restart` sends: the pod template's
/// `kubectl.kubernetes.io/restartedAt` annotation set to now (RFC 3339).
pub fn restart_patch(restarted_at: &str) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}})
}

/// The pod template's `kubectl.kubernetes.io/restartedAt`, if any.
pub fn restarted_at(deployment: &Value) -> Option<&str> {
    deployment
        .pointer("/spec/template/metadata/annotations")
        .and_then(|a| a.get(RESTARTED_AT))
        .and_then(Value::as_str)
}

/// The merge patch `kubectl scale` sends to the deployment's `scale` subresource.
pub fn scale_patch(replicas: u32) -> Value {
    json!({"spec": {"replicas": replicas}})
}

/// `spec.replicas` of a deployment or a `Scale` (1 when absent, the apps/v1 default).
pub fn desired_replicas(obj: &Value) -> u64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1)
}

/// Seconds since the Unix epoch as RFC 3339 in UTC (`2026-11-30T13:12:00Z`), the form Go's
/// `time.RFC3339` gives kubectl for a UTC clock. Days to a civil date: Howard Hinnant's
/// `civil_from_days`.
pub fn rfc3339(epoch_secs: u64) -> String {
    let days = i64::try_from(epoch_secs / 86_400).unwrap_or(i64::MAX);
    let secs = epoch_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The undo target chosen by the first attempt, kept in step state so every later attempt
/// (a retry, or a resume after a crash) rolls back to the same revision instead of
/// computing "previous" again from a deployment the first attempt may already have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoTarget {
    /// The revision asked for (resolved when "previous").
    pub revision: u64,
    /// The ReplicaSet holding it. After the rollback the controller gives this ReplicaSet
    /// the next revision number, so later attempts find it by name, not by number.
    pub replicaset: String,
    /// The deployment's revision and images before the rollback.
    pub from_revision: u64,
    pub from_images: Vec<String>,
}

impl UndoTarget {
    pub fn to_json(&self) -> String {
        json!({
            "revision": self.revision,
            "replicaset": self.replicaset,
            "from_revision": self.from_revision,
            "from_images": self.from_images,
        })
        .to_string()
    }

    pub fn from_json(text: &str) -> Result<Self, Failure> {
        let bad = || Failure::fatal(format!("saved undo target is unreadable: {text}"));
        let v: Value = serde_json::from_str(text).map_err(|_| bad())?;
        Ok(Self {
            revision: v.get("revision").and_then(Value::as_u64).ok_or_else(bad)?,
            replicaset: v
                .get("replicaset")
                .and_then(Value::as_str)
                .ok_or_else(bad)?
                .to_owned(),
            from_revision: v
                .get("from_revision")
                .and_then(Value::as_u64)
                .ok_or_else(bad)?,
            from_images: v
                .get("from_images")
                .and_then(Value::as_array)
                .ok_or_else(bad)?
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests;
