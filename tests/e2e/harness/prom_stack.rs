//! A real Prometheus and a real Alertmanager (the Debian packages, installed by
//! `scripts/install-test-deps`), started by the test on free 127.0.0.1 ports, so `medic serve`
//! can be tested against the notifications monitoring actually sends rather than hand-made
//! JSON. The harness is proven against a plain recording receiver by the `prom_stack` tests.

use crate::support::{free_port, http_get, poll_until};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The alerting rule the tests load: checkout's 5xx ratio above 5 %, critical, at once.
pub const CHECKOUT_RULES: &str = r#"groups:
  - name: checkout
    rules:
      - alert: CheckoutErrorRate
        expr: checkout_errors_ratio > 0.05
        for: 0s
        labels:
          severity: critical
          service: checkout
        annotations:
          summary: "checkout 5xx ratio is {{ $value }}"
"#;

/// How long a daemon may take to answer `/-/ready`: generous, the machine is shared.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A tiny HTTP server on 127.0.0.1: one thread accepting, one per connection. Stopped on
/// drop, so a failing test does not leave threads serving stale state to the next one.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
}

/// One request as the server read it; header names are lower-cased.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Answers a request with (status, content type, body).
type Handler = dyn Fn(&Request) -> (u16, &'static str, String) + Send + Sync;

impl Server {
    fn start(
        handle: impl Fn(&Request) -> (u16, &'static str, String) + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let handle: Arc<Handler> = Arc::new(handle);
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let handle = handle.clone();
                std::thread::spawn(move || serve_connection(conn, &*handle));
            }
        });
        Server { port, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // accept() blocks; one connection wakes the loop up so it sees the flag and exits.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves requests on one connection until the client closes it. Go's HTTP client (both
/// daemons) keeps connections alive, so this honours keep-alive rather than closing.
fn serve_connection(conn: TcpStream, handle: &Handler) -> Option<()> {
    // A stuck peer must not pin the thread forever.
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut out = conn.try_clone().ok()?;
    let mut reader = BufReader::new(conn);
    while let Some(req) = read_request(&mut reader) {
        let (status, ctype, body) = handle(&req);
        let reason = if status < 400 { "OK" } else { "Error" };
        let len = body.len();
        let head = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n");
        out.write_all(format!("{head}Content-Length: {len}\r\n\r\n{body}").as_bytes())
            .ok()?;
    }
    None
}

/// Reads one HTTP/1.1 request with a Content-Length body (what Go's client sends for a
/// buffered body); `None` at end of stream or on anything unreadable.
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        // End of stream inside the head is a broken request, not an empty header line.
        (reader.read_line(&mut h).ok()? > 0).then_some(())?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let len = headers.iter().find(|(n, _)| n == "content-length");
    let len = len.and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A scrape target the test controls: serves GET /metrics with one gauge.
pub struct MetricTarget {
    server: Server,
    value: Arc<AtomicU64>,
}

impl MetricTarget {
    pub fn start(metric: &str, value: f64) -> MetricTarget {
        let value = Arc::new(AtomicU64::new(value.to_bits()));
        let current = value.clone();
        let metric = metric.to_string();
        let server = Server::start(move |req| {
            if req.method != "GET" || req.path.split('?').next() != Some("/metrics") {
                return (404, "text/plain", "not found\n".into());
            }
            // Rust's `inf`/`NaN` spellings are ones Prometheus's float parser accepts.
            let v = f64::from_bits(current.load(Ordering::SeqCst));
            let body = format!("# TYPE {metric} gauge\n{metric} {v}\n");
            (200, "text/plain; version=0.0.4", body)
        });
        MetricTarget { server, value }
    }

    pub fn set(&self, value: f64) {
        self.value.store(value.to_bits(), Ordering::SeqCst);
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }
}

/// Records every request (Alertmanager's webhook POSTs) and answers 200.
pub struct WebhookReceiver {
    server: Server,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl WebhookReceiver {
    pub fn start() -> WebhookReceiver {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let server = Server::start(move |req| {
            record.lock().unwrap().push(req.clone());
            (200, "text/plain", "ok\n".into())
        });
        WebhookReceiver { server, seen }
    }

    /// The URL of `path` on this receiver, for `StackConfig::webhook_url`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.server.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// The first recorded request matching `pred`, waiting up to `timeout` for it.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Request) -> bool) -> Option<Request> {
        poll_until(timeout, || self.requests().into_iter().find(|r| pred(r)))
    }
}

pub struct StackConfig<'a> {
    /// (job name, host:port, metrics path) for each scrape job.
    pub scrape_targets: Vec<(&'a str, String, &'a str)>,
    /// A Prometheus rule-file body (`groups: ...`).
    pub rules: &'a str,
    /// Where Alertmanager posts its webhook notifications (`send_resolved: true`).
    pub webhook_url: &'a str,
    /// Sent as `Authorization: Bearer <token>` on every notification.
    pub webhook_bearer: Option<&'a str>,
}

/// Real Prometheus + Alertmanager on free 127.0.0.1 ports, in a temp dir; killed on drop.
pub struct PromStack {
    pub prometheus_url: String,
    /// The first Alertmanager; [`PromStack::start_cluster`] starts more.
    pub alertmanager_url: String,
    prometheus: Daemon,
    alertmanagers: Vec<Daemon>,
    _dir: tempfile::TempDir,
}

/// Log names of Alertmanager replicas: the field runs clusters of two or three.
const AM_NAMES: [&str; 3] = ["alertmanager", "alertmanager-2", "alertmanager-3"];

/// The receiver name in the generated Alertmanager config (shows up in payloads' `receiver`).
pub const RECEIVER: &str = "medic";

/// Writes a config file as JSON: JSON is valid YAML, and building it with `json!` quotes
/// every caller-supplied string (URLs, tokens, paths) correctly.
fn write_config(dir: &Path, name: &str, config: &serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(config).unwrap()).unwrap();
    path
}

