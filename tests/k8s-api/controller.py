"""The deployment controller, reduced to what rollouts show through the API.

Modelled on kubernetes/pkg/controller/deployment (sync.go, rollback.go, progress.go,
util/deployment_util.go):

- The new ReplicaSet is the oldest owned one whose template equals the deployment's,
  ignoring the `pod-template-hash` label. If there is none and the deployment is not paused,
  one is created: named `<deployment>-<hash>`, with the hash as `pod-template-hash` label and
  selector term, an owner reference to the deployment, and the deployment's annotations.
- Revisions: the new ReplicaSet gets `max(revision of the old ones) + 1` when its own is
  lower, so a ReplicaSet brought back by a rollback moves to the next number and its old
  number goes into `deployment.kubernetes.io/revision-history`; the deployment's
  `deployment.kubernetes.io/revision` follows its new ReplicaSet.
- Annotations such as `kubernetes.io/change-cause` are copied from the deployment to its new
  ReplicaSet on every sync (not the revision bookkeeping ones).
- Paused: no new ReplicaSet is created (template changes wait), the `Progressing` condition
  is `Unknown/DeploymentPaused`; resuming sets `Unknown/DeploymentResumed` and the rollout
  proceeds.
- Rollout timing: pods are not modelled. A rollout's new ReplicaSet reports its replicas at
  once but none available; after `delay` seconds the old ReplicaSets are scaled to 0 and the
  new one is fully available. `rollout status` therefore sees "old replicas are pending
  termination" (or "updated replicas are available") and then "successfully rolled out".
- Old ReplicaSets beyond `revisionHistoryLimit` (default 10) are deleted once scaled down.
"""

import copy
import json
import time

from store import now_rfc3339, selector_requirements

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH = "pod-template-hash"
# Annotations the controller does not copy from a deployment to its ReplicaSets.
SKIP_COPY = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}

