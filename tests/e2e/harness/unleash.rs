//! A real Unleash server on a real, throwaway PostgreSQL cluster, started by the test on free
//! 127.0.0.1 ports, so the `flags-unleash` step is tested against the Admin API it will meet
//! in production rather than a stand-in. Installed by `scripts/deps.d/20-unleash`
//! (Debian's postgresql, unleash-server 7.5.x from npm into a cache dir outside the repo).
//!
//! Both daemons are tied to this process: PostgreSQL runs under a small shell supervisor and
//! Unleash under `tests/unleash/launch.mjs`, and each stops when its stdin closes. So they stop
//! on [`Drop`], and also when the test binary exits without running destructors (a shared
//! instance in a `static`, a panic that aborts, a kill).

use crate::support::{free_port, poll_until};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The install script named in every "missing" message.
const INSTALL: &str = "scripts/deps.d/20-unleash (or scripts/install-test-deps)";

/// Cold start runs Unleash's migrations (about 12 s here); generous, the machine is shared.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The admin token Unleash is started with (`INIT_ADMIN_API_TOKENS`): all projects and
/// environments. Tests grant it to the step as a secret.
pub const ADMIN_TOKEN: &str = "*:*.medic-e2e-unleash-admin-4f1c9a2b7d";

/// Runs PostgreSQL until stdin closes (the test dropped it, or exited), then shuts it down
/// fast and removes the whole temp dir, which belongs to the (possibly unprivileged) user
/// this script runs as: so a shared instance that is never dropped leaves nothing behind.
const PG_SUPERVISOR: &str = r#"
"$PG_BIN/postgres" -D "$PG_DIR/data" -k "$PG_DIR" -h 127.0.0.1 -p "$PG_PORT" -F \
  >>"$PG_DIR/postgres.log" 2>&1 &
pid=$!
cat >/dev/null
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$PG_DIR"
"#;

/// Unleash on PostgreSQL; both stopped on drop (Unleash first, then the database).
pub struct Unleash {
    /// `http://127.0.0.1:<port>`, the base URL the step's `url` param takes.
    pub url: String,
    node: Child,
    log: PathBuf,
    postgres: Postgres,
}

/// A throwaway PostgreSQL cluster under its supervisor; stopped and removed on drop.
struct Postgres {
    supervisor: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop_supervised(&mut self.supervisor);
    }
}

impl Unleash {
    /// Starts PostgreSQL, then Unleash on it, and waits until Unleash reports healthy.
    /// Panics, naming the install script, when something is not installed.
    pub fn start() -> Unleash {
        let started = Instant::now();
        let pg_bin = pg_bin_dir();
        let unleash_dir = unleash_dir();
        let node = find_on_path("node").unwrap_or_else(|| {
            panic!("`node` is not on PATH: Unleash needs Node.js 20; run {INSTALL}")
        });
        let postgres = Postgres::start(&pg_bin);
        eprintln!("postgres ready after {:?}", started.elapsed());

        let log = postgres.dir.path().join("unleash.log");
        let launcher = crate::support::repo().join("tests/unleash/launch.mjs");
        let database = format!("postgres://unleash@127.0.0.1:{}/postgres", postgres.port);
        for _ in 0..3 {
            let port = free_port();
            let out = std::fs::File::create(&log).unwrap();
            let mut child = Command::new(&node)
                .arg(&launcher)
                .env("UNLEASH_DIR", &unleash_dir)
                .env("DATABASE_URL", &database)
                .env("HTTP_PORT", port.to_string())
                .env("INIT_ADMIN_API_TOKENS", ADMIN_TOKEN)
                .stdin(Stdio::piped())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("spawning node {}: {e}", launcher.display()));
            let url = format!("http://127.0.0.1:{port}");
            let ready = poll_until(READY_TIMEOUT, || {
                if let Ok(Some(status)) = child.try_wait() {
                    return Some(Err(status));
                }
                let health = request(&url, "GET", "/health", None, None).ok()?;
                (health.0 == 200).then_some(Ok(()))
            });
            let why = match ready {
                Some(Ok(())) => {
                    eprintln!("unleash ready after {:?}", started.elapsed());
                    return Unleash {
                        url,
                        node: child,
                        log,
                        postgres,
                    };
                }
                // Another process took the port between our probe and the bind.
                Some(Err(_)) if tail(&log).contains("EADDRINUSE") => continue,
                Some(Err(status)) => format!("exited ({status})"),
                None => {
                    let _ = child.kill();
                    format!("not healthy within {READY_TIMEOUT:?}")
                }
            };
            let pg_log = tail(&postgres.dir.path().join("postgres.log"));
            panic!(
                "unleash {why}\n--- unleash output ---\n{}\n--- postgres output ---\n{pg_log}",
                tail(&log)
            );
        }
        panic!("unleash: no free port after 3 attempts");
    }

    /// One Admin API call with the admin token: (status, body).
    pub fn admin(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        request(&self.url, method, path, Some(ADMIN_TOKEN), body)
            .unwrap_or_else(|e| panic!("{method} {path} on unleash: {e}\n{}", self.log_tail()))
    }

    /// Creates a feature flag (type `release`, off in every environment) in `project`.
    pub fn create_feature(&self, project: &str, name: &str) {
        let body = serde_json::json!({"name": name, "type": "release"}).to_string();
        let path = format!("/api/admin/projects/{project}/features");
        let (status, reply) = self.admin("POST", &path, Some(&body));
        assert_eq!(status, 201, "creating feature {name}: {reply}");
    }

    /// Whether `feature` is enabled in `environment`, as Unleash's own Admin API says.
    pub fn enabled(&self, project: &str, feature: &str, environment: &str) -> bool {
        let path = format!("/api/admin/projects/{project}/features/{feature}");
        let (status, body) = self.admin("GET", &path, None);
        assert_eq!(status, 200, "reading feature {feature}: {body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        let envs = doc["environments"].as_array().expect("environments list");
        let env = envs.iter().find(|e| e["name"] == environment);
        let env = env.unwrap_or_else(|| panic!("no environment {environment} in {body}"));
        env["enabled"].as_bool().expect("enabled flag")
    }

    /// Turns `feature` on or off in `environment` directly, to set up a test.
    pub fn set_enabled(&self, project: &str, feature: &str, environment: &str, on: bool) {
        let verb = if on { "on" } else { "off" };
        let path = format!(
            "/api/admin/projects/{project}/features/{feature}/environments/{environment}/{verb}"
        );
        let (status, body) = self.admin("POST", &path, Some(""));
        assert_eq!(status, 200, "turning {feature} {verb}: {body}");
        assert_eq!(self.enabled(project, feature, environment), on);
    }

    /// The last lines both daemons wrote, for panic messages.
    pub fn log_tail(&self) -> String {
        let pg = tail(&self.postgres.dir.path().join("postgres.log"));
        let unleash = tail(&self.log);
        format!("--- unleash output ---\n{unleash}\n--- postgres output ---\n{pg}")
    }
}

