//! A real Matrix homeserver (Synapse, installed from PyPI into a cached virtualenv by
//! `scripts/deps.d/40-synapse`), started by the test on a free 127.0.0.1 port with a
//! throwaway config and SQLite database, so the chat-matrix step is tested against the
//! client-server API as a homeserver implements it. Stopped on drop, and the shared instance
//! when the test process exits.
//!
//! Users are registered with the shared-secret admin API and log in with a password, as an
//! operator would set up a bot; the tests read rooms back as a second (human) user.

use crate::support::free_port;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The homeserver's name: user ids are `@name:medic.test`. Never resolved: no federation.
pub const SERVER_NAME: &str = "medic.test";

/// A cold start (creating the SQLite schema) takes ~6 s on an idle 2-core machine but has
/// taken over 100 s while other tests and builds ran: be generous.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs Synapse (`"$@"`) under `sh` so that it dies with the test process: the guard waits for
/// end of file on its stdin, a pipe only the test holds, then kills Synapse. The pipe closes
/// when the `Synapse` is dropped and, for the shared instance (a static, never dropped), when
/// the test process exits, however it exits. `sh` itself exits when Synapse does, so an early
/// death is seen at once. Async lists get /dev/null as stdin, hence the copy on fd 3.
const GUARD: &str = r#"exec 3<&0
"$@" 3<&- &
pid=$!
(read -r _ <&3; kill -9 "$pid" 2>/dev/null) &
wait "$pid""#;

/// Where `scripts/deps.d/40-synapse` puts the virtualenv.
fn venv() -> PathBuf {
    let deps = match std::env::var_os("MEDIC_DEPS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set (or set MEDIC_DEPS_DIR)");
            Path::new(&home).join(".cache/medic-test-deps")
        }
    };
    deps.join("synapse-venv")
}

/// The venv's python. A missing install fails the test loudly: a skipped test would let a
/// fresh machine pass without ever talking to a real homeserver.
fn python() -> PathBuf {
    let python = venv().join("bin/python");
    assert!(
        python.is_file(),
        "Synapse is not installed ({} is missing): run scripts/install-test-deps \
         (scripts/deps.d/40-synapse installs matrix-synapse into that virtualenv)",
        python.display()
    );
    python
}

/// A registered user and an access token from a password login.
#[derive(Clone, Debug)]
pub struct User {
    pub user_id: String,
    pub token: String,
}

/// One Synapse process and its temp dir.
pub struct Synapse {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    shared_secret: String,
}

impl Synapse {
    /// Writes a config, starts Synapse and waits until `/_matrix/client/versions` answers.
    /// The port is found by binding port 0 and releasing it, so another process can take it
    /// in between: a start that dies with "Address already in use" is retried on a new port.
    pub fn start() -> Synapse {
        let python = python();
        let dir = tempfile::tempdir().unwrap();
        let shared_secret = hex(&random_bytes(24));
        std::fs::write(
            dir.path().join("signing.key"),
            // Synapse's key file format: algorithm, key id, unpadded base64 of the seed.
            format!("ed25519 a_test {}\n", base64_unpadded(&random_bytes(32))),
        )
        .unwrap();
        for _ in 0..3 {
            let port = free_port();
            let config = write_config(dir.path(), port, &shared_secret);
            let log = std::fs::File::create(dir.path().join("synapse.log")).unwrap();
            let started = Instant::now();
            let child = Command::new("sh")
                .args(["-c", GUARD, "synapse-guard"])
                .arg(&python)
                .args(["-m", "synapse.app.homeserver", "--config-path"])
                .arg(&config)
                .current_dir(dir.path())
                .stdin(Stdio::piped())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawning {}: {e}", python.display()));
            let mut child = child;
            let deadline = started + READY_TIMEOUT;
            let ready = loop {
                if let Ok(Some(status)) = child.try_wait() {
                    break Err(format!("exited ({status}) before it was ready"));
                }
                if let Ok((200, _)) = request(port, "GET", "/_matrix/client/versions", None, None) {
                    break Ok(());
                }
                if Instant::now() >= deadline {
                    break Err(format!("not ready within {READY_TIMEOUT:?}"));
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            if ready.is_ok() {
                eprintln!("synapse ready on port {port} in {:?}", started.elapsed());
                return Synapse {
                    port,
                    child,
                    dir,
                    shared_secret,
                };
            }
            drop(child.stdin.take());
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("synapse.log")).unwrap_or_default();
            if log.contains("Address already in use") {
                continue;
            }
            let why = ready.unwrap_err();
            panic!("synapse {why}\n--- synapse output ---\n{}", tail(&log));
        }
        panic!("synapse: no free port after 3 attempts");
    }

    /// One homeserver for the whole test process, started on first use: a cold start costs
    /// seconds of CPU, so tests share it (each with its own users and rooms). It stops when the
    /// test process exits (see [`GUARD`]).
    pub fn shared() -> &'static Synapse {
        static SHARED: OnceLock<Synapse> = OnceLock::new();
        SHARED.get_or_init(Synapse::start)
    }

