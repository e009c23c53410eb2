#!/usr/bin/env python3
"""A Kubernetes API server for tests: Deployments and ReplicaSets (apps/v1), enough for the
real kubectl (`create`, `get`, `set image`, `annotate`, `patch`, `scale`, `rollout
history|undo|pause|resume|status|restart`) and for medic's `k8s-rollout` step. See README.md for what
it models and what it does not.

    python3 server.py [--port 0] [--token T] [--rollout-delay-ms 300]
                      [--tls-cert server.pem --tls-key server-key.pem [--client-ca ca.pem]]

Plain HTTP on 127.0.0.1; prints the bound port on the first line of stdout. With `--token`,
every API request needs `Authorization: Bearer T`.

With `--tls-cert` and `--tls-key` the port serves HTTPS (TLS 1.2+) with that certificate, as
a real API server does with its cluster CA's certificate; a second, plain-HTTP port on
127.0.0.1, printed on the second line, serves the same API and the test-control endpoints
for the test harness. With `--client-ca`, the HTTPS port requires a client certificate
signed by that CA (kube-apiserver's `--client-ca-file`): a connection without one is refused
in the TLS handshake. Each request records the client certificate's common name.

Test-control endpoints (no token needed):

    GET  /_test/requests     every API request so far: method, path, content type, auth, body
    POST /_test/fail-next    {"method": "PATCH", "status": 500, "apply": true}: the next such
                             request is applied (if `apply`) and then answered with `status`
"""

import argparse
import copy
import json
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import discovery
import scale
from controller import Controller
from patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from store import ApiError, Store, parse_field_selector, parse_label_selector, selector_requirements

PATCH_TYPES = {
    "application/json-patch+json": json_patch,
    "application/merge-patch+json": merge_patch,
    "application/strategic-merge-patch+json": strategic_merge_patch,
}


class State:
    def __init__(self, token, delay):
        self.token = token
        self.store = Store()
        self.controller = Controller(self.store, delay)
        self.lock = threading.Lock()
        self.requests = []
        self.fail_next = []


def defaults(dep):
    """The apps/v1 defaults the real API server fills in on every write."""
    spec = dep.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("type", "RollingUpdate")
        strategy.setdefault("rollingUpdate", {}).setdefault("maxSurge", "25%")
        strategy["rollingUpdate"].setdefault("maxUnavailable", "25%")
    pod = spec.setdefault("template", {}).setdefault("spec", {})
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("securityContext", {})
    pod.setdefault("schedulerName", "default-scheduler")
    for c in pod.get("containers", []):
        if isinstance(c, dict):
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            image = str(c.get("image", ""))
            latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")


