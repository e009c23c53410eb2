"""The three patch formats the Kubernetes API accepts, as kubectl sends them.

- JSON patch (RFC 6902, `application/json-patch+json`): `kubectl rollout undo`.
- JSON merge patch (RFC 7386, `application/merge-patch+json`): `kubectl annotate`, `label`.
- Strategic merge patch (`application/strategic-merge-patch+json`): `kubectl set image`,
  `rollout pause/resume`, `kubectl patch` by default. Lists of the Deployment and ReplicaSet
  types merge by their Kubernetes merge keys (containers by `name`, ...); the `$patch`,
  `$setElementOrder/` and `$deleteFromPrimitiveList/` directives are honoured.
"""

import copy


class PatchError(Exception):
    """A patch that cannot be applied: the server answers 422 (or 400) with this message."""


# Field name -> merge key, for the lists of the apps/v1 and core/v1 types we serve. The real
# server reads these from the Go struct tags (`patchMergeKey`); the field names are unique
# enough in the pod template that the path is not needed.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "tolerations": None,  # atomic in the real types: replaced whole
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}


def json_patch(doc, ops):
    """Applies an RFC 6902 patch to a copy of `doc`."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"json patch operation {i} needs `op` and `path`")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"json patch operation {i} ({kind}) needs `value`")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc, _ = _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            doc, value = _remove(doc, op.get("from", ""))
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op.get("from", ""))))
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"unexpected json patch operation {kind!r}")
    return doc


def _tokens(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"json pointer {path!r} must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _get(doc, path):
    for token in _tokens(path):
        doc = _child(doc, token, path)
    return doc


def _child(node, token, path):
    if isinstance(node, dict):
        if token not in node:
            raise PatchError(f"doc is missing path: {path!r}")
        return node[token]
    if isinstance(node, list):
        try:
            return node[int(token)]
        except (ValueError, IndexError):
            raise PatchError(f"doc is missing path: {path!r}") from None
    raise PatchError(f"doc is missing path: {path!r}")


def _add(doc, path, value):
    tokens = _tokens(path)
    if not tokens:
        return value
    parent = doc
    for token in tokens[:-1]:
        parent = _child(parent, token, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                index = int(last)
            except ValueError:
                raise PatchError(f"bad array index {last!r} in {path!r}") from None
            if not 0 <= index <= len(parent):
                raise PatchError(f"array index out of range in {path!r}")
            parent.insert(index, value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _remove(doc, path):
    tokens = _tokens(path)
    if not tokens:
        return None, doc
    parent = doc
    for token in tokens[:-1]:
        parent = _child(parent, token, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing path: {path!r}")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        try:
            return doc, parent.pop(int(last))
        except (ValueError, IndexError):
            raise PatchError(f"doc is missing path: {path!r}") from None
    raise PatchError(f"doc is missing path: {path!r}")


def merge_patch(doc, patch):
    """RFC 7386: objects merge, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(doc, patch):
    """A strategic merge patch of `doc` (a dict), as the API server applies it."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    return _smp_map(copy.deepcopy(doc) if isinstance(doc, dict) else {}, patch)


def _smp_map(original, patch):
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive == "delete":
        return None
    orders = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
        elif key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(original.get(field), list):
                original[field] = [x for x in original[field] if x not in value]
        elif key == "$retainKeys":
            for existing in list(original):
                if existing not in value and existing not in patch:
                    original.pop(existing)
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(original.get(key) if isinstance(original.get(key), dict) else {}, value)
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list) and key in MERGE_KEYS and MERGE_KEYS[key]:
            current = original.get(key) if isinstance(original.get(key), list) else []
            original[key] = _smp_list(current, value, MERGE_KEYS[key], key)
        else:
            original[key] = copy.deepcopy(value)
    for field, order in orders.items():
        if isinstance(original.get(field), list) and MERGE_KEYS.get(field):
            original[field] = _apply_order(original[field], order, MERGE_KEYS[field])
    return original


def _smp_list(current, patch, key, field):
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [copy.deepcopy(x) for x in patch if not (isinstance(x, dict) and "$patch" in x)]
    out = [copy.deepcopy(x) for x in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {key} (in {field})")
        index = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
            continue
        if index is None:
            out.append(_smp_map({}, item))
        else:
            out[index] = _smp_map(out[index], item)
    return out


def _apply_order(items, order, key):
    wanted = [o.get(key) for o in order if isinstance(o, dict)]
    ranked = sorted(
        enumerate(items),
        key=lambda p: (wanted.index(p[1].get(key)) if p[1].get(key) in wanted else len(wanted), p[0]),
    )
    return [item for _, item in ranked]
