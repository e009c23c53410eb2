//! Shared test plumbing: the `medic` binary in a data dir, the test components, an
//! in-process engine and its `run` helper, the example's stand-in service, free ports and
//! the one raw HTTP client.

use medic_core::timeline::Timeline;
use medic_core::{
    Clock, Entry, Event, Executor, HostCall, ManualClock, NewRun, RunState, RunStatus,
    SecretSource, StaticSecrets, SystemClock,
};
use medic_sandbox::{Sandbox, SandboxConfig};
use medic_store::SledStore;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The `medic` binary under test.
pub fn medic() -> Command {
    Command::new(env!("CARGO_BIN_EXE_medic"))
}

/// `medic --data <data> --cache <shared cache> --steps <test components>`: the command line
/// every CLI test starts from (add the subcommand and its arguments).
pub fn medic_in(data: &Path) -> Command {
    let mut c = medic();
    c.arg("--data")
        .arg(data)
        .arg("--cache")
        .arg(std::env::temp_dir().join("medic-e2e-cli-cache"))
        .arg("--steps")
        .arg(steps_dir());
    c
}

/// `medic validate <file>` with the test components and its data dir at `data`.
pub fn medic_validate(data: &Path, file: &Path) -> std::process::Output {
    medic()
        .arg("--data")
        .arg(data)
        .arg("--steps")
        .arg(steps_dir())
        .arg("validate")
        .arg(file)
        .output()
        .unwrap()
}

/// A steps directory holding every test component as `<name>.wasm`.
pub fn steps_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Under cargo's directory for test scratch files, not a directory per process in
        // /tmp that nothing removes. Two test runs at once may share it: each file is
        // copied aside and renamed into place, so a reader sees a whole component.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-steps");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, path) in medic_test_programs::ALL {
            let aside = dir.join(format!(".{name}.wasm.{}", std::process::id()));
            std::fs::copy(path, &aside).unwrap();
            std::fs::rename(&aside, dir.join(format!("{name}.wasm"))).unwrap();
        }
        dir
    })
}

/// The path of the test component built from `guests/rust/<name>`.
pub fn component(name: &str) -> String {
    medic_test_programs::path(name)
        .unwrap_or_else(|| panic!("no test component {name}"))
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
    pub engine: Executor,
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
    let engine = Executor::new(store.clone(), sandbox(), clock, secrets);
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

/// A finished in-process run: its status, folded state and journal.
pub struct Ran {
    pub status: RunStatus,
    pub state: RunState,
    pub entries: Vec<Entry>,
}

impl Ran {
    /// The output of step `step`; panics naming the run's reason and timeline when it has none.
    pub fn output(&self, step: &str) -> &serde_json::Value {
        self.state.steps[step].output.as_ref().unwrap_or_else(|| {
            panic!(
                "step {step} has no output: {:?}\n{}",
                self.state.reason,
                self.timeline()
            )
        })
    }

    /// The run's timeline as a human reads it, one line a journal entry.
    pub fn timeline(&self) -> String {
        Timeline::render(&self.entries).join("\n")
    }

    /// Every host call the run's steps made, in journal order.
    pub fn host_calls(&self) -> impl Iterator<Item = &HostCall> {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::HostCall { call, .. } => Some(call),
            _ => None,
        })
    }

    /// (method, url) of every HTTP request the run's steps made.
    pub fn requests(&self) -> Vec<(String, String)> {
        let requests = self.host_calls().filter_map(|c| match c {
            HostCall::HttpRequest { method, url, .. } => Some((method.clone(), url.clone())),
            _ => None,
        });
        requests.collect()
    }

    /// The whole journal as JSON text, to search for leaked secrets.
    pub fn journal(&self) -> String {
        serde_json::to_string(&self.entries).unwrap()
    }
}

/// Creates and drives `new` to the end in a fresh engine with `secrets`: the per-provider
/// tests' one way to run a workflow in-process.
pub async fn run_with(new: NewRun, secrets: &[(&str, &str)]) -> Ran {
    let t = engine_with(secrets, None);
    let run = t.engine.create_run(new).unwrap();
    let status = t.engine.drive(&run).await.unwrap();
    let (state, entries) = RunState::load_with_journal(t.store.as_ref(), &run).unwrap();
    Ran {
        status,
        state,
        entries,
    }
}

/// [`run_with`] of `yaml`, whose `uses:` name test components.
pub async fn run(yaml: &str, secrets: &[(&str, &str)]) -> Ran {
    run_with(new_run(yaml), secrets).await
}

/// Spawns `cmd` (stdout piped), which prints the port it listens on as its first line, as
/// the example's stand-in and the Kubernetes API test server do: (child, port).
pub fn spawn_reporting_port(cmd: &mut Command, what: &str) -> (Child, u16) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what} printed {line:?}, not its port"));
    (child, port)
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
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("examples/checkout-flag/server.py"))
            .args(["--port", "0", "--scenario", scenario]);
        let (child, port) = spawn_reporting_port(&mut cmd, "the example's stand-in service");
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

/// Polls `f` every 100 ms until it returns `Some` or `timeout` passes.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP GET of an `http://host:port/path` URL: (status, body). Errors are returned,
/// not panicked on, because callers poll daemons that may not be listening yet.
pub fn http_get(url: &str) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let (status, body) = http_request(host, "GET", path, &[], &[])?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A port free on 127.0.0.1 at the time of asking, for a daemon the test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
