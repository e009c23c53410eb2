#!/usr/bin/env python3
"""Matrix plumbing for the restore examples: a throwaway Synapse config, the accounts and
rooms an on-call team would have, and a reader for what a room shows. Standard library only.

  matrix.py config DIR PORT SECRET   writes DIR/homeserver.yaml (+ signing key) for a Synapse
                                     on 127.0.0.1:PORT, server name medic.test, SQLite
  matrix.py users URL SECRET         registers @medic (the bot) and @oncall (a human) with the
                                     shared-secret admin API and logs both in; prints
                                     MATRIX_BOT_TOKEN=... and MATRIX_ONCALL_TOKEN=... lines
  matrix.py room URL TOKEN ALIAS BOT creates the room #ALIAS:medic.test as the token's user,
                                     invites BOT; prints MATRIX_ROOM_ID=...
  matrix.py join URL TOKEN ROOM      joins ROOM (id or alias) as the token's user
  matrix.py show URL TOKEN ROOM      prints the room's name, topic and messages, as a client would
  matrix.py rooms URL TOKEN          prints the room ids the token's user is in or invited to
"""
import hashlib
import hmac
import json
import os
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

SERVER_NAME = "medic.test"


def call(url, method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        sys.exit(f"matrix.py: {method} {path.split('?')[0]}: {e.code} {e.read().decode(errors='replace')}")


def enc(s):
    return urllib.parse.quote(s, safe="")


def config(directory, port, secret):
    fast = {"per_second": 1000, "burst_count": 1000}
    seed = secrets.token_bytes(32)
    import base64
    with open(os.path.join(directory, "signing.key"), "w") as f:
        f.write(f"ed25519 a_example {base64.b64encode(seed).decode().rstrip('=')}\n")
    doc = {
        "server_name": SERVER_NAME,
        "pid_file": os.path.join(directory, "synapse.pid"),
        "signing_key_path": os.path.join(directory, "signing.key"),
        "media_store_path": os.path.join(directory, "media"),
        "report_stats": False,
        # Client API on loopback only: no federation listener, no key servers to contact.
        "listeners": [{"port": int(port), "type": "http", "tls": False,
                       "bind_addresses": ["127.0.0.1"],
                       "resources": [{"names": ["client"], "compress": False}]}],
        "trusted_key_servers": [],
        "federation_domain_whitelist": [],
        "database": {"name": "sqlite3", "args": {"database": os.path.join(directory, "homeserver.db")}},
        "registration_shared_secret": secret,
        "macaroon_secret_key": secrets.token_hex(24),
        "form_secret": secrets.token_hex(24),
        "presence": {"enabled": False},
        "enable_metrics": False,
        "url_preview_enabled": False,
        # The example logs in and posts in bursts that Synapse's defaults would throttle.
        "rc_message": fast, "rc_registration": fast,
        "rc_login": {"address": fast, "account": fast, "failed_attempts": fast},
        "rc_joins": {"local": fast}, "rc_room_creation": fast,
        "rc_invites": {"per_room": fast, "per_user": fast, "per_issuer": fast},
    }
    # JSON is valid YAML.
    with open(os.path.join(directory, "homeserver.yaml"), "w") as f:
        json.dump(doc, f, indent=2)


def register(url, secret, name):
    nonce = call(url, "GET", "/_synapse/admin/v1/register")["nonce"]
    password = secrets.token_hex(12)
    msg = "\0".join([nonce, name, password, "notadmin"]).encode()
    mac = hmac.new(secret.encode(), msg, hashlib.sha1).hexdigest()
    call(url, "POST", "/_synapse/admin/v1/register",
         body={"nonce": nonce, "username": name, "password": password, "admin": False, "mac": mac})
    login = call(url, "POST", "/_matrix/client/v3/login", body={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": name},
        "password": password})
    return login["access_token"]


def show(url, token, room):
    if room.startswith("#"):
        room = call(url, "GET", f"/_matrix/client/v3/directory/room/{enc(room)}", token)["room_id"]
    state = call(url, "GET", f"/_matrix/client/v3/rooms/{enc(room)}/state", token)
    name = next((e["content"].get("name") for e in state if e["type"] == "m.room.name"), None)
    topic = next((e["content"].get("topic") for e in state if e["type"] == "m.room.topic"), None)
    page = call(url, "GET", f"/_matrix/client/v3/rooms/{enc(room)}/messages?dir=f&limit=1000", token)
    print(f"room {room}" + (f" \"{name}\"" if name else ""))
    if topic:
        print(f"  topic: {topic}")
    for e in page["chunk"]:
        if e["type"] == "m.room.message":
            print(f"  {e['sender']}: {e['content'].get('body', '')}")


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "config":
        config(*args)
    elif cmd == "users":
        url, secret = args
        print(f"MATRIX_BOT_TOKEN={register(url, secret, 'medic')}")
        print(f"MATRIX_ONCALL_TOKEN={register(url, secret, 'oncall')}")
    elif cmd == "room":
        url, token, alias, bot = args
        room = call(url, "POST", "/_matrix/client/v3/createRoom", token, {
            "name": alias, "room_alias_name": alias, "preset": "private_chat", "invite": [bot]})
        print(f"MATRIX_ROOM_ID={room['room_id']}")
    elif cmd == "join":
        url, token, room = args
        call(url, "POST", f"/_matrix/client/v3/join/{enc(room)}", token, {})
    elif cmd == "show":
        show(*args)
    elif cmd == "rooms":
        url, token = args
        sync = call(url, "GET", "/_matrix/client/v3/sync?timeout=0", token)
        rooms = list(sync.get("rooms", {}).get("join", {})) + list(sync.get("rooms", {}).get("invite", {}))
        print("\n".join(rooms))
    else:
        sys.exit(f"matrix.py: unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
