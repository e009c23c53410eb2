#!/usr/bin/env python3
"""A stand-in for the checkout service, its feature-flag service and a chat room.

Started by run.sh and by the end-to-end tests. Standard library only.

  GET  /health                      500 while the flag `new-checkout` is on, else 200 {"status":"ok"}
  GET  /flags/<name>                {"name":..., "enabled": bool}
  POST /flags/<name>/disable        turns the flag off; returns previous and new state
  POST /chat                        records the body as a chat message
  GET  /chat                        the messages so far
  GET  /requests                    every other request seen: method, path, idempotency key
  GET  /slow?ms=N                   answers 200 {"slept_ms": N} after N milliseconds (tests)

  POST /deployments/<name>/rollback  rolls back to the previous release (scenario `deploy`)
  GET  /deployments/<name>           {"name":..., "release":..., "rollout": "complete"|"progressing"}

Scenarios (--scenario): `flag` (default) — the flag `new-checkout` is on and breaks
/health; `deploy` — release v2 is bad; after a rollback the rollout needs two more health
checks (answered 503 "rollout in progress") before /health is healthy.

A POST carrying an Idempotency-Key that was already seen is answered with the first
response and changes nothing, as real providers do.

Usage: server.py [--port N] [--scenario flag|deploy]
       (port 0 picks a free port; the chosen port is printed first)
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

flags = {"new-checkout": True}
deployment = {"name": "checkout", "release": "v2", "previous": "v1", "bad": {"v2"}, "progressing": 0}
messages = []
requests_seen = []
replies_by_key = {}
lock = threading.RLock()  # reentrant: replies may be sent while it is held


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):  # keep the demo output readable
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self):
        if self.path == "/requests":  # the inspection endpoint does not count itself
            return
        with lock:
            requests_seen.append({
                "method": self.command,
                "path": self.path,
                "idempotency_key": self.headers.get("Idempotency-Key"),
            })

    def do_GET(self):
        self.record()
        if self.path == "/health":
            with lock:
                broken = flags["new-checkout"]
                bad_release = deployment["release"] in deployment["bad"]
                progressing = deployment["progressing"] > 0
                if progressing:
                    deployment["progressing"] -= 1
            if broken:
                self.reply(500, {"status": "error", "error": "checkout: NullPointerException in NewCheckoutFlow"})
            elif bad_release:
                self.reply(500, {"status": "error", "error": "checkout v2: 5xx on POST /orders"})
            elif progressing:
                self.reply(503, {"status": "rollout in progress"})
            else:
                self.reply(200, {"status": "ok"})
        elif self.path.startswith("/slow"):
            ms = int(self.path.partition("ms=")[2] or 0)
            time.sleep(ms / 1000)  # outside the lock: other requests go on meanwhile
            self.reply(200, {"slept_ms": ms})
        elif self.path.startswith("/deployments/"):
            with lock:
                self.reply(200, {"name": deployment["name"], "release": deployment["release"],
                                 "rollout": "progressing" if deployment["progressing"] else "complete"})
        elif self.path.startswith("/flags/"):
            name = self.path[len("/flags/"):]
            with lock:
                if name not in flags:
                    return self.reply(404, {"error": f"no flag {name}"})
                self.reply(200, {"name": name, "enabled": flags[name]})
        elif self.path == "/chat":
            with lock:
                self.reply(200, {"messages": list(messages)})
        elif self.path == "/requests":
            with lock:
                self.reply(200, {"requests": list(requests_seen)})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        self.record()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        key = self.headers.get("Idempotency-Key")
        if key:
            with lock:
                seen = replies_by_key.get((key, self.path))
            if seen:
                return self.reply(*seen)
            original = self.reply

            def remember(code, reply_body):
                with lock:
                    replies_by_key[(key, self.path)] = (code, reply_body)
                original(code, reply_body)

            self.reply = remember
        if self.path.startswith("/flags/") and self.path.endswith("/disable"):
            name = self.path[len("/flags/"):-len("/disable")]
            with lock:
                if name not in flags:
                    return self.reply(404, {"error": f"no flag {name}"})
                previous = flags[name]
                flags[name] = False
            self.reply(200, {"name": name, "previous": previous, "enabled": False})
        elif self.path == "/chat":
            with lock:
                messages.append(body)
            self.reply(200, {"ok": True})
        elif self.path.startswith("/deployments/") and self.path.endswith("/rollback"):
            with lock:
                previous = deployment["release"]
                deployment["release"], deployment["previous"] = deployment["previous"], previous
                deployment["progressing"] = 2
                self.reply(200, {"name": deployment["name"], "from": previous, "to": deployment["release"]})
        else:
            self.reply(404, {"error": "not found"})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client killed mid-request (the crash tests do it on purpose) is not news.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", choices=["flag", "deploy"], default="flag")
    args = parser.parse_args()
    if args.scenario == "deploy":
        flags["new-checkout"] = False
    else:
        deployment["bad"] = set()
    server = Server(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
