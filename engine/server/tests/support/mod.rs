//! Shared by the socket-level tests: a service over a real store and sandbox, served by
//! `medic_server::serve` on a free 127.0.0.1 port, and a raw HTTP/1.1 client that can
//! send exactly the bytes a careless or hostile sender would.

use medic_server::{LoadedWorkflow, ServeConfig, Service};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TOKEN: &str = "t0ken";

pub fn payload(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../intake/tests/payloads/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn component(name: &str) -> String {
    medic_test_programs::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no test component {name}"))
        .1
        .to_string()
}

pub fn workflow(yaml: &str) -> LoadedWorkflow {
    let doc = medic_model::parse_workflow("wf.yaml", yaml).unwrap();
    let components: BTreeMap<String, String> = doc
        .workflow
        .steps
        .iter()
        // A gate step runs no component.
        .filter(|s| !s.uses.is_empty())
        .map(|s| (s.id.clone(), component(&s.uses)))
        .collect();
    LoadedWorkflow {
        workflow: doc.workflow,
        file: "wf.yaml".into(),
        components,
    }
}

/// One `echo` step for any alert.
pub const ECHO: &str = "apiVersion: medic/v1\nkind: Workflow\nname: on-call\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: { annotate: '{{ incident.title }}' }\n";

/// A running `medic serve` (in this process): its address, and how to stop it.
pub struct Server {
    pub addr: SocketAddr,
    pub svc: Arc<Service>,
    /// The service's store.
    pub store: Arc<medic_store::SledStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub stopped: tokio::task::JoinHandle<std::io::Result<medic_server::Stopped>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Serves with `extra_config` after the token line, the store in a fresh temp dir.
    pub async fn start(extra_config: &str, workflows: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server::start_in(&dir.path().join("store"), extra_config, workflows).await;
        s._dir = Some(dir);
        s
    }

    /// Serves with the store at `store`.
    pub async fn start_in(store: &Path, extra_config: &str, workflows: &[&str]) -> Server {
        let store = Arc::new(medic_store::SledStore::open(store).unwrap());
        let sandbox =
            Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
        let config = ServeConfig::parse(&format!(
            "tokens = [\"{TOKEN}\"]\nconcurrency = 2\n{extra_config}"
        ))
        .unwrap();
        let wfs = workflows.iter().map(|y| workflow(y)).collect();
        let svc = Service::new(store.clone(), sandbox, config, wfs).unwrap();
        tokio::spawn(medic_server::process(svc.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = medic_server::router(svc.clone());
        let stopped = tokio::spawn(medic_server::serve(svc.clone(), app, listener, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            svc,
            store,
            stop: Some(tx),
            stopped,
            _dir: None,
        }
    }

    /// Starts the shutdown (as SIGTERM does).
    pub fn signal_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Sends one request with `Connection: close` and reads the whole answer.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes, Duration::from_secs(20))
            .await
            .expect("an answer")
    }

    /// Authenticated JSON `GET`, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let r = self
            .request(
                "GET",
                path,
                &[("authorization", &format!("Bearer {TOKEN}"))],
                b"",
            )
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    }

    /// Writes `bytes` on a new connection and reads until the server closes it (or
    /// `within` passes: `None`).
    pub async fn raw(&self, bytes: &[u8], within: Duration) -> Option<Response> {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        read_response(&mut stream, within).await
    }

    /// A connection with `bytes` sent and left open.
    pub async fn open(&self, bytes: &[u8]) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        stream
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal_stop();
        self.stopped.abort();
    }
}

/// Reads until EOF (bounded by `within`) and parses the answer; `None` on timeout.
pub async fn read_response(stream: &mut TcpStream, within: Duration) -> Option<Response> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    read.ok()?;
    Some(Response::parse(&buf))
}

/// An HTTP answer as read off the socket; status 0 when the server closed without one.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    fn parse(bytes: &[u8]) -> Response {
        let text = String::from_utf8_lossy(bytes);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return Response {
                status: 0,
                headers: Vec::new(),
                body: text.into_owned(),
            };
        };
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Response {
            status,
            headers,
            body: body.to_string(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The `error` of a JSON error answer, checking the documented shape.
    pub fn error(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{} {:?}",
            self.status,
            self.body
        );
        let v = self.json();
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{v}");
        v["error"].as_str().expect("error is a string").to_string()
    }
}

/// Polls `f` until it holds (bounded).
pub async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// HMAC-SHA256, as PagerDuty signs (hex), computed independently of medic's verifier.
pub fn pagerduty_sign(secret: &str, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut key = secret.as_bytes().to_vec();
    if key.len() > 64 {
        key = Sha256::digest(&key).to_vec();
    }
    key.resize(64, 0);
    let ipad: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::digest([ipad.as_slice(), body].concat());
    hex::encode(Sha256::digest([opad.as_slice(), inner.as_slice()].concat()))
}

/// An Alertmanager v4 notification of one group, an alert per name (`alertname`), all
/// `status` (`firing`, or `resolved` with an end time).
pub fn group(names: &[String], status: &str) -> Vec<u8> {
    let ends = if status == "resolved" {
        "2026-11-22T03:30:00Z"
    } else {
        "0001-01-01T00:00:00Z"
    };
    let alerts: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({"status": status, "labels": {"alertname": n},
                   "annotations": {}, "startsAt": "2026-11-22T03:00:00Z", "endsAt": ends})
        })
        .collect();
    json!({"version": "4", "groupKey": "{}:{}", "status": status, "receiver": "medic",
           "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
           "externalURL": "http://127.0.0.1:9093", "alerts": alerts})
    .to_string()
    .into_bytes()
}

/// The value of the metric line `name <value>` in Prometheus text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}
