#!/usr/bin/env python3
"""A stand-in for the checkout service, its feature-flag service and a chat room.

Started by run.sh and by the end-to-end tests. Standard library only.

  GET  /health                      500 while the flag `new-checkout` is on, else 200 {"status":"ok"}
  GET  /flags/<name>                {"name":..., "enabled": bool}
  POST /flags/<name>/disable        turns the flag off; returns previous and new state
  POST /chat                        records the body as a chat message
  GET  /chat                        the messages so far
  GET  /requests                    every request seen: method, path, idempotency key

Usage: server.py [--port N]   (0 picks a free port; the chosen port is printed first)
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

flags = {"new-checkout": True}
messages = []
requests_seen = []
lock = threading.Lock()


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
            if broken:
                self.reply(500, {"status": "error", "error": "checkout: NullPointerException in NewCheckoutFlow"})
            else:
                self.reply(200, {"status": "ok"})
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
        else:
            self.reply(404, {"error": "not found"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
