"""Object storage with the API server's bookkeeping: one resourceVersion counter for every
write, an event log that watches replay from any resourceVersion, uid, creationTimestamp,
generation (bumped when `spec` changes, as for Deployments and ReplicaSets), and label and
field selectors as the list and watch endpoints take them.
"""

import copy
import datetime
import re
import threading
import uuid


class ApiError(Exception):
    """An error the server answers with a `Status` object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self):
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(resource, name):
    return ApiError(404, "NotFound", f'{resource}.apps "{name}" not found',
                    {"name": name, "group": "apps", "kind": resource})


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


KINDS = {"deployments": "Deployment", "replicasets": "ReplicaSet"}


class Store:
    """All objects, keyed by (resource, namespace, name). Guarded by `cond`."""

    def __init__(self):
        self.cond = threading.Condition()
        self.objects = {}
        self.rv = 1000
        # (resourceVersion, event type, resource, object snapshot)
        self.events = []

    # All methods below expect the caller to hold `self.cond`.

    def get(self, resource, ns, name):
        obj = self.objects.get((resource, ns, name))
        if obj is None:
            raise not_found(resource, name)
        return obj

    def list(self, resource, ns, label_selector=None, field_selector=None):
        items = [
            o for (r, n, _), o in sorted(self.objects.items(), key=lambda kv: kv[0])
            if r == resource and (ns is None or n == ns)
        ]
        return [o for o in items if matches(o, label_selector, field_selector)]

    def _commit(self, resource, obj, kind):
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append((self.rv, kind, resource, copy.deepcopy(obj)))
        self.cond.notify_all()

    def create(self, resource, ns, obj):
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + uuid.uuid4().hex[:5]
            meta["name"] = name
        if not name:
            raise ApiError(422, "Invalid", f"{KINDS[resource]}.apps \"\" is invalid: metadata.name: Required value: name or generateName is required")
        if (resource, ns, name) in self.objects:
            raise ApiError(409, "AlreadyExists", f'{resource}.apps "{name}" already exists',
                           {"name": name, "group": "apps", "kind": resource})
        obj["apiVersion"] = "apps/v1"
        obj["kind"] = KINDS[resource]
        meta["namespace"] = ns
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["generation"] = 1
        meta.pop("resourceVersion", None)
        obj.setdefault("status", {})
        self.objects[(resource, ns, name)] = obj
        self._commit(resource, obj, "ADDED")
        return obj

    def update(self, resource, ns, name, new, *, status_only=False, expect_rv=None):
        """Replaces an object. Writes to the main resource keep the stored status; writes to
        `/status` keep the stored spec and metadata. Returns the stored object."""
        old = self.get(resource, ns, name)
        if expect_rv and expect_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict",
                           f'Operation cannot be fulfilled on {resource}.apps "{name}": the object has been modified; please apply your changes to the latest version and try again',
                           {"name": name, "group": "apps", "kind": resource})
        if status_only:
            merged = copy.deepcopy(old)
            merged["status"] = copy.deepcopy(new.get("status", {}))
        else:
            merged = copy.deepcopy(new)
            merged["status"] = copy.deepcopy(old.get("status", {}))
            meta = merged.setdefault("metadata", {})
            # Identity and server-set fields cannot be changed by clients.
            for field in ("uid", "creationTimestamp", "namespace", "name", "generation"):
                meta[field] = old["metadata"].get(field)
            merged["apiVersion"], merged["kind"] = "apps/v1", KINDS[resource]
            if merged.get("spec") != old.get("spec"):
                meta["generation"] = old["metadata"]["generation"] + 1
        merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if merged == old:
            return old
        self.objects[(resource, ns, name)] = merged
        self._commit(resource, merged, "MODIFIED")
        return merged

    def delete(self, resource, ns, name):
        obj = self.objects.pop((resource, ns, name), None)
        if obj is None:
            raise not_found(resource, name)
        self._commit(resource, obj, "DELETED")
        return obj

    def events_after(self, rv, resource, ns, label_selector, field_selector):
        return [
            (erv, kind, obj) for erv, kind, r, obj in self.events
            if erv > rv and r == resource
            and (ns is None or obj["metadata"]["namespace"] == ns)
            and matches(obj, label_selector, field_selector)
        ]


# --- selectors ------------------------------------------------------------------------------

_SET = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_terms(text):
    """Splits on commas that are not inside `( ... )`."""
    terms, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        terms.append(current)
    return terms


def parse_label_selector(text):
    """`a=b,c!=d,e in (x,y),f notin (z),g,!h` -> a list of (key, op, values)."""
    out = []
    for term in _split_terms(text or ""):
        term = term.strip()
        for op in ("!=", "==", "="):
            if op in term and "(" not in term:
                key, value = term.split(op, 1)
                out.append((key.strip(), "!=" if op == "!=" else "=", [value.strip()]))
                break
        else:
            m = _SET.match(term)
            if not m:
                raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
            bang, key, op, values = m.groups()
            if op:
                out.append((key, op, [v.strip() for v in values.split(",") if v.strip()]))
            else:
                out.append((key, "!exists" if bang else "exists", []))
    return out


def labels_match(labels, requirements):
    labels = labels or {}
    for key, op, values in requirements:
        has = key in labels
        value = labels.get(key)
        ok = {
            "=": has and value == values[0],
            "!=": not has or value != values[0],
            "in": has and value in values,
            "notin": not has or value not in values,
            "exists": has,
            "!exists": not has,
        }[op]
        if not ok:
            return False
    return True


def parse_field_selector(text):
    out = []
    for term in _split_terms(text or ""):
        term = term.strip()
        negate = "!=" in term
        key, value = re.split(r"!=|==|=", term, maxsplit=1)
        key = key.strip()
        if key not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, "BadRequest", f'"{key}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        out.append((key, negate, value.strip()))
    return out


def matches(obj, label_selector, field_selector):
    if label_selector and not labels_match(obj["metadata"].get("labels"), label_selector):
        return False
    for key, negate, value in field_selector or []:
        actual = obj["metadata"].get(key.split(".", 1)[1])
        if (actual == value) == negate:
            return False
    return True


def selector_requirements(selector):
    """A `spec.selector` (matchLabels + matchExpressions) as label requirements."""
    reqs = [(k, "=", [v]) for k, v in sorted((selector or {}).get("matchLabels", {}).items())]
    for e in (selector or {}).get("matchExpressions", []):
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}[e["operator"]]
        reqs.append((e["key"], op, e.get("values", [])))
    return reqs