    /// Base URL of the client-server API, for the step's `homeserver` param.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Registers `name` (not an admin) with the shared-secret admin API, then logs in with
    /// its password.
    pub fn register(&self, name: &str) -> User {
        let (status, nonce) = self
            .request("GET", "/_synapse/admin/v1/register", None, None)
            .unwrap();
        assert_eq!(status, 200, "nonce: {nonce}");
        let nonce = nonce["nonce"].as_str().unwrap();
        let password = format!("pw-{}", hex(&random_bytes(8)));
        let mac = hmac_sha1(&self.shared_secret, &[nonce, name, &password, "notadmin"]);
        let body = json!({"nonce": nonce, "username": name, "password": password,
                          "admin": false, "mac": mac});
        let (status, reg) = self
            .request("POST", "/_synapse/admin/v1/register", None, Some(&body))
            .unwrap();
        assert_eq!(status, 200, "registering {name}: {reg}");
        let login = json!({"type": "m.login.password",
                           "identifier": {"type": "m.id.user", "user": name},
                           "password": password});
        let (status, session) = self
            .request("POST", "/_matrix/client/v3/login", None, Some(&login))
            .unwrap();
        assert_eq!(status, 200, "login {name}: {session}");
        User {
            user_id: session["user_id"].as_str().unwrap().to_string(),
            token: session["access_token"].as_str().unwrap().to_string(),
        }
    }

    /// A request that must succeed: its JSON answer, or a panic naming the call and answer.
    pub fn ok(&self, method: &str, path: &str, user: &User, body: Option<&Value>) -> Value {
        let (status, answer) = self
            .request(method, path, Some(&user.token), body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            (200..300).contains(&status),
            "{method} {path} as {}: {status} {answer}",
            user.user_id
        );
        answer
    }

