"""The `scale` subresource of Deployments and ReplicaSets (autoscaling/v1 `Scale`), as
`kubectl scale` uses it.

kubectl 1.32 (`staging/src/k8s.io/kubectl/pkg/scale/scale.go`) finds the subresource in
discovery (`deployments/scale`, group `autoscaling`, version `v1`, kind `Scale`), then,
without `--current-replicas` or `--resource-version`, sends one merge patch
`{"spec":{"replicas":N}}` to `.../deployments/NAME/scale`; with a precondition it GETs the
Scale and PUTs it back with its `resourceVersion`. The API server
(`pkg/registry/apps/deployment/storage`) answers with the Scale built from the object:
`spec.replicas`, `status.replicas` and `status.selector` in label-selector syntax, the
object's name, namespace, uid, resourceVersion and creationTimestamp.
"""

import copy

from store import ApiError

GROUP = "autoscaling"


def format_selector(selector):
    """metav1.FormatLabelSelector: `matchLabels` as k=v, `matchExpressions` as k in (a,b)..."""
    terms = [f"{k}={v}" for k, v in sorted((selector or {}).get("matchLabels", {}).items())]
    for e in (selector or {}).get("matchExpressions", []):
        op, key, values = e.get("operator"), e.get("key"), ",".join(sorted(e.get("values", [])))
        terms.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}.get(op, key))
    return ",".join(terms) or "<none>"


def to_scale(obj):
    meta = obj["metadata"]
    status = {"replicas": obj.get("status", {}).get("replicas", 0),
              "selector": format_selector(obj["spec"].get("selector"))}
    return {
        "kind": "Scale", "apiVersion": f"{GROUP}/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": status,
    }


def handle(store, resource, method, ns, name, body, patcher):
    """GET, PUT or PATCH (with `patcher`, the content type's) of `resource/name/scale`.
    Returns the Scale after the change. Call with `store.cond` held."""
    obj = store.get(resource, ns, name)
    current = to_scale(obj)
    if method == "GET":
        return current
    if method == "PUT":
        wanted, expect = body, (body or {}).get("metadata", {}).get("resourceVersion")
    elif method == "PATCH":
        wanted, expect = patcher(copy.deepcopy(current), body), None
    else:
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on {resource}/scale")
    if not isinstance(wanted, dict):
        raise ApiError(400, "BadRequest", "the request body must be a Scale object")
    replicas = wanted.get("spec", {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        kind = "Scale"
        raise ApiError(422, "Invalid",
                       f'{kind}.{GROUP} "{name}" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0',
                       {"name": name, "group": GROUP, "kind": kind,
                        "causes": [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                    "message": f"Invalid value: {replicas}: must be greater than or equal to 0"}]})
    updated = copy.deepcopy(obj)
    updated["spec"]["replicas"] = replicas
    stored = store.update(resource, ns, name, updated, expect_rv=expect)
    return to_scale(stored)