def validate(dep):
    name = dep.get("metadata", {}).get("name", "")

    def invalid(field, message):
        return ApiError(422, "Invalid", f'Deployment.apps "{name}" is invalid: {field}: {message}',
                        {"name": name, "group": "apps", "kind": "Deployment",
                         "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]})

    spec = dep.get("spec", {})
    if not spec.get("selector"):
        raise invalid("spec.selector", "Required value")
    labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    try:
        from store import labels_match
        ok = labels_match(labels, selector_requirements(spec["selector"]))
    except KeyError:
        ok = False
    if not ok:
        raise invalid("spec.template.metadata.labels", f"Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`")
    containers = spec.get("template", {}).get("spec", {}).get("containers")
    if not containers:
        raise invalid("spec.template.spec.containers", "Required value")
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name"):
            raise invalid(f"spec.template.spec.containers[{i}].name", "Required value")
        if not c.get("image"):
            raise invalid(f"spec.template.spec.containers[{i}].image", "Required value")
    if not isinstance(spec.get("replicas", 1), int) or spec.get("replicas", 1) < 0:
        raise invalid("spec.replicas", "must be greater than or equal to 0")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State = None  # set by main()

    def log_message(self, fmt, *args):  # quiet: the tests read /_test/requests instead
        pass

    # --- plumbing -------------------------------------------------------------------------

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, code, doc):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        raw = self.body()
        if url.path.startswith("/_test/"):
            return self.control(method, url.path, raw)
        state = self.state
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        auth = self.headers.get("Authorization")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with state.lock:
            state.requests.append({
                "method": method, "path": self.path, "content_type": content_type,
                "authorized": auth is not None, "body": body,
                "user_agent": self.headers.get("User-Agent", ""),
                "tls": isinstance(self.connection, ssl.SSLSocket),
                "client_cn": client_common_name(self.connection),
            })
            failure = next((f for f in state.fail_next if f["method"] == method), None)
            if failure:
                state.fail_next.remove(failure)
        try:
            if state.token is not None and auth != f"Bearer {state.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            if failure and not failure.get("apply", True):
                raise injected(failure)
            code, doc = self.route(method, url.path, query, body, content_type)
            if failure:
                raise injected(failure)
            if doc is not None:
                self.send_json(code, doc)
        except ApiError as e:
            self.send_json(e.code, e.status())
        except PatchError as e:
            self.send_json(422, ApiError(422, "Invalid", str(e)).status())

    def control(self, method, path, raw):
        state = self.state
        if method == "GET" and path == "/_test/requests":
            with state.lock:
                return self.send_json(200, {"requests": list(state.requests)})
        if method == "POST" and path == "/_test/fail-next":
            spec = json.loads(raw or b"{}")
            spec.setdefault("method", "PATCH")
            spec.setdefault("status", 500)
            with state.lock:
                state.fail_next.append(spec)
            return self.send_json(200, spec)
        self.send_json(404, ApiError(404, "NotFound", f"no test endpoint {method} {path}").status())

    # --- the API --------------------------------------------------------------------------

    def route(self, method, path, query, body, content_type):
        if method == "GET" and path in discovery.DOCS:
            return 200, discovery.DOCS[path]
        parts = [p for p in path.split("/") if p]
        if method == "GET" and parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            return 200, self.namespaces(parts[3] if len(parts) == 4 else None)
        if parts[:3] != ["apis", "apps", "v1"]:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rest = parts[3:]
        ns = None
        if len(rest) >= 2 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or rest[0] not in ("deployments", "replicasets") or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        resource, name = rest[0], rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub not in (None, "status", "scale"):
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({sub})")
        store = self.state.store
        if sub == "scale" and name is not None and ns is not None:
            return 200, self.scale(resource, method, ns, name, body, content_type)
        if name is None:
            if method == "GET" and query.get("watch") in ("true", "1"):
                self.watch(resource, ns, query)
                return 200, None
            if method == "GET":
                with store.cond:
                    items = store.list(resource, ns, parse_label_selector(query.get("labelSelector")),
                                       parse_field_selector(query.get("fieldSelector")))
                    return 200, {"kind": discovery.KIND[resource] + "List", "apiVersion": "apps/v1",
                                 "metadata": {"resourceVersion": str(store.rv)},
                                 "items": copy.deepcopy(items)}
            if method == "POST" and ns is not None:
                return 201, self.create(resource, ns, body)
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on the collection")
        if ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        with store.cond:
            if method == "GET":
                return 200, copy.deepcopy(store.get(resource, ns, name))
            if method == "PUT":
                return 200, self.write(resource, ns, name, body, sub)
            if method == "PATCH":
                patcher = PATCH_TYPES.get(content_type)
                if patcher is None:
                    raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}")
                current = copy.deepcopy(store.get(resource, ns, name))
                patched = patcher(current, body)
                if not isinstance(patched, dict):
                    raise ApiError(422, "Invalid", "the patch did not produce an object")
                return 200, self.write(resource, ns, name, patched, sub, from_patch=True)
            if method == "DELETE":
                obj = store.delete(resource, ns, name)
                if resource == "deployments":
                    for rs in store.list("replicasets", ns):
                        if any(o.get("uid") == obj["metadata"]["uid"] for o in rs["metadata"].get("ownerReferences", [])):
                            store.delete("replicasets", ns, rs["metadata"]["name"])
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "details": {"name": name, "group": "apps", "kind": resource, "uid": obj["metadata"]["uid"]}}
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    def scale(self, resource, method, ns, name, body, content_type):
        patcher = PATCH_TYPES.get(content_type)
        if method == "PATCH" and patcher is None:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}")
        with self.state.store.cond:
            return copy.deepcopy(scale.handle(self.state.store, resource, method, ns, name, body, patcher))

    def namespaces(self, name):
        def namespace(n):
            return {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": n},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

        if name is not None:
            return namespace(name)
        with self.state.store.cond:
            names = sorted({"default"} | {ns for (_, ns, _) in self.state.store.objects})
            rv = str(self.state.store.rv)
        return {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": rv},
                "items": [namespace(n) for n in names]}

    def create(self, resource, ns, body):
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        kind = discovery.KIND[resource]
        if body.get("kind") not in (None, kind):
            raise ApiError(400, "BadRequest", f"the body kind {body.get('kind')!r} does not match {kind}")
        body_ns = body.get("metadata", {}).get("namespace")
        if body_ns not in (None, ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        if resource == "deployments":
            defaults(body)
            validate(body)
        body.pop("status", None)
        with self.state.store.cond:
            return copy.deepcopy(self.state.store.create(resource, ns, body))

    def write(self, resource, ns, name, obj, sub, from_patch=False):
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        meta = obj.get("metadata", {})
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        if resource == "deployments" and sub is None:
            defaults(obj)
            validate(obj)
        expect = meta.get("resourceVersion")
        stored = self.state.store.update(resource, ns, name, obj, status_only=sub == "status", expect_rv=expect)
        return copy.deepcopy(stored)

    def watch(self, resource, ns, query):
        store = self.state.store
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        initial = query.get("sendInitialEvents") == "true"
        rv_text = query.get("resourceVersion") or "0"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

        def send(event):
            data = json.dumps(event).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        try:
            with store.cond:
                if initial or rv_text == "0":
                    # "Start at the most recent": the current objects as ADDED, then changes.
                    current = copy.deepcopy(store.list(resource, ns, labels, fields))
                    rv = store.rv
                else:
                    current, rv = [], int(rv_text)
            for obj in current:
                send({"type": "ADDED", "object": obj})
            if initial:
                send({"type": "BOOKMARK", "object": {
                    "kind": discovery.KIND[resource], "apiVersion": "apps/v1",
                    "metadata": {"resourceVersion": str(rv), "annotations": {"k8s.io/initial-events-end": "true"}}}})
            while time.monotonic() < deadline:
                with store.cond:
                    events = store.events_after(rv, resource, ns, labels, fields)
                    if not events:
                        store.cond.wait(timeout=min(0.5, max(deadline - time.monotonic(), 0)))
                        events = store.events_after(rv, resource, ns, labels, fields)
                for erv, kind, obj in events:
                    send({"type": kind, "object": obj})
                    rv = erv
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def client_common_name(conn):
    """The common name of the client certificate on a TLS connection, or None."""
    if not isinstance(conn, ssl.SSLSocket):
        return None
    cert = conn.getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A refused TLS handshake (no or untrusted client certificate, a client that does
        # not trust our CA) is expected in tests: one line, not a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            print(f"tls: {client_address[0]}: {exc}", file=sys.stderr, flush=True)
            return
        super().handle_error(request, client_address)


def tls_context(cert, key, client_ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


def injected(failure):
    code = int(failure["status"])
    reason = {500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests", 409: "Conflict"}.get(code, "BadRequest")
    return ApiError(code, reason, failure.get("message", f"injected failure: HTTP {code}"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--token", help="require Authorization: Bearer TOKEN on API requests")
    parser.add_argument("--rollout-delay-ms", type=int, default=300,
                        help="how long a rollout takes to become available")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    parser.add_argument("--client-ca", help="require client certificates signed by this PEM CA")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key) or (args.client_ca and not args.tls_cert):
        parser.error("--tls-cert and --tls-key go together; --client-ca needs them")
    state = State(args.token, args.rollout_delay_ms / 1000)
    Handler.state = state
    server = Server(("127.0.0.1", args.port), Handler)
    plain = None
    if args.tls_cert:
        ctx = tls_context(args.tls_cert, args.tls_key, args.client_ca)
        # The handshake runs in the request's thread (on its first read), so a client that
        # stalls or is refused never blocks the accept loop.
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        plain = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=plain.serve_forever, daemon=True).start()

    def control_loop():
        while True:
            try:
                state.controller.tick()
            except Exception as e:  # keep serving; the error shows on stderr
                print(f"controller: {e!r}", file=sys.stderr, flush=True)
            time.sleep(0.05)

    threading.Thread(target=control_loop, daemon=True).start()
    print(server.server_address[1], flush=True)
    if plain is not None:
        print(plain.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