impl PromStack {
    /// Starts Alertmanager, then Prometheus pointed at it, and waits until both report ready.
    /// Panics (never skips) if either binary is missing.
    pub fn start(cfg: StackConfig) -> PromStack {
        Self::start_cluster(cfg, 1)
    }

    /// As [`PromStack::start`] with `replicas` (1 to 3) Alertmanagers gossiping in one
    /// cluster (`--cluster.listen-address`, `--cluster.peer`, on free 127.0.0.1 ports),
    /// each receiving Prometheus's alerts and each notifying, as an HA setup runs. Their
    /// `--cluster.peer-timeout` is short, so every replica sends before it hears that
    /// another one did: the receiver gets the duplicates Alertmanager's HA mode allows.
    pub fn start_cluster(cfg: StackConfig, replicas: usize) -> PromStack {
        let prom_bin = find_bin("prometheus");
        let am_bin = find_bin("prometheus-alertmanager");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();

        let mut webhook = json!({"url": cfg.webhook_url, "send_resolved": true});
        if let Some(token) = cfg.webhook_bearer {
            webhook["http_config"] =
                json!({"authorization": {"type": "Bearer", "credentials": token}});
        }
        // group_wait/group_interval of 1s make a notification follow its alert within about a
        // second (Alertmanager accepts any positive duration); repeat_interval is long so a
        // test sees one firing notification, not a stream of repeats. resolve_timeout only
        // matters for alerts without endsAt, which Prometheus always sets.
        let am = json!({
            "global": {"resolve_timeout": "10s"},
            "route": {
                "receiver": RECEIVER, "group_by": ["alertname"],
                "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h",
            },
            "receivers": [{"name": RECEIVER, "webhook_configs": [webhook]}],
        });
        let am_config = write_config(d, "alertmanager.yml", &am);
        let gossip: Vec<u16> = (0..replicas).map(|_| free_port()).collect();
        let alertmanagers: Vec<Daemon> = (0..replicas)
            .map(|i| {
                let name = AM_NAMES[i];
                let mut cluster: Vec<String> = match replicas {
                    // Empty disables clustering; otherwise gossip binds 0.0.0.0:9094.
                    1 => vec!["--cluster.listen-address=".into()],
                    _ => vec![
                        format!("--cluster.listen-address=127.0.0.1:{}", gossip[i]),
                        "--cluster.peer-timeout=10ms".into(),
                    ],
                };
                let peers = gossip.iter().enumerate().filter(|(j, _)| *j != i);
                cluster.extend(peers.map(|(_, p)| format!("--cluster.peer=127.0.0.1:{p}")));
                let data = d.join(format!("{name}-data"));
                Daemon::start(name, &am_bin, d, |port| {
                    let mut args = vec![
                        format!("--config.file={}", am_config.display()),
                        format!("--storage.path={}", data.display()),
                        format!("--web.listen-address=127.0.0.1:{port}"),
                    ];
                    args.extend(cluster.iter().cloned());
                    args
                })
            })
            .collect();

        let rules = d.join("rules.yml");
        std::fs::write(&rules, cfg.rules).unwrap();
        let scrape: Vec<_> = (cfg.scrape_targets.iter())
            .map(|(job, target, path)| {
                let targets = json!([{"targets": [target]}]);
                json!({"job_name": job, "metrics_path": path, "static_configs": targets})
            })
            .collect();
        let am_targets: Vec<String> = (alertmanagers.iter())
            .map(|a| format!("127.0.0.1:{}", a.port))
            .collect();
        // scrape_timeout may not exceed scrape_interval (its default is 10s).
        let prom = json!({
            "global": {
                "scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s",
            },
            "rule_files": [rules],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": am_targets}]}]},
            "scrape_configs": scrape,
        });
        let prom_config = write_config(d, "prometheus.yml", &prom);
        let tsdb = d.join("tsdb");
        let prometheus = Daemon::start("prometheus", &prom_bin, d, |port| {
            vec![
                format!("--config.file={}", prom_config.display()),
                format!("--storage.tsdb.path={}", tsdb.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ]
        });

        let stack = PromStack {
            prometheus_url: format!("http://127.0.0.1:{}", prometheus.port),
            alertmanager_url: format!("http://127.0.0.1:{}", alertmanagers[0].port),
            prometheus,
            alertmanagers,
            _dir: dir,
        };
        // Prometheus applies discovered targets (the Alertmanager included) on a fixed 5 s
        // cycle, and drops alerts it evaluates before it knows an Alertmanager, resending
        // only after --rules.alert.resend-delay (1 m). Ready means: it can deliver.
        let known = poll_until(READY_TIMEOUT, || {
            let ams = stack.prometheus_api("/api/v1/alertmanagers");
            let active = ams["data"]["activeAlertmanagers"].as_array()?;
            let known = |port: u16| {
                let am = format!("127.0.0.1:{port}/");
                (active.iter()).any(|a| a["url"].as_str().is_some_and(|u| u.contains(&am)))
            };
            stack
                .alertmanagers
                .iter()
                .all(|a| known(a.port))
                .then_some(())
        });
        let lost = || {
            format!(
                "prometheus never found its alertmanager\n{}",
                stack.diagnostics()
            )
        };
        known.unwrap_or_else(|| panic!("{}", lost()));
        stack
    }

    fn prometheus_api(&self, path: &str) -> serde_json::Value {
        let (status, body) = http_get(&format!("{}{path}", self.prometheus_url))
            .unwrap_or_else(|e| panic!("GET {path} from prometheus: {e}\n{}", self.logs()));
        let what = |e| format!("GET {path} from prometheus: {status}, not JSON ({e}): {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{}\n{}", what(e), self.logs()))
    }