# rand.SafeEncodeString's alphabet: no vowels, no look-alikes.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template, collisions=0):
    """FNV-32a of the template, encoded like the controller's `pod-template-hash`."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode() + str(collisions).encode()
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in str(h))


def without_hash(template):
    t = copy.deepcopy(template or {})
    labels = t.get("metadata", {}).get("labels")
    if labels is not None:
        labels.pop(HASH, None)
    return _normalised(t)


def _normalised(value):
    """Empty maps and lists equal missing ones, as in apimachinery's semantic equality."""
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def revision_of(obj):
    try:
        return int(obj["metadata"].get("annotations", {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _condition(status, ctype, cstatus, reason, message):
    now = now_rfc3339()
    conditions = status.setdefault("conditions", [])
    for c in conditions:
        if c["type"] == ctype:
            if (c["status"], c["reason"], c["message"]) != (cstatus, reason, message):
                if c["status"] != cstatus:
                    c["lastTransitionTime"] = now
                c.update(status=cstatus, reason=reason, message=message, lastUpdateTime=now)
            return
    conditions.append({"type": ctype, "status": cstatus, "lastUpdateTime": now,
                       "lastTransitionTime": now, "reason": reason, "message": message})


def max_unavailable(dep):
    """`strategy.rollingUpdate.maxUnavailable` (default 25%, rounded down) as a count."""
    replicas = dep["spec"].get("replicas", 1)
    value = dep["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return replicas * int(value[:-1]) // 100
    return int(value)


class Controller:
    def __init__(self, store, delay):
        self.store = store
        self.delay = delay
        # (namespace, deployment) -> (new ReplicaSet name, rollout start time)
        self.rollouts = {}

    def tick(self):
        with self.store.cond:
            for dep in self.store.list("deployments", None):
                self.sync(dep)

    def owned(self, dep):
        ns = dep["metadata"]["namespace"]
        reqs = selector_requirements(dep["spec"].get("selector"))
        return [
            rs for rs in self.store.list("replicasets", ns, reqs)
            if any(o.get("controller") and o.get("uid") == dep["metadata"]["uid"]
                   for o in rs["metadata"].get("ownerReferences", []))
        ]

    def sync(self, dep):
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        spec = dep["spec"]
        paused = bool(spec.get("paused"))
        replicas = spec.get("replicas", 1)
        rss = sorted(self.owned(dep), key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]))
        wanted = without_hash(spec.get("template"))
        new_rs = next((r for r in rss if without_hash(r["spec"].get("template")) == wanted), None)
        old = [r for r in rss if new_rs is None or r["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        new_revision = max([revision_of(r) for r in old], default=0) + 1

        if new_rs is None and not paused:
            new_rs = self.create_rs(dep, new_revision)
        if new_rs is not None:
            new_rs = self.sync_rs_annotations(dep, new_rs, new_revision)

        # Scale: the new ReplicaSet to the desired count; the old ones down once the
        # rollout's delay has passed (pods are not modelled, see the module docs).
        done = True
        if new_rs is not None:
            key = (ns, name)
            rs_name = new_rs["metadata"]["name"]
            started = self.rollouts.get(key)
            if started is None or started[0] != rs_name or new_rs["spec"].get("replicas") != replicas:
                self.rollouts[key] = started = (rs_name, time.monotonic())
            done = time.monotonic() - started[1] >= self.delay
            self.scale(new_rs, replicas, available=done)
            if done:
                for rs in old:
                    self.scale(rs, 0, available=True)
        self.cleanup(dep, old)

        status = copy.deepcopy(dep.get("status", {}))
        current = self.owned(dep)
        if new_rs is not None:
            new_rs = self.store.get("replicasets", ns, new_rs["metadata"]["name"])
        total = sum(r["status"].get("replicas", 0) for r in current)
        available = sum(r["status"].get("availableReplicas", 0) for r in current)
        ready = sum(r["status"].get("readyReplicas", 0) for r in current)
        updated = new_rs["status"].get("replicas", 0) if new_rs is not None else 0
        status.update(observedGeneration=dep["metadata"]["generation"], replicas=total,
                      updatedReplicas=updated, readyReplicas=ready, availableReplicas=available,
                      unavailableReplicas=max(replicas - available, 0))
        for field in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            if status[field] == 0:
                status.pop(field)  # omitempty, as the real API serves them
        if available >= replicas - max_unavailable(dep):
            _condition(status, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            _condition(status, "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        progressing = next((c for c in status.get("conditions", []) if c["type"] == "Progressing"), None)
        if paused:
            _condition(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif progressing is not None and progressing["reason"] == "DeploymentPaused":
            _condition(status, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")
        elif new_rs is not None and done:
            _condition(status, "Progressing", "True", "NewReplicaSetAvailable",
                       f'ReplicaSet "{new_rs["metadata"]["name"]}" has successfully progressed.')
        elif new_rs is not None:
            _condition(status, "Progressing", "True", "ReplicaSetUpdated",
                       f'ReplicaSet "{new_rs["metadata"]["name"]}" is progressing.')

        latest = self.store.get("deployments", ns, name)
        updated_dep = copy.deepcopy(latest)
        if new_rs is not None:
            annotations = updated_dep["metadata"].setdefault("annotations", {})
            annotations[REVISION] = new_rs["metadata"]["annotations"][REVISION]
        if updated_dep != latest:
            latest = self.store.update("deployments", ns, name, updated_dep)
        latest_status = copy.deepcopy(latest)
        latest_status["status"] = status
        self.store.update("deployments", ns, name, latest_status, status_only=True)

    def create_rs(self, dep, revision):
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        template = copy.deepcopy(dep["spec"]["template"])
        collisions = dep.get("status", {}).get("collisionCount", 0)
        h = template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH] = h
        selector = copy.deepcopy(dep["spec"].get("selector", {}))
        selector.setdefault("matchLabels", {})[HASH] = h
        annotations = {k: v for k, v in dep["metadata"].get("annotations", {}).items() if k not in SKIP_COPY}
        replicas = dep["spec"].get("replicas", 1)
        annotations.update({REVISION: str(revision), DESIRED: str(replicas), MAX_REPLICAS: str(replicas + 1)})
        rs = {
            "metadata": {
                "name": f"{name}-{h}",
                "labels": copy.deepcopy(template["metadata"]["labels"]),
                "annotations": annotations,
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                    "uid": dep["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
                }],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
            "status": {"replicas": 0},
        }
        return self.store.create("replicasets", ns, rs)

    def sync_rs_annotations(self, dep, rs, new_revision):
        updated = copy.deepcopy(rs)
        annotations = updated["metadata"].setdefault("annotations", {})
        for k, v in dep["metadata"].get("annotations", {}).items():
            if k not in SKIP_COPY:
                annotations[k] = v
        old_revision = revision_of(rs)
        if old_revision < new_revision:
            annotations[REVISION] = str(new_revision)
            if old_revision > 0:
                history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
                annotations[REVISION_HISTORY] = ",".join(history + [str(old_revision)])
        if updated == rs:
            return rs
        return self.store.update("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"], updated)

    def scale(self, rs, replicas, available):
        ns, name = rs["metadata"]["namespace"], rs["metadata"]["name"]
        rs = self.store.get("replicasets", ns, name)
        spec = copy.deepcopy(rs)
        spec["spec"]["replicas"] = replicas
        rs = self.store.update("replicasets", ns, name, spec)
        ready = replicas if available else 0
        status = {"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": rs["metadata"]["generation"]}
        status = {k: v for k, v in status.items() if v or k == "replicas"}
        with_status = copy.deepcopy(rs)
        with_status["status"] = status
        return self.store.update("replicasets", ns, name, with_status, status_only=True)

    def cleanup(self, dep, old):
        limit = dep["spec"].get("revisionHistoryLimit", 10)
        ns = dep["metadata"]["namespace"]
        idle = [r for r in old if ("replicasets", ns, r["metadata"]["name"]) in self.store.objects
                and self.store.get("replicasets", ns, r["metadata"]["name"])["spec"].get("replicas", 0) == 0]
        idle.sort(key=revision_of)
        for rs in idle[: max(len(idle) - limit, 0)]:
            self.store.delete("replicasets", ns, rs["metadata"]["name"])
