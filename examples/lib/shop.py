#!/usr/bin/env python3
"""A stand-in for the checkout service, for the restore examples (examples/bad-flag,
examples/bad-deploy). Standard library only.

It serves steady fake traffic and reports it the way a real service does, so the alerting
and the verify steps see the effect of the fix through Prometheus, not through a switch:

  GET /metrics   Prometheus text: http_requests_total{code="200"|"500"} counters, growing by
                 about 20 requests a second; the share of 500s is what breaks and recovers
  GET /health    200 {"status":"ok",...} when healthy, else 500 with the reason

What breaks it is read from the real systems every half second, as the service's own
client libraries would:

  --unleash URL --unleash-token T --feature F [--environment production]
      broken while feature F is enabled in the environment (Unleash Admin API; a real service
      would use an SDK with a client token: the admin token keeps the example's setup short)
      --gradual SHARE (with --unleash; examples/guarded-rollout): only the users the flag
      lets in get the new code, whose bug fails SHARE of their requests (0: no bug), so the
      error share is SHARE times the rollout percentage of the flag's flexible-rollout
      strategy while the flag is enabled
  --k8s URL --deployment D [--namespace default] --bad-image IMAGE
      broken while any available ReplicaSet of deployment D runs IMAGE (the pods still
      serving), read from the Kubernetes API; the share of errors follows the share of
      replicas on the bad image, as it does during a real rollout

Usage: shop.py --port N (0: a free port; the bound port is printed first) and one of the
above. A source that cannot be read keeps the last known state and says so on stderr.
"""
import argparse
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REQUESTS_PER_TICK = 2  # every 100 ms: about 20 requests a second
BROKEN_ERROR_SHARE = 0.3

lock = threading.Lock()
counts = {"200": 0, "500": 0}
# error_share: the fraction of requests failing now; why: what is wrong (None when healthy)
state = {"error_share": 0.0, "why": None, "source_ok": False}


def get_json(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", token)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def read_flag(args):
    path = f"/api/admin/projects/default/features/{urllib.parse.quote(args.feature)}"
    doc = get_json(args.unleash.rstrip("/") + path, args.unleash_token)
    env = next(e for e in doc["environments"] if e["name"] == args.environment)
    if env["enabled"]:
        return BROKEN_ERROR_SHARE, f"feature {args.feature} is on: NullPointerException in NewCheckoutFlow"
    return 0.0, None


def rollout_share(env):
    """The share of users an enabled environment lets in: its strategies are OR-ed, a
    `flexibleRollout` lets in `rollout`%, any other enabled strategy everyone."""
    share = 0.0
    for strategy in env.get("strategies", []):
        if strategy.get("disabled"):
            continue
        if strategy.get("name") == "flexibleRollout":
            share = max(share, float(strategy.get("parameters", {}).get("rollout", "0")) / 100)
        else:
            share = 1.0
    return share if env.get("strategies") else 1.0


def read_gradual(args):
    path = f"/api/admin/projects/default/features/{urllib.parse.quote(args.feature)}"
    doc = get_json(args.unleash.rstrip("/") + path, args.unleash_token)
    env = next(e for e in doc["environments"] if e["name"] == args.environment)
    users = rollout_share(env) if env["enabled"] else 0.0
    if users and args.gradual:
        return args.gradual * users, f"{users:.0%} of users on {args.feature}: TypeError in NewCheckoutFlow"
    return 0.0, None


def read_deployment(args):
    base = f"{args.k8s.rstrip('/')}/apis/apps/v1/namespaces/{args.namespace}"
    dep = get_json(f"{base}/deployments/{args.deployment}")
    selector = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
    rss = get_json(f"{base}/replicasets?labelSelector={urllib.parse.quote(selector)}")["items"]
    total = bad = 0
    for rs in rss:
        available = rs.get("status", {}).get("availableReplicas", 0)
        images = [c["image"] for c in rs["spec"]["template"]["spec"]["containers"]]
        total += available
        if args.bad_image in images:
            bad += available
    if total and bad:
        share = BROKEN_ERROR_SHARE * bad / total
        return share, f"{bad} of {total} replicas run {args.bad_image}: 5xx on POST /orders"
    if not total:
        return 1.0, "no replica available"
    return 0.0, None


def watch(args):
    read = read_deployment if args.k8s else read_gradual if args.gradual is not None else read_flag
    while True:
        try:
            share, why = read(args)
            with lock:
                state.update(error_share=share, why=why, source_ok=True)
        except Exception as e:  # keep serving on the last known state, as a service would
            print(f"shop: cannot read the source of truth: {e}", file=sys.stderr, flush=True)
        time.sleep(0.5)


def traffic():
    """Deterministic error share: of every N requests, round(N * share) fail."""
    owed = 0.0
    while True:
        with lock:
            share = state["error_share"]
        owed += REQUESTS_PER_TICK * share
        errors = min(REQUESTS_PER_TICK, int(owed))
        owed -= errors
        with lock:
            counts["500"] += errors
            counts["200"] += REQUESTS_PER_TICK - errors
        time.sleep(0.1)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):  # the example's output stays readable
        pass

    def reply(self, code, ctype, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/metrics":
            with lock:
                lines = ["# TYPE http_requests_total counter"]
                lines += [f'http_requests_total{{code="{c}"}} {n}' for c, n in counts.items()]
            self.reply(200, "text/plain; version=0.0.4", "\n".join(lines) + "\n")
        elif self.path == "/health":
            with lock:
                why, ok = state["why"], state["source_ok"]
            if not ok:
                self.reply(503, "application/json", json.dumps({"status": "starting"}))
            elif why:
                self.reply(500, "application/json", json.dumps({"status": "error", "error": why}))
            else:
                self.reply(200, "application/json", json.dumps({"status": "ok"}))
        else:
            self.reply(404, "application/json", json.dumps({"error": "not found"}))


class Server(ThreadingHTTPServer):
    daemon_threads = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--unleash")
    p.add_argument("--unleash-token")
    p.add_argument("--feature")
    p.add_argument("--environment", default="production")
    p.add_argument("--gradual", type=float)
    p.add_argument("--k8s")
    p.add_argument("--namespace", default="default")
    p.add_argument("--deployment")
    p.add_argument("--bad-image")
    args = p.parse_args()
    if bool(args.unleash) == bool(args.k8s):
        p.error("give either --unleash (with --unleash-token, --feature) or --k8s (with --deployment, --bad-image)")
    if args.unleash and not (args.unleash_token and args.feature):
        p.error("--unleash needs --unleash-token and --feature")
    if args.k8s and not (args.deployment and args.bad_image):
        p.error("--k8s needs --deployment and --bad-image")
    server = Server(("127.0.0.1", args.port), Handler)
    threading.Thread(target=watch, args=(args,), daemon=True).start()
    threading.Thread(target=traffic, daemon=True).start()
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
