#!/usr/bin/env python3
"""The first run of a `medic serve`, read through its API, for the examples' scripts.

  runs.py SERVER HEADER_FILE GATE_STEP

HEADER_FILE holds the `Authorization: Bearer ...` line (kept in a file so the token is not
on any command line). Prints the run's id, its status, `open` or `closed` for the gate
step, then the gate's prompt when it is open. Exits 1 while there is no run yet.
"""
import json
import sys
import urllib.request


def main():
    server, header_file, gate_step = sys.argv[1:4]
    name, _, value = open(header_file).read().strip().partition(": ")

    def get(path):
        req = urllib.request.Request(server + path, headers={name: value})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    runs = get("/api/runs")
    if not runs:
        sys.exit(1)
    run = get(f"/api/runs/{runs[0]['id']}")
    gate = next((s.get("gate") or {} for s in run["steps"] if s["id"] == gate_step), {})
    print(run["id"])
    print(run["status"])
    print("open" if gate.get("open") else "closed")
    if gate.get("open"):
        print(gate.get("prompt", ""))


if __name__ == "__main__":
    main()