    /// "up", "down" or "unknown" for the first active target of `job`; `None` if there is none.
    pub fn target_health(&self, job: &str) -> Option<String> {
        let targets = self.prometheus_api("/api/v1/targets?state=active");
        targets["data"]["activeTargets"]
            .as_array()?
            .iter()
            .find(|t| t["labels"]["job"] == job)
            .and_then(|t| t["health"].as_str())
            .map(str::to_string)
    }

    /// Prometheus's view of its alerts: the `data.alerts` array of `/api/v1/alerts`.
    pub fn alerts(&self) -> serde_json::Value {
        self.prometheus_api("/api/v1/alerts")["data"]["alerts"].clone()
    }

    /// What both daemons see and said, for panic messages when a wait runs out.
    pub fn diagnostics(&self) -> String {
        let get = |url: String| http_get(&url).map(|r| r.1);
        let targets = get(format!("{}/api/v1/targets", self.prometheus_url));
        let alerts = get(format!("{}/api/v1/alerts", self.prometheus_url));
        let am_alerts = get(format!("{}/api/v2/alerts", self.alertmanager_url));
        format!(
            "prometheus targets: {targets:?}\nprometheus alerts: {alerts:?}\n\
             alertmanager alerts: {am_alerts:?}\n{}",
            self.logs()
        )
    }