    /// The `m.room.message` events of a room, oldest first, as `user` sees them.
    pub fn messages(&self, user: &User, room_id: &str) -> Vec<Value> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=1000",
            encode(room_id)
        );
        let page = self.ok("GET", &path, user, None);
        let mut events: Vec<Value> = page["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "m.room.message")
            .cloned()
            .collect();
        events.reverse();
        events
    }

    /// The content of a state event, as `user` sees it.
    pub fn state(&self, user: &User, room_id: &str, event_type: &str, state_key: &str) -> Value {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/{event_type}/{}",
            encode(room_id),
            encode(state_key)
        );
        self.ok("GET", &path, user, None)
    }

    pub fn join(&self, user: &User, room: &str) -> String {
        let path = format!("/_matrix/client/v3/join/{}", encode(room));
        let answer = self.ok("POST", &path, user, Some(&json!({})));
        answer["room_id"].as_str().unwrap().to_string()
    }

    /// A room created by `user` (public to the homeserver's users, so others can join).
    pub fn create_room(&self, user: &User, name: &str) -> String {
        let body = json!({"name": name, "preset": "public_chat"});
        let answer = self.ok("POST", "/_matrix/client/v3/createRoom", user, Some(&body));
        answer["room_id"].as_str().unwrap().to_string()
    }

    pub fn joined_rooms(&self, user: &User) -> Vec<String> {
        let answer = self.ok("GET", "/_matrix/client/v3/joined_rooms", user, None);
        let rooms = answer["joined_rooms"].as_array().unwrap();
        rooms
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    }

    /// One request: status and JSON answer (see [`request`]).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Value)> {
        request(self.port, method, path, token, body)
    }

    /// The last 40 lines of Synapse's output, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("synapse.log")).unwrap_or_default();
        format!("--- synapse output ---\n{}", tail(&log))
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// One HTTP/1.0 request (so the answer is never chunked and ends at close): status and JSON
/// body (`null` when the body is not JSON). Errors are returned, not panicked on, because the
/// readiness check polls a server that may not be listening yet.
fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let (status, answer) = raw_request(port, method, path, token, body.as_bytes())?;
    Ok((
        status,
        serde_json::from_slice(&answer).unwrap_or(Value::Null),
    ))
}

/// One request with a JSON (or empty) body: status and raw answer body.
pub fn raw_request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    crate::support::http_request(&format!("127.0.0.1:{port}"), method, path, &headers, body)
}

impl Drop for Synapse {
    /// Closing the guard's stdin kills Synapse; the guard then exits.
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The homeserver config, written as JSON (valid YAML; `json!` quotes every value).
fn write_config(dir: &Path, port: u16, shared_secret: &str) -> PathBuf {
    // Tests send bursts that Synapse's defaults (e.g. 0.2 messages/s, 0.003 logins/s) would
    // throttle.
    let fast = json!({"per_second": 1000, "burst_count": 1000});
    let config = json!({
        "server_name": SERVER_NAME,
        "pid_file": dir.join("synapse.pid"),
        "signing_key_path": dir.join("signing.key"),
        "media_store_path": dir.join("media"),
        "report_stats": false,
        // Client API only on loopback: no federation listener, no key servers to contact.
        "listeners": [{
            "port": port, "type": "http", "tls": false, "bind_addresses": ["127.0.0.1"],
            "resources": [{"names": ["client"], "compress": false}],
        }],
        "trusted_key_servers": [],
        "federation_domain_whitelist": [],
        "database": {"name": "sqlite3", "args": {"database": dir.join("homeserver.db")}},
        "registration_shared_secret": shared_secret,
        "macaroon_secret_key": hex(&random_bytes(24)),
        "form_secret": hex(&random_bytes(24)),
        // Less work at startup and per request.
        "presence": {"enabled": false},
        "enable_metrics": false,
        "url_preview_enabled": false,
        "rc_message": fast,
        "rc_registration": fast,
        "rc_login": {"address": fast, "account": fast, "failed_attempts": fast},
        "rc_joins": {"local": fast},
        "rc_joins_per_room": fast,
        "rc_invites": {"per_room": fast, "per_user": fast, "per_issuer": fast},
        "rc_room_creation": fast,
    });
    let path = dir.join("homeserver.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("reading /dev/urandom");
    buf
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// HMAC-SHA1 of the NUL-joined `parts`, hex: the shared-secret registration MAC. Computed by
/// the venv's Python (the engine workspace has no SHA-1 crate, and adding one for a test
/// harness is not worth it); the parts go through stdin because argv cannot carry NULs.
fn hmac_sha1(key: &str, parts: &[&str]) -> String {
    let script = "import hmac, hashlib, sys\n\
                  key, msg = sys.stdin.buffer.read().split(b'\\n', 1)\n\
                  print(hmac.new(key, msg, hashlib.sha1).hexdigest())";
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!("{key}\n{}", parts.join("\0"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "computing the registration MAC");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Percent-encodes a path segment (room ids and aliases hold `!`, `#` and `:`).
pub fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
