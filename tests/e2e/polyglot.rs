//! The Python (`json-health`) and JavaScript (`statuspage-update`) steps run through the same
//! engine path as Rust steps: real HTTP to a server this test starts, secrets, notes and
//! state in the journal, and the same grants and limits.
//!
//! The components are built by `scripts/build-polyglot` into `$MEDIC_POLYGLOT_OUT` (default
//! `target/polyglot`); `scripts/test` runs it first. Compiling one takes ~10 s: the shared
//! on-disk cache of `support::sandbox()` makes that once per machine, not once per test.

use crate::support::{Ran, incident, repo, run_with};
use medic_core::timeline::Timeline;
use medic_core::{FailureKind, HostCall, NewRun, RunStatus};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PYTHON: &str = "json-health";
const JS: &str = "statuspage-update";

/// A Python or JS component from the polyglot output directory; fails clearly if not built.
fn component(name: &str) -> PathBuf {
    // As in scripts/build-polyglot: a relative directory is from the repository root.
    let dir = repo().join(
        std::env::var_os("MEDIC_POLYGLOT_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| "target/polyglot".into()),
    );
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the Python and JavaScript steps with scripts/build-polyglot \
         (scripts/test does it first)",
        path.display()
    );
    path
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// A scripted answer: status, extra headers, JSON body, and a delay before answering.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static str,
    delay: Duration,
}

fn reply(status: u16, body: &'static str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body,
        delay: Duration::ZERO,
    }
}