    /// Every Alertmanager's URL, the first one first.
    pub fn alertmanager_urls(&self) -> Vec<String> {
        (self.alertmanagers.iter())
            .map(|a| format!("http://127.0.0.1:{}", a.port))
            .collect()
    }

    fn logs(&self) -> String {
        let ams: Vec<String> = self.alertmanagers.iter().map(Daemon::log_tail).collect();
        format!("{}\n{}", self.prometheus.log_tail(), ams.join("\n"))
    }
}

/// One daemon process with its output in `<dir>/<name>.log`; killed on drop.
struct Daemon {
    name: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Daemon {
    /// Starts `bin` on a free port and waits for `/-/ready`. The port is found by binding
    /// port 0 and releasing it, so another process can take it in between: a start that
    /// dies with "address already in use" is retried on a new port.
    fn start(
        name: &'static str,
        bin: &Path,
        dir: &Path,
        args: impl Fn(u16) -> Vec<String>,
    ) -> Daemon {
        for _ in 0..3 {
            let port = free_port();
            let log = dir.join(format!("{name}.log"));
            let out = std::fs::File::create(&log).unwrap();
            let child = Command::new(bin)
                .args(args(port))
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
            let mut daemon = Daemon {
                name,
                child,
                port,
                log,
            };
            let ready = poll_until(READY_TIMEOUT, || {
                if let Ok(Some(status)) = daemon.child.try_wait() {
                    return Some(Err(status));
                }
                match http_get(&format!("http://127.0.0.1:{port}/-/ready")) {
                    Ok((200, _)) => Some(Ok(())),
                    _ => None,
                }
            });
            let why = match ready {
                Some(Ok(())) => return daemon,
                Some(Err(_)) if daemon.log_text().contains("address already in use") => continue,
                Some(Err(status)) => format!("exited ({status}) before it was ready"),
                None => format!("not ready within {READY_TIMEOUT:?}"),
            };
            panic!("{name} {why}\n{}", daemon.log_tail());
        }
        panic!("{name}: no free port after 3 attempts");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 40 lines of output, labelled.
    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        let (name, log) = (self.name, self.log.display());
        format!("--- {name} output ({log}) ---\n{tail}")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on PATH. Missing daemons fail the test loudly: a skipped e2e test would let a
/// fresh machine pass without ever exercising real monitoring.
fn find_bin(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed (not on PATH): run scripts/install-test-deps \
                 (installs the Debian packages prometheus and prometheus-alertmanager)"
            )
        })
}