impl Drop for Unleash {
    fn drop(&mut self) {
        let _ = self.node.kill();
        let _ = self.node.wait();
        // `postgres` drops after this, once nothing is connected to it any more.
    }
}

/// One request to Unleash (`token` is the raw `Authorization` value): (status, body).
fn request(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let host = url.trim_start_matches("http://");
    let mut headers = Vec::new();
    if let Some(token) = token {
        headers.push(("Authorization", token));
    }
    if body.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let body = body.unwrap_or("").as_bytes();
    let (status, answer) = crate::support::http_request(host, method, path, &headers, body)?;
    Ok((status, String::from_utf8_lossy(&answer).into_owned()))
}

/// Closes the supervisor's stdin so it shuts PostgreSQL down, waiting a while for it.
fn stop_supervised(child: &mut Child) {
    drop(child.stdin.take());
    let stopped = poll_until(Duration::from_secs(10), || child.try_wait().ok().flatten());
    if stopped.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Postgres {
    /// Initialises a cluster in a temp dir and starts PostgreSQL on a free port under the
    /// shell supervisor; returns once it accepts connections.
    fn start(pg_bin: &Path) -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let run_as = unprivileged_user(dir.path());
        let data = dir.path().join("data");
        let initdb = as_user(run_as, &pg_bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "unleash", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .unwrap_or_else(|e| panic!("running initdb: {e}"));
        assert!(
            initdb.status.success(),
            "initdb failed:\n{}\n{}",
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );
        let log = dir.path().join("postgres.log");
        for _ in 0..3 {
            let port = free_port();
            let mut child = as_user(run_as, Path::new("/bin/sh"))
                .args(["-c", PG_SUPERVISOR])
                .env("PG_BIN", pg_bin)
                .env("PG_DIR", dir.path())
                .env("PG_PORT", port.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting postgres: {e}"));
            let ready = poll_until(READY_TIMEOUT, || {
                // PostgreSQL's words when another process took the port first.
                let lost_port = |l: String| l.contains("could not create any TCP/IP sockets");
                if std::fs::read_to_string(&log).is_ok_and(lost_port) {
                    return Some(false);
                }
                let probe = Command::new(pg_bin.join("pg_isready"))
                    .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                    .status();
                probe.is_ok_and(|s| s.success()).then_some(true)
            });
            match ready {
                Some(true) => {
                    return Postgres {
                        supervisor: child,
                        port,
                        dir,
                    };
                }
                Some(false) => {
                    stop_supervised(&mut child);
                    std::fs::write(&log, "").unwrap();
                }
                _ => {
                    stop_supervised(&mut child);
                    panic!("postgres did not start\n{}", tail(&log));
                }
            }
        }
        panic!("postgres: no free port after 3 attempts");
    }
}

/// PostgreSQL refuses to run as root. When we are root, it runs as `nobody`, and `dir`
/// (a fresh temp dir) is handed to that user.
fn unprivileged_user(dir: &Path) -> Option<(u32, u32)> {
    if std::fs::metadata(dir).unwrap().uid() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let ids = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.first() == Some(&"nobody") && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    });
    let (uid, gid) = ids.expect("running as root and there is no `nobody` user to run postgres as");
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
    Some((uid, gid))
}

/// `program`, run as `user` (uid, gid) through util-linux's `setpriv` when one is given.
fn as_user(user: Option<(u32, u32)>, program: &Path) -> Command {
    match user {
        None => Command::new(program),
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
            ])
            .arg(program);
            c
        }
    }
}

/// The newest `/usr/lib/postgresql/<major>/bin` holding initdb, pg_isready and postgres.
fn pg_bin_dir() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            let complete = ["initdb", "postgres", "pg_isready"]
                .iter()
                .all(|b| bin.join(b).is_file());
            complete.then_some((major, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("PostgreSQL server binaries (initdb, postgres) not found under /usr/lib/postgresql/*/bin: run {INSTALL}")
    })
}

/// Where `scripts/deps.d/20-unleash` installed unleash-server.
fn unleash_dir() -> PathBuf {
    let base = std::env::var_os("MEDIC_DEPS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/medic-test-deps")))
        .expect("neither MEDIC_DEPS_DIR nor HOME is set");
    let dir = base.join("unleash");
    let package = dir.join("node_modules/unleash-server/package.json");
    assert!(
        package.is_file(),
        "unleash-server is not installed ({} missing): run {INSTALL}",
        package.display()
    );
    dir
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The last 40 lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