/// A small HTTP/1.1 server on a free 127.0.0.1 port: records every request and answers
/// from a script (the last answer repeats). Stopped on drop.
struct Target {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Target {
    fn start(script: Vec<Reply>) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut script = VecDeque::from(script);
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let answer = if script.len() > 1 {
                    script.pop_front().unwrap()
                } else {
                    script[0].clone()
                };
                // One connection at a time is enough: steps make one request per attempt.
                if let Some(request) = serve(conn, &answer) {
                    seen2.lock().unwrap().push(request);
                }
            }
        });
        Target {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, answer: &Reply) -> Option<Seen> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    std::thread::sleep(answer.delay);
    let mut out = conn;
    let extra: String = answer
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    // A client that gave up (the step timed out) makes this write fail: that is fine.
    let _ = write!(
        out,
        "HTTP/1.1 {} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{}",
        answer.status,
        answer.body.len(),
        answer.body
    );
    Some(Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// What these tests read from a run beyond the shared [`Ran`] helpers.
trait PolyglotRan {
    fn notes(&self) -> Vec<String>;
    fn state_sets(&self) -> Vec<(String, String)>;
    fn failure(&self) -> medic_core::Failure;
    fn timeline_has(&self, text: &str) -> bool;
}

impl PolyglotRan for Ran {
    fn notes(&self) -> Vec<String> {
        self.host_calls()
            .filter_map(|c| match c {
                HostCall::Annotate { message } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    fn state_sets(&self) -> Vec<(String, String)> {
        self.host_calls()
            .filter_map(|c| match c {
                HostCall::StateSet { key, value } => Some((key.clone(), value.clone())),
                _ => None,
            })
            .collect()
    }

    fn failure(&self) -> medic_core::Failure {
        self.state.steps["s"]
            .last_failure
            .clone()
            .expect("the step failed")
    }

    fn timeline_has(&self, text: &str) -> bool {
        Timeline::render(&self.entries)
            .iter()
            .any(|l| l.contains(text))
    }
}

/// Runs a one-step workflow (step id `s`) of `component` with `step` as the rest of the step.
async fn run(component_name: &str, step: &str, secrets: &[(&str, &str)]) -> Ran {
    let yaml = format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: polyglot\nsteps:\n  - id: s\n    phase: verify\n    uses: {component_name}\n{step}"
    );
    let doc = medic_model::parse_workflow("polyglot.yaml", &yaml)
        .unwrap_or_else(|d| panic!("test workflow invalid: {d:?}\n{yaml}"));
    let path = component(component_name).display().to_string();
    let new = NewRun {
        workflow: doc.workflow,
        workflow_file: "polyglot.yaml".into(),
        incident: incident(),
        components: BTreeMap::from([("s".to_string(), path)]),
        drill: false,
    };
    run_with(new, secrets).await
}

/// The journal as text, to prove a secret never reached it.
fn journal_text(ran: &Ran) -> String {
    serde_json::to_string(&ran.entries).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn python_step_polls_a_granted_host_with_its_secret_until_healthy() {
    let target = Target::start(vec![
        reply(200, r#"{"status": "degraded", "version": "1.4.2"}"#),
        reply(200, r#"{"status": "ok", "version": "1.4.1"}"#),
    ]);
    let ran = run(
        PYTHON,
        &format!(
            "    with: {{ url: '{}', token_secret: HEALTH_TOKEN, retry_ms: 100 }}\n    secrets: [HEALTH_TOKEN]\n    allow: [127.0.0.1]\n    retry: {{ attempts: 3, backoff: 10ms }}\n",
            target.url("/healthz")
        ),
        &[("HEALTH_TOKEN", "tok-py-5551234")],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:#?}", ran.timeline());

    // Two attempts: "degraded" asked for another one, "ok" finished the step.
    let seen = target.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for request in &seen {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", "/healthz")
        );
        assert_eq!(request.header("authorization"), "Bearer tok-py-5551234");
    }
    let step = &ran.state.steps["s"];
    assert_eq!(step.attempt, 2);
    let output = step.output.as_ref().unwrap();
    assert_eq!(output["value"], "ok");
    assert_eq!(output["healthy"], true);
    assert_eq!(output["http_status"], 200);
    assert_eq!(
        output["checks"], 2,
        "the counter survived the retry: {output}"
    );

    // Durable state and notes are in the journal; the note shows the change once.
    assert_eq!(step.state["checks"], "2");
    assert_eq!(step.state["last_value"], r#""ok""#);
    assert!(
        ran.state_sets()
            .contains(&("last_value".into(), r#""degraded""#.into()))
    );
    let url = target.url("/healthz");
    assert_eq!(
        ran.notes(),
        [
            format!(r#"{url} status is "degraded""#),
            format!(r#"{url} status "degraded" -> "ok""#),
        ]
    );
    assert!(ran.timeline_has(r#"note: "#), "{:#?}", ran.timeline());
    assert!(
        ran.timeline_has(r#"status is "degraded", waiting for "ok""#),
        "{:#?}",
        ran.timeline()
    );
    assert!(!journal_text(&ran).contains("tok-py-5551234"));
}

#[tokio::test(flavor = "multi_thread")]
async fn js_step_posts_to_a_granted_host_with_its_secret_and_honours_retry_after() {
    let target = Target::start(vec![
        Reply {
            headers: vec![("retry-after", "0")],
            ..reply(429, r#"{"error": "slow down"}"#)
        },
        reply(201, r#"{"id": "upd-42"}"#),
    ]);
    let ran = run(
        JS,
        &format!(
            "    with: {{ url: '{}', status: investigating, token_secret: STATUSPAGE_TOKEN }}\n    secrets: [STATUSPAGE_TOKEN]\n    allow: [127.0.0.1]\n    retry: {{ attempts: 2, backoff: 10ms }}\n",
            target.url("/api/updates")
        ),
        &[("STATUSPAGE_TOKEN", "tok-js-5551234")],
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{:#?}", ran.timeline());

    let seen = target.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for request in &seen {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/api/updates")
        );
        assert_eq!(request.header("authorization"), "Bearer tok-js-5551234");
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body["status"], "investigating");
        assert_eq!(
            body["message"],
            incident().title,
            "defaults to the incident title"
        );
    }
    // The same key on both attempts: the status page can drop the duplicate.
    let key = seen[0].header("idempotency-key");
    assert!(!key.is_empty());
    assert_eq!(seen[1].header("idempotency-key"), key);

    let step = &ran.state.steps["s"];
    let output = step.output.as_ref().unwrap();
    assert_eq!(output["update_id"], "upd-42");
    assert_eq!(output["http_status"], 201);
    assert_eq!(
        output["deferrals"], 1,
        "the counter survived the retry: {output}"
    );
    assert_eq!(step.state["deferrals"], "1");
    assert_eq!(step.state["update_id"], "upd-42");
    assert_eq!(
        ran.notes(),
        [
            "status page busy (HTTP 429), trying again in 0 ms (deferral 1)",
            r#"status page now says "investigating" (update upd-42)"#,
        ]
    );
    assert!(
        ran.timeline_has("status page answered HTTP 429"),
        "{:#?}",
        ran.timeline()
    );
    assert!(!journal_text(&ran).contains("tok-js-5551234"));
}

/// Params for `name` aimed at `url`, plus the given grants.
fn step_to(name: &str, url: &str, grants: &str) -> String {
    let with = match name {
        PYTHON => format!("{{ url: '{url}', token_secret: TOKEN }}"),
        _ => format!("{{ url: '{url}', status: identified, token_secret: TOKEN }}"),
    };
    format!("    with: {with}\n{grants}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_not_granted_is_denied_and_fails_the_step() {
    for name in [PYTHON, JS] {
        let target = Target::start(vec![reply(200, r#"{"status": "ok"}"#)]);
        let grants = "    secrets: [TOKEN]\n    allow: [status.example.org]\n    retry: { attempts: 3, backoff: 10ms }\n";
        let ran = run(
            name,
            &step_to(name, &target.url("/x"), grants),
            &[("TOKEN", "tok-test-0001")],
        )
        .await;
        assert_eq!(ran.status, RunStatus::Failed, "{name}");
        let f = ran.failure();
        let denied = format!("host not allowed: 127.0.0.1:{}", target.port);
        assert_eq!(f.message, denied, "{name}: {f}");
        assert!(!f.retryable, "{name}: a denial is final");
        assert_eq!(ran.state.steps["s"].attempt, 1, "{name}");
        assert!(
            ran.timeline_has(&format!("DENIED {denied}")),
            "{name}: {:#?}",
            ran.timeline()
        );
        assert!(target.seen().is_empty(), "{name}: nothing left the sandbox");
        if name == PYTHON {
            // Python sees the real reason (ErrorCode_HttpRequestDenied). The JS runtime
            // cannot tell a denial from a network error (and traps when the request has a
            // body), which is why the host, not the step, reports it.
            assert!(
                ran.notes()[0]
                    .ends_with("denied by medic: the host is not in this step's `allow:` list"),
                "{:?}",
                ran.notes()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_not_granted_is_refused_and_fails_the_step() {
    for name in [PYTHON, JS] {
        let target = Target::start(vec![reply(200, r#"{"status": "ok"}"#)]);
        // TOKEN is configured but this step is not granted it.
        let grants = "    allow: [127.0.0.1]\n";
        let ran = run(
            name,
            &step_to(name, &target.url("/x"), grants),
            &[("TOKEN", "tok-test-0001")],
        )
        .await;
        assert_eq!(ran.status, RunStatus::Failed, "{name}");
        assert_eq!(ran.failure().message, "secret not granted: TOKEN", "{name}");
        assert!(
            ran.timeline_has("DENIED secret not granted: TOKEN"),
            "{name}: {:#?}",
            ran.timeline()
        );
        // The step itself saw `none` and gave up before calling out.
        assert!(
            ran.notes()[0].contains("secret TOKEN is not available"),
            "{name}: {:?}",
            ran.notes()
        );
        assert!(target.seen().is_empty(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusing_service_fails_the_step_with_its_status() {
    let target = Target::start(vec![reply(503, r#"{"error": "db down"}"#)]);
    let grants = "    secrets: [TOKEN]\n    allow: [127.0.0.1]\n";
    let ran = run(
        PYTHON,
        &step_to(PYTHON, &target.url("/healthz"), grants),
        &[("TOKEN", "tok-test-0001")],
    )
    .await;
    let f = ran.failure();
    assert_eq!(f.kind, FailureKind::StepError);
    assert_eq!(
        f.message,
        format!(
            r#"GET {} answered HTTP 503: {{"error": "db down"}}"#,
            target.url("/healthz")
        )
    );
    assert!(f.retryable, "a 5xx may clear up");

    let target = Target::start(vec![reply(401, r#"{"error": "bad token"}"#)]);
    let grants =
        "    secrets: [TOKEN]\n    allow: [127.0.0.1]\n    retry: { attempts: 3, backoff: 10ms }\n";
    let ran = run(
        JS,
        &step_to(JS, &target.url("/u"), grants),
        &[("TOKEN", "tok-test-0001")],
    )
    .await;
    let f = ran.failure();
    assert_eq!(
        f.message,
        format!(
            r#"POST {} answered HTTP 401: {{"error": "bad token"}}"#,
            target.url("/u")
        )
    );
    assert!(!f.retryable, "a 401 will not clear up by asking again");
    assert_eq!(ran.state.steps["s"].attempt, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_limits_apply_to_python_and_js() {
    for name in [PYTHON, JS] {
        let target = Target::start(vec![reply(200, r#"{"status": "ok"}"#)]);
        // Both runtimes need far more than 4 MiB just to start.
        let grants = "    secrets: [TOKEN]\n    allow: [127.0.0.1]\n    limits: { memory: 4MiB }\n";
        let ran = run(
            name,
            &step_to(name, &target.url("/x"), grants),
            &[("TOKEN", "tok-test-0001")],
        )
        .await;
        let f = ran.failure();
        assert_eq!(f.kind, FailureKind::MemoryLimit, "{name}: {f}");
        assert!(f.message.contains("limit is 4194304 bytes"), "{name}: {f}");

        // A service slower than the step's timeout: the attempt is stopped, not waited for.
        let slow = Target::start(vec![Reply {
            delay: Duration::from_secs(3),
            ..reply(200, r#"{"status": "ok"}"#)
        }]);
        let grants = "    secrets: [TOKEN]\n    allow: [127.0.0.1]\n    timeout: 500ms\n";
        let started = std::time::Instant::now();
        let ran = run(
            name,
            &step_to(name, &slow.url("/x"), grants),
            &[("TOKEN", "tok-test-0001")],
        )
        .await;
        let f = ran.failure();
        assert_eq!(f.kind, FailureKind::Timeout, "{name}: {f}");
        assert_eq!(
            f.to_string(),
            "timed out: timed out after 500ms (the step's timeout)"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{name}: not waited for"
        );
    }
}

/// `describe()` gives a real params schema: `medic validate` checks `with:` against it.
#[tokio::test(flavor = "multi_thread")]
async fn describe_gives_a_params_schema_that_checks_with() {
    let cases = [
        (
            PYTHON,
            "{ url: 'http://checkout:8080/healthz', field: checks.db, expect: ok, retry_ms: 500 }",
            "{ url: 'checkout', retry_ms: 5, expct: ok }",
            &["with.url", "with.retry_ms", "expct"][..],
        ),
        (
            JS,
            "{ url: 'https://status.example.com/api', status: monitoring, token_secret: T }",
            "{ url: 'https://status.example.com/api', status: fixed }",
            &["with.status"][..],
        ),
    ];
    for (name, good, bad, named) in cases {
        let m = crate::support::sandbox()
            .describe(component(name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.name, name);
        assert_eq!(m.version, "0.1.0");
        assert!(!m.summary.is_empty());
        let check = |with: &str| {
            let yaml = format!(
                "apiVersion: medic/v1\nkind: Workflow\nname: v\nsteps:\n  - id: s\n    phase: verify\n    uses: {name}\n    with: {with}\n"
            );
            let doc = medic_model::parse_workflow("v.yaml", &yaml).unwrap();
            medic_model::check_params(&doc, 0, name, &m.params_schema)
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(check(good), Vec::<String>::new(), "{name}");
        let errors = check(bad);
        assert_eq!(errors.len(), named.len(), "{name}: {errors:#?}");
        for field in named {
            assert!(
                errors.iter().any(|e| e.contains(field)),
                "{name}: {field} in {errors:#?}"
            );
        }
    }
}
