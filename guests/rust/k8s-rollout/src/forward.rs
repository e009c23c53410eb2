//! Roll forward: `set_image`, `restart` and `scale`, each sending the request kubectl sends
//! (`kubectl set image`, `kubectl rollout restart`, `kubectl scale`) and then waiting for the
//! rollout as `status` does.
//!
//! Each saves what it saw and chose in step state before changing anything, so a later
//! attempt (a retry, a resume after a crash, or the next wait after `retry-after`) reports
//! the same "from" values and sends the same change, which the API then treats as a no-op:
//! a second restart never restarts the pods twice.

use medic_step::host::{self, Level};
use medic_step::{Failure, Outcome};
use serde_json::{Value, json};

use crate::actions::{Api, base_output, status};
use crate::rollout;

/// Step-state key of what the first attempt saw and chose.
const FORWARD_KEY: &str = "roll-forward";

/// What the first attempt saved, or `first()` saved now.
fn remembered(first: impl FnOnce() -> Value) -> Result<Value, Failure> {
    match host::state_get(FORWARD_KEY) {
        Some(text) => serde_json::from_str(&text)
            .map_err(|_| Failure::fatal(format!("saved roll-forward state is unreadable: {text}"))),
        None => {
            let value = first();
            host::state_set(FORWARD_KEY, &value.to_string());
            Ok(value)
        }
    }
}

fn note(api: &Api<'_>, what: &str) {
    let line = format!(
        "k8s-rollout: {}/{} {what}",
        api.params.namespace, api.params.deployment
    );
    host::log(Level::Info, &line);
    host::annotate(&line);
}

/// `kubectl set image deployment/<d> <container>=<image>`, then the status wait.
pub async fn set_image(api: &Api<'_>) -> Result<Outcome, Failure> {
    let image = api.params.image.as_str();
    let deployment = api.deployment().await?;
    let (container, current) =
        rollout::find_container(&deployment, api.params.container.as_deref())?;
    let saved = remembered(
        || json!({"from_image": current, "from_revision": rollout::revision(&deployment)}),
    )?;
    let from_image = saved["from_image"].as_str().unwrap_or_default().to_owned();
    if current != image {
        let patch = rollout::set_image_patch(&container, image);
        api.call(
            "PATCH",
            &api.deployment_path(),
            Some(("application/strategic-merge-patch+json", &patch)),
        )
        .await?;
        note(
            api,
            &format!("set image {container}={image} (was {current})"),
        );
    }
    let mut out = base_output(api, "set_image");
    out.insert("container".into(), container.into());
    out.insert("from_image".into(), from_image.clone().into());
    out.insert("to_image".into(), image.into());
    out.insert("from_revision".into(), saved["from_revision"].clone());
    out.insert("changed".into(), (from_image != image).into());
    status(api, out).await
}

/// `kubectl rollout restart deployment/<d>`: a new `restartedAt` on the pod template, chosen
/// once per step, then the status wait.
pub async fn restart(api: &Api<'_>) -> Result<Outcome, Failure> {
    let deployment = api.deployment().await?;
    if rollout::paused(&deployment) {
        // kubectl's own refusal (objectrestarter.go): a paused deployment would not roll.
        return Err(Failure::fatal(format!(
            "can't restart paused deployment {}/{} (run rollout resume first: action: resume)",
            api.params.namespace, api.params.deployment
        )));
    }
    let saved = remembered(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        json!({"restarted_at": rollout::rfc3339(now), "from_revision": rollout::revision(&deployment)})
    })?;
    let restarted_at = saved["restarted_at"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let changed = rollout::restarted_at(&deployment) != Some(restarted_at.as_str());
    if changed {
        let patch = rollout::restart_patch(&restarted_at);
        api.call(
            "PATCH",
            &api.deployment_path(),
            Some(("application/strategic-merge-patch+json", &patch)),
        )
        .await?;
        note(api, &format!("restarted (restartedAt {restarted_at})"));
    }
    let mut out = base_output(api, "restart");
    out.insert("restarted_at".into(), restarted_at.into());
    out.insert("from_revision".into(), saved["from_revision"].clone());
    status(api, out).await
}

/// `kubectl scale deployment/<d> --replicas=N` (a merge patch of the `scale` subresource),
/// then the status wait.
pub async fn scale(api: &Api<'_>) -> Result<Outcome, Failure> {
    let replicas = api.params.replicas;
    let path = format!("{}/scale", api.deployment_path());
    let current = api.call("GET", &path, None).await?;
    let now = rollout::desired_replicas(&current);
    let saved = remembered(|| json!({"from_replicas": now}))?;
    if now != u64::from(replicas) {
        let patch = rollout::scale_patch(replicas);
        api.call(
            "PATCH",
            &path,
            Some(("application/merge-patch+json", &patch)),
        )
        .await?;
        note(api, &format!("scaled to {replicas} replicas (was {now})"));
    }
    let mut out = base_output(api, "scale");
    out.insert("from_replicas".into(), saved["from_replicas"].clone());
    out.insert("to_replicas".into(), replicas.into());
    status(api, out).await
}
