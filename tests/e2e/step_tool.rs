//! `medic step new|build|test`, as a step author uses them.

use crate::support::{component, medic};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `medic step test ARGS` with its own data dir; (exit ok, stdout, stderr).
fn step_test(args: &[&str]) -> (bool, String, String) {
    let data = tempfile::tempdir().unwrap();
    let out = medic()
        .arg("--data")
        .arg(data.path())
        .args(["step", "test"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn step_test_json(args: &[&str]) -> (bool, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, stdout, stderr) = step_test(&all);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    (ok, v)
}

/// An HTTP server answering every request `200 ok`, on a free port; stops on drop.
struct Ok200 {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Ok200 {
    fn start() -> Ok200 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        Ok200 { port, stop }
    }
}

impl Drop for Ok200 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn step_test_shows_describe_logs_annotations_state_and_output() {
    let echo = component("echo");
    let params = r#"{"log": "looked at checkout", "annotate": "flag flipped", "state_key": "rev", "state_value": "41"}"#;
    let (ok, text, _) = step_test(&[&echo, "--params", params]);
    assert!(ok, "{text}");
    for want in [
        "wit         medic:step@0.1.0",
        "describe    echo 0.1.0: Echo params back",
        "log info   looked at checkout",
        "annotate   flag flipped",
        "state-set  rev = 41",
        "result      done in",
        "\"incident_title\": \"CheckoutErrorRate: 5xx above 5% on checkout\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    let (ok, v) = step_test_json(&[&echo, "--params", params]);
    assert!(ok);
    assert_eq!(v["wit_version"], "0.1.0");
    assert_eq!(v["describe"]["name"], "echo");
    assert_eq!(v["describe"]["params_schema"]["type"], "object");
    assert_eq!(v["logs"][0]["level"], "info");
    assert_eq!(v["logs"][0]["message"], "looked at checkout");
    assert_eq!(v["annotations"][0]["message"], "flag flipped");
    assert_eq!(v["state_writes"][0]["key"], "rev");
    assert_eq!(v["result"]["status"], "done");
    assert_eq!(v["result"]["output"]["params"]["state_key"], "rev");
    assert!(v["duration_ms"].is_u64());
}

#[test]
fn params_and_incident_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("params.json");
    std::fs::write(&params, r#"{"n": 3}"#).unwrap();
    let incident = dir.path().join("incident.json");
    std::fs::write(&incident, r#"{"title": "DiskFull", "severity": "warning"}"#).unwrap();
    let (ok, v) = step_test_json(&[
        &component("echo"),
        "--params",
        params.to_str().unwrap(),
        "--incident",
        incident.to_str().unwrap(),
    ]);
    assert!(ok, "{v}");
    assert_eq!(v["result"]["output"]["params"]["n"], 3);
    assert_eq!(v["result"]["output"]["incident_title"], "DiskFull");

    let (ok, _, stderr) = step_test(&[&component("echo"), "--params", "{not json"]);
    assert!(!ok);
    assert!(
        stderr.contains("--params: neither JSON") && stderr.contains("{not json"),
        "{stderr}"
    );
}

#[test]
fn allow_grants_a_host_and_an_ungranted_host_is_denied() {
    let server = Ok200::start();
    let url = format!("http://127.0.0.1:{}/healthz", server.port);
    let params = format!(r#"{{"url": "{url}"}}"#);
    let probe = component("http-probe");

    let (ok, v) = step_test_json(&[&probe, "--params", &params, "--allow", "127.0.0.1"]);
    assert!(ok, "{v}");
    let x = &v["http"][0];
    assert_eq!(x["method"], "GET");
    assert_eq!(x["url"], url.as_str());
    assert_eq!(x["status"], 200);
    assert_eq!(x["denied"], false);
    assert!(x["duration_ms"].is_u64(), "{x}");
    let (ok, text, _) = step_test(&[&probe, "--params", &params, "--allow", "127.0.0.1"]);
    assert!(ok);
    assert!(
        text.contains(&format!("http       GET {url} -> 200 in ")),
        "{text}"
    );

    // Not granted: never sent, marked, and the step fails.
    let (ok, v) = step_test_json(&[&probe, "--params", &params, "--allow", "example.com"]);
    assert!(!ok, "{v}");
    assert_eq!(v["http"][0]["denied"], true, "{v}");
    assert_eq!(v["http"][0]["url"], url.as_str());
    assert_eq!(v["result"]["status"], "failed");
    assert!(
        v["result"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("host not allowed: 127.0.0.1"),
        "{v}"
    );
    let (_, text, _) = step_test(&[&probe, "--params", &params]);
    assert!(text.contains("-> DENIED: 127.0.0.1:"), "{text}");
}

#[test]
fn a_secret_value_is_never_printed() {
    const VALUE: &str = "s3cr3t-Tok3n-value";
    let server = Ok200::start();
    let url = format!("http://127.0.0.1:{}/?token={VALUE}", server.port);
    // The step reads the secret, logs it, sends it and fails with it in the message.
    let echo_params = format!(
        r#"{{"secret": "API_TOKEN", "log": "token is {VALUE}", "annotate": "{VALUE}", "fail": "rejected {VALUE}"}}"#
    );
    let probe_params =
        format!(r#"{{"url": "{url}", "headers": {{"authorization": "Bearer {VALUE}"}}}}"#);
    let secret = format!("API_TOKEN={VALUE}");
    for (path, params) in [
        (component("echo"), echo_params),
        (component("http-probe"), probe_params),
    ] {
        for json in [false, true] {
            let mut args = vec![
                path.as_str(),
                "--params",
                &params,
                "--secret",
                &secret,
                "--allow",
                "127.0.0.1",
            ];
            if json {
                args.push("--json");
            }
            let (_, stdout, stderr) = step_test(&args);
            assert!(
                !stdout.contains(VALUE) && !stderr.contains(VALUE),
                "secret printed:\n{stdout}\n{stderr}"
            );
            assert!(stdout.contains("[redacted:API_TOKEN]"), "{stdout}");
        }
    }
    // A malformed --secret is refused without echoing it.
    let (ok, _, stderr) = step_test(&[&component("echo"), "--secret", VALUE]);
    assert!(!ok);
    assert!(stderr.contains("--secret: expected NAME=VALUE") && !stderr.contains(VALUE));
}

#[test]
fn a_failing_step_exits_non_zero_with_its_error() {
    let (ok, text, _) = step_test(&[
        &component("echo"),
        "--params",
        r#"{"fail": "flag service said 403", "retryable": false}"#,
    ]);
    assert!(!ok);
    assert!(
        text.contains("result      FAILED in")
            && text.contains("(step error, not retryable): flag service said 403"),
        "{text}"
    );
    let (ok, _, _) = step_test(&[&component("hostile"), "--params", r#"{"mode": "trap"}"#]);
    assert!(!ok);
}

/// `MEDIC_TOOLCHAINS`-or-default path of a polyglot tool, or a failure naming the installer.
fn require_polyglot(rel: &str) {
    let root = std::env::var("MEDIC_TOOLCHAINS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/medic/toolchains")
        });
    assert!(
        root.join(rel).is_file(),
        "{} missing: run scripts/toolchain-polyglot (installs componentize-py and componentize-js)",
        root.join(rel).display()
    );
}

/// `medic step new NAME --lang LANG`, then the project's own `./test.sh`. Returns its
/// output, the built component and the temp dir holding everything.
fn new_builds_and_passes_its_own_test(lang: &str) -> (Output, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join(format!("{lang}-step"));
    let name = format!("my-{lang}-step");
    let out = medic()
        .args(["step", "new", &name, "--lang", lang, "--dir"])
        .arg(&project)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "README.md",
        "params.json",
        "incident.json",
        "build.sh",
        "test.sh",
        "wit/step.wit",
    ] {
        assert!(project.join(f).is_file(), "{f} missing");
    }
    let wit = std::fs::read_to_string(project.join("wit/step.wit")).unwrap();
    assert!(wit.contains("package medic:step@0.2.0;"));

    let out = std::process::Command::new(project.join("test.sh"))
        .env("MEDIC", env!("CARGO_BIN_EXE_medic"))
        .env("MEDIC_DATA", dir.path().join("data"))
        // Rust steps share one target dir across test runs: wit-bindgen builds once.
        .env(
            "CARGO_TARGET_DIR",
            std::env::temp_dir().join("medic-e2e-step-new-target"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "test.sh failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("ok: {name} passed its test")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "built    {}",
            Path::new("./dist").join(format!("{name}.wasm")).display()
        )) && stdout.contains("medic:step@0.2.0")
            && stdout.contains("load     "),
        "{stdout}"
    );
    let wasm = project.join(format!("dist/{name}.wasm"));
    assert!(wasm.is_file());
    (out, wasm, dir)
}

#[test]
fn step_new_rust_builds_and_passes_its_own_test() {
    new_builds_and_passes_its_own_test("rust");
}

#[test]
fn step_new_python_builds_and_passes_its_own_test() {
    require_polyglot("componentize-py/bin/componentize-py");
    let (out, wasm, dir) = new_builds_and_passes_its_own_test("python");
    // A 20 MB component: the build compiled it into the cache, with a phase line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("==> compiling ./dist/my-python-step.wasm for medic"),
        "{stderr}"
    );

    // With a fresh cache, first use says it is compiling, once (describe() and run()
    // both load it); once cached, nothing.
    let fresh = dir.path().join("fresh");
    for expected in [1, 0] {
        let out = medic()
            .arg("--data")
            .arg(&fresh)
            .args(["step", "test"])
            .arg(&wasm)
            .args(["--params", r#"{"message": "hi"}"#])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stderr.matches("for first use").count(),
            expected,
            "{stderr}"
        );
        if expected == 1 {
            assert!(
                stderr.contains("medic: compiling ") && stderr.contains("my-python-step.wasm"),
                "{stderr}"
            );
        }
    }
}

#[test]
fn step_new_js_builds_and_passes_its_own_test() {
    require_polyglot("js/node_modules/.bin/componentize-js");
    new_builds_and_passes_its_own_test("js");
}

/// The journal of a finished run, as `(type, call)` per entry (`call` for host calls only),
/// run_created left out: its workflow differs by construction (one step vs a file).
fn shape(journal: &[Value]) -> Vec<(String, String)> {
    journal
        .iter()
        .map(|e| &e["event"])
        .filter(|ev| ev["type"] != "run_created")
        .map(|ev| {
            let call = ev["call"]["call"].as_str().unwrap_or("").to_string();
            (ev["type"].as_str().unwrap().to_string(), call)
        })
        .collect()
}

/// The record that closed the attempt, without its timings (the attempt's duration, and
/// the latency http-probe measures), which no two runs share.
fn closing(journal: &[Value]) -> Value {
    let mut ev = journal
        .iter()
        .map(|e| e["event"].clone())
        .find(|ev| ev["type"] == "attempt_succeeded" || ev["type"] == "attempt_failed")
        .expect("the attempt closed");
    ev.as_object_mut().unwrap().remove("duration_ms");
    if let Some(output) = ev["output"].as_object_mut() {
        output.remove("latency_ms");
    }
    ev
}

#[test]
fn step_test_and_a_run_of_the_same_step_end_and_journal_alike() {
    let server = Ok200::start();
    let url = format!("http://127.0.0.1:{}/healthz", server.port);
    let dir = tempfile::tempdir().unwrap();
    let incident = dir.path().join("alert.json");
    std::fs::write(
        &incident,
        r#"{"title": "CheckoutErrorRate", "severity": "critical",
            "labels": {"alertname": "CheckoutErrorRate", "service": "checkout"}}"#,
    )
    .unwrap();
    let cases = [
        (component("http-probe"), format!(r#"{{"url": "{url}"}}"#)),
        (
            component("echo"),
            r#"{"log": "checking", "annotate": "seen", "state_key": "k", "state_value": "v", "fail": "flag service said 403", "retryable": false}"#
                .to_string(),
        ),
    ];
    for (i, (wasm, params)) in cases.iter().enumerate() {
        let (_, tested) = step_test_json(&[
            wasm,
            "--params",
            params,
            "--allow",
            "127.0.0.1",
            "--incident",
            incident.to_str().unwrap(),
            "--journal",
        ]);
        let tested = tested["journal"].as_array().unwrap().clone();

        let workflow = dir.path().join(format!("same-{i}.yaml"));
        std::fs::write(
            &workflow,
            format!(
                "apiVersion: medic/v1\nkind: Workflow\nname: same\nsteps:\n  - id: step\n    \
                 phase: detect\n    uses: {wasm}\n    with: {params}\n    allow: [127.0.0.1]\n"
            ),
        )
        .unwrap();
        let data = dir.path().join(format!("data-{i}"));
        let out = crate::support::medic_in(&data)
            .arg("run")
            .arg(&workflow)
            .arg("--alert")
            .arg(&incident)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let runs = crate::support::medic_in(&data)
            .args(["runs", "--json"])
            .output()
            .unwrap();
        let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
        let id = runs[0]["id"].as_str().unwrap_or_else(|| panic!("{stderr}"));
        let shown = crate::support::medic_in(&data)
            .args(["runs", "show", id, "--json", "--journal"])
            .output()
            .unwrap();
        let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
        let ran = shown["journal"].as_array().unwrap().clone();

        assert_eq!(tested[0]["event"]["type"], "run_created", "{tested:?}");
        assert_eq!(shape(&tested), shape(&ran), "case {i}");
        assert_eq!(closing(&tested), closing(&ran), "case {i}");
        let finished = |j: &[Value]| j.last().unwrap()["event"]["status"].clone();
        assert_eq!(finished(&tested), finished(&ran), "case {i}");
    }
}
