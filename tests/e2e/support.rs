//! Shared test plumbing: temp data dirs, the `medic` binary, components, the example's
//! stand-in service.

use medic_core::{Clock, Engine, ManualClock, NewRun, SecretSource, StaticSecrets, SystemClock};
use medic_sandbox::{Sandbox, SandboxConfig};
use medic_store::SledStore;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn medic() -> Command {
    Command::new(env!("CARGO_BIN_EXE_medic"))
}

/// A steps directory holding every test component as `<name>.wasm`.
pub fn steps_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("medic-e2e-steps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, path) in medic_test_programs::ALL {
            std::fs::copy(path, dir.join(format!("{name}.wasm"))).unwrap();
        }
        dir
    })
}

pub fn component(name: &str) -> String {
    medic_test_programs::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no test component {name}"))
        .1
        .to_string()
}

/// One sandbox for the whole test binary, as one engine process would have.
pub fn sandbox() -> Arc<Sandbox> {
    static SB: OnceLock<Arc<Sandbox>> = OnceLock::new();
    SB.get_or_init(|| {
        let cache = std::env::temp_dir().join("medic-e2e-cache");
        Arc::new(
            Sandbox::new(SandboxConfig {
                cache_dir: Some(cache),
                ..SandboxConfig::default()
            })
            .unwrap(),
        )
    })
    .clone()
}

pub struct TestEngine {
    pub engine: Engine,
    pub store: Arc<SledStore>,
    pub _dir: tempfile::TempDir,
}

pub fn engine_with(secrets: &[(&str, &str)], clock: Option<Arc<ManualClock>>) -> TestEngine {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path().join("store")).unwrap());
    let secrets: Arc<dyn SecretSource> = Arc::new(StaticSecrets(
        secrets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ));
    let clock: Arc<dyn Clock> = match clock {
        Some(c) => c,
        None => Arc::new(SystemClock),
    };
    let engine = Engine::new(store.clone(), sandbox(), clock, secrets);
    TestEngine {
        engine,
        store,
        _dir: dir,
    }
}

pub fn incident() -> medic_model::Incident {
    medic_intake::simple::parse(
        br#"{"title": "CheckoutErrorRate", "severity": "critical",
            "labels": {"alertname": "CheckoutErrorRate", "service": "checkout"},
            "annotations": {"summary": "5xx above 5%"}}"#,
    )
    .unwrap()[0]
        .to_incident("2026-11-22T03:00:00Z")
}

/// A run of `yaml` whose `uses:` names test components.
pub fn new_run(yaml: &str) -> NewRun {
    let doc = medic_model::parse_workflow("test.yaml", yaml)
        .unwrap_or_else(|d| panic!("test workflow invalid: {d:?}"));
    let components: BTreeMap<String, String> = doc
        .workflow
        .steps
        .iter()
        .map(|s| (s.id.clone(), component(&s.uses)))
        .collect();
    NewRun {
        workflow: doc.workflow,
        workflow_file: "test.yaml".into(),
        incident: incident(),
        components,
        drill: false,
    }
}

/// The example's stand-in service (checkout health, flags, chat), on a free port.
pub struct StandIn {
    child: Child,
    pub port: u16,
}

impl StandIn {
    pub fn start() -> StandIn {
        Self::scenario("flag")
    }

    /// The stand-in in a given scenario (`flag`, `deploy`): see server.py.
    pub fn scenario(scenario: &str) -> StandIn {
        let mut child = Command::new("python3")
            .arg(repo().join("examples/checkout-flag/server.py"))
            .args(["--port", "0", "--scenario", scenario])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the example's stand-in service");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("server prints its port");
        StandIn { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GET a JSON document from the stand-in.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let addr = format!("127.0.0.1:{}", self.port);
        let (_, body) = http_request(&addr, "GET", path, &[], &[]).unwrap();
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("GET {path}: {e}: {}", String::from_utf8_lossy(&body)))
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.0 request over std to `addr` (`host:port`): (status, body). HTTP/1.0, so the
/// answer is never chunked and ends at close. I/O errors are returned, not panicked on,
/// because callers poll daemons that may not be listening yet. The one raw client the
/// harnesses share (medic serve, Prometheus, Unleash, Synapse, the stand-ins).
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, answer) = match split {
        Some(i) => (&raw[..i], raw[i + 4..].to_vec()),
        None => (&raw[..], Vec::new()),
    };
    let status = String::from_utf8_lossy(head)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, answer))
}
