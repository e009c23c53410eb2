//! Human gates and incident resolution through `medic serve` as a process: decided through
//! the API and the CLI, taken by default at the deadline, surviving SIGTERM and kill -9
//! while waiting; a resolved alert reaching a run that is still going.

use crate::harness::serve::{Serve, TOKEN, http};
use crate::support::{free_port, medic, medic_in};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A gate, then a step that only runs when it was approved, then a follow-up step that
/// always runs and records the incident status it saw.
fn gated(deadline: &str, on_deadline: &str, on_resolved: &str) -> String {
    format!(
        r#"apiVersion: medic/v1
kind: Workflow
name: gated
on-resolved: {on_resolved}
trigger:
  matchers: ['alertname="CheckoutErrors"']
steps:
  - id: still-broken
    phase: restore
    gate:
      prompt: "{{{{ incident.title }}}}: roll back?"
      approvers: [alice, bob]
      deadline: {deadline}
      on-deadline: {on_deadline}
  - id: rollback
    phase: restore
    if: steps.still-broken.output.approved
    uses: echo
    with: {{ annotate: "rolling back" }}
  - id: postmortem
    phase: follow-up
    uses: echo
    with: {{ annotate: "postmortem; incident {{{{ incident.status }}}}" }}
"#
    )
}

/// Alertmanager v4 webhook for the CheckoutErrors alert.
fn alert(status: &str) -> String {
    let ends = if status == "resolved" {
        "2026-11-22T03:30:00Z"
    } else {
        "0001-01-01T00:00:00Z"
    };
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"CheckoutErrors\"}", "truncatedAlerts": 0,
        "status": status, "receiver": "medic", "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": {"alertname": "CheckoutErrors"}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": status, "labels": {"alertname": "CheckoutErrors", "severity": "critical"},
            "annotations": {"summary": "checkout 5xx above 5%"},
            "startsAt": "2026-11-22T03:00:00Z", "endsAt": ends,
            "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": "c0ffee0000000001"
        }]
    })
    .to_string()
}

fn post_alert(serve: &Serve, status: &str) {
    let (code, body) = http(
        serve.port,
        "POST",
        "/intake/alertmanager",
        Some(&alert(status)),
    )
    .unwrap();
    assert_eq!(code, 202, "{body}");
}

/// Polls `GET /api/runs/{id}` (or the only run) until `done` holds for it.
fn wait_run(serve: &Serve, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok((200, body)) = http(serve.port, "GET", "/api/runs", None) {
            let runs: Value = serde_json::from_str(&body).unwrap();
            if let Some(id) = runs[0]["id"].as_str() {
                last = serve.get(&format!("/api/runs/{id}"));
                if done(&last) {
                    return last;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}; last run state: {last:#}");
}

/// Sends SIGTERM and waits for a clean exit.
fn sigterm_and_wait(serve: &mut Serve) {
    let pid = serve.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(sent.unwrap().success(), "kill -TERM {pid}");
    let exit = serve.child.wait().unwrap();
    assert!(exit.success(), "medic serve exited with {exit} on SIGTERM");
}

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {run:#}"))
}

fn gate_open(run: &Value) -> bool {
    step(run, "still-broken")["gate"]["open"] == true
}

fn finished(run: &Value) -> bool {
    run["status"] != "running"
}

fn timeline(run: &Value) -> String {
    run["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn decide(serve: &Serve, run: &str, step: &str, body: Value) -> (u16, Value) {
    let path = format!("/api/runs/{run}/gates/{step}");
    let (code, text) = http(serve.port, "POST", &path, Some(&body.to_string())).unwrap();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn a_gate_decided_through_the_api_lets_the_run_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::with_workflows(
        dir.path(),
        free_port(),
        &[("gated.yaml", gated("10m", "reject", "continue"))],
    );
    post_alert(&serve, "firing");
    let run = wait_run(&serve, "the gate to open", gate_open);
    let id = run["id"].as_str().unwrap();
    let gate = &step(&run, "still-broken")["gate"];
    assert_eq!(
        gate["prompt"],
        "CheckoutErrors — checkout 5xx above 5%: roll back?"
    );
    assert_eq!(gate["approvers"], json!(["alice", "bob"]));

    // Refusals say what is wrong, and change nothing.
    let refusals = [
        (
            "still-broken",
            json!({"decision": "maybe", "by": "alice"}),
            422,
            "approve` or `reject",
        ),
        (
            "still-broken",
            json!({"decision": "approve", "by": "mallory"}),
            403,
            "approvers are alice, bob",
        ),
        (
            "rollback",
            json!({"decision": "approve", "by": "alice"}),
            409,
            "not a gate",
        ),
        (
            "nope",
            json!({"decision": "approve", "by": "alice"}),
            404,
            "no step `nope`",
        ),
        (
            "still-broken",
            json!({"decision": "approve"}),
            400,
            "say who decides",
        ),
    ];
    for (gate_step, request, want, says) in refusals {
        let (code, body) = decide(&serve, id, gate_step, request.clone());
        assert_eq!(code, want, "{request}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{request}: {body}");
    }
    assert!(gate_open(&serve.get(&format!("/api/runs/{id}"))));

    let (code, body) = decide(
        &serve,
        id,
        "still-broken",
        json!({"decision": "approve", "by": "alice", "comment": "error rate still climbing"}),
    );
    assert_eq!(code, 202, "{body}");
    let run = wait_run(&serve, "the run to finish", finished);
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let out = &step(&run, "still-broken")["output"];
    assert_eq!(out["decision"], "approved");
    assert_eq!(out["approved"], true);
    assert_eq!(out["by"], "alice");
    assert_eq!(out["by_deadline"], false);
    assert_eq!(step(&run, "rollback")["status"], "succeeded");
    let t = timeline(&run);
    assert!(
        t.contains("GATE approved by alice: \"error rate still climbing\""),
        "{t}"
    );

    // Decided once: a second decision is refused and names the first.
    let (code, body) = decide(
        &serve,
        id,
        "still-broken",
        json!({"decision": "reject", "by": "bob"}),
    );
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("approved by alice"),
        "{body}"
    );
    let (_, metrics) = http(serve.port, "GET", "/metrics", None).unwrap();
    assert!(
        metrics.contains(
            "medic_gate_wait_seconds_count{decision=\"approved\",decided_by=\"person\"} 1"
        ),
        "{metrics}"
    );
}

#[test]
fn a_gate_nobody_decides_takes_its_default_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::with_workflows(
        dir.path(),
        free_port(),
        &[("gated.yaml", gated("1s", "approve", "continue"))],
    );
    let started = Instant::now();
    post_alert(&serve, "firing");
    let run = wait_run(&serve, "the run to finish", finished);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "decided before the deadline"
    );
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let out = &step(&run, "still-broken")["output"];
    assert_eq!(out["decision"], "approved");
    assert_eq!(out["by"], "deadline");
    assert_eq!(out["by_deadline"], true);
    // The default was "approve": the rollback ran.
    assert_eq!(step(&run, "rollback")["status"], "succeeded");
    let t = timeline(&run);
    assert!(
        t.contains("GATE approved by its deadline, nobody decided"),
        "{t}"
    );
}

#[test]
fn a_waiting_gate_survives_sigterm_and_kill_9_and_is_decided_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let files = [("gated.yaml", gated("10m", "reject", "continue"))];
    let port = free_port();
    let mut serve = Serve::with_workflows(dir.path(), port, &files);
    post_alert(&serve, "firing");
    let before = wait_run(&serve, "the gate to open", gate_open);
    let id = before["id"].as_str().unwrap().to_string();
    let deadline = step(&before, "still-broken")["gate"]["deadline"].clone();

    // SIGTERM: medic parks the run and exits cleanly.
    sigterm_and_wait(&mut serve);
    drop(serve);

    // Back up: the gate still waits, with its original deadline. Then kill -9.
    let mut serve = Serve::with_workflows(dir.path(), port, &files);
    let run = wait_run(&serve, "the gate to wait again", gate_open);
    assert_eq!(run["id"], id.as_str());
    assert_eq!(step(&run, "still-broken")["gate"]["deadline"], deadline);
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    drop(serve);

    let serve = Serve::with_workflows(dir.path(), port, &files);
    wait_run(&serve, "the gate to wait after kill -9", gate_open);
    // The restarted medic counts the gate it found waiting.
    let (_, metrics) = http(port, "GET", "/metrics", None).unwrap();
    assert!(metrics.contains("\nmedic_gates_waiting 1\n"), "{metrics}");
    let out = medic()
        .args([
            "reject",
            &id,
            "still-broken",
            "--as",
            "bob",
            "-c",
            "recovered on its own",
        ])
        .args([
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "--token",
            TOKEN,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rejected gate still-broken"), "{stdout}");
    let run = wait_run(&serve, "the run to finish", finished);
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(step(&run, "still-broken")["output"]["by"], "bob");
    // Rejected: no rollback; the follow-up still ran.
    assert_eq!(step(&run, "rollback")["status"], "skipped");
    assert_eq!(step(&run, "postmortem")["status"], "succeeded");
    // One GATE opened line: restarts did not open it again.
    let t = timeline(&run);
    assert_eq!(t.matches("GATE waiting").count(), 1, "{t}");
    assert!(
        t.contains("GATE rejected by bob: \"recovered on its own\""),
        "{t}"
    );
}

#[test]
fn a_resolved_alert_reaches_the_running_run_and_cancels_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::with_workflows(
        dir.path(),
        free_port(),
        &[("gated.yaml", gated("10m", "approve", "cancel"))],
    );
    post_alert(&serve, "firing");
    wait_run(&serve, "the gate to open", gate_open);
    post_alert(&serve, "resolved");
    let run = wait_run(&serve, "the run to finish", finished);
    // Not a restore: the run ends `cancelled`, saying why (issue 11.6).
    assert_eq!(run["status"], "cancelled", "{run:#}");
    assert_eq!(
        run["reason"], "the incident resolved: 2 steps cancelled (on-resolved: cancel)",
        "{run:#}"
    );
    let t = timeline(&run);
    assert!(t.contains("incident resolved"), "{t}");
    // The waiting gate and the step after it are cancelled, each with its reason; the
    // follow-up still runs and sees the new status.
    for id in ["still-broken", "rollback"] {
        assert_eq!(step(&run, id)["status"], "cancelled", "{run:#}");
        assert_eq!(
            step(&run, id)["reason"],
            "the incident resolved (on-resolved: cancel)"
        );
    }
    assert!(
        t.contains("still-broken     cancelled: the incident resolved (on-resolved: cancel)"),
        "{t}"
    );
    assert!(t.contains("run cancelled after"), "{t}");
    assert_eq!(step(&run, "postmortem")["status"], "succeeded");
    assert!(t.contains("postmortem; incident resolved"), "{t}");
    let incidents = serve.get("/api/incidents");
    assert_eq!(incidents[0]["status"], "resolved");
    // Deciding the cancelled gate is refused with the reason.
    let id = run["id"].as_str().unwrap();
    let (status, body) = http(
        serve.port,
        "POST",
        &format!("/api/runs/{id}/gates/still-broken"),
        Some(r#"{"decision": "approve", "by": "ann"}"#),
    )
    .unwrap();
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("gate `still-broken` was cancelled: the incident resolved"),
        "{body}"
    );
    // Listed by outcome, in the API, /metrics and the CLI.
    assert_eq!(serve.get("/api/runs?status=cancelled")[0]["id"], id);
    assert_eq!(
        serve.get("/api/runs?status=succeeded"),
        serde_json::json!([])
    );
    let (_, metrics) = http(serve.port, "GET", "/metrics", None).unwrap();
    assert!(
        metrics.contains("medic_runs{status=\"cancelled\"} 1\n"),
        "{metrics}"
    );
    drop(serve);
    let out = medic()
        .arg("--data")
        .arg(dir.path())
        .args(["runs", "--status", "cancelled"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(id) && stdout.contains("cancelled"),
        "{stdout}"
    );
}

#[test]
fn medic_approve_without_a_server_decides_in_the_local_store() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join("gated.yaml");
    std::fs::write(&wf, gated("10m", "reject", "continue")).unwrap();
    let alert = dir.path().join("alert.json");
    std::fs::write(&alert, alert_json()).unwrap();
    let data = dir.path().join("data");
    let mut run = medic_in(&data);
    let mut child = run
        .arg("run")
        .arg(&wf)
        .arg("--alert")
        .arg(&alert)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the gate to open in the journal, then stop `medic run` (it holds the store).
    wait_for_gate_line(&mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut list = medic_in(&data);
    let out = list.args(["runs", "--json"]).output().unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = runs[0]["id"].as_str().unwrap().to_string();
    assert_eq!(runs[0]["status"], "running");

    let mut approve = medic_in(&data);
    let out = approve
        .args(["approve", &id, "still-broken", "--as", "alice"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut again = medic_in(&data);
    let out = again
        .args(["approve", &id, "rollback", "--as", "alice"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a gate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut resume = medic_in(&data);
    let out = resume.arg("resume").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("GATE approved by alice"), "{stdout}");
    assert!(stdout.contains("rolling back"), "{stdout}");
}

fn alert_json() -> String {
    json!({"title": "checkout 5xx above 5%", "severity": "critical",
           "labels": {"alertname": "CheckoutErrors"}})
    .to_string()
}

/// Reads `medic run` output until the gate opens.
fn wait_for_gate_line(child: &mut std::process::Child) {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        seen.push(line.clone());
        if line.contains("GATE waiting") {
            return;
        }
    }
    panic!(
        "the gate did not open; medic run printed:\n{}",
        seen.join("\n")
    );
}

#[test]
fn sigterm_lets_the_attempt_in_flight_finish_and_the_run_resumes_at_the_next_start() {
    let stand_in = crate::support::StandIn::start();
    let port = stand_in.port;
    let wf = format!(
        r#"apiVersion: medic/v1
kind: Workflow
name: slow
trigger:
  matchers: ['alertname="CheckoutErrors"']
steps:
  - id: slow-probe
    phase: detect
    uses: http-probe
    allow: ["127.0.0.1:{port}"]
    with: {{ url: "http://127.0.0.1:{port}/slow?ms=1500" }}
  - id: note
    phase: communicate
    uses: echo
    with: {{ annotate: "after the probe" }}
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let files = [("slow.yaml", wf)];
    let medic_port = free_port();
    let mut serve = Serve::with_workflows(dir.path(), medic_port, &files);
    post_alert(&serve, "firing");
    wait_run(&serve, "the probe to start", |r| {
        step(r, "slow-probe")["status"] == "running"
    });
    let stopping = Instant::now();
    sigterm_and_wait(&mut serve);
    // It waited for the slow request to be answered and journalled...
    assert!(
        stopping.elapsed() >= Duration::from_millis(500),
        "did not wait for the attempt"
    );
    drop(serve);

    // ...and started nothing after it: the next step is still to come.
    let serve = Serve::with_workflows(dir.path(), medic_port, &files);
    let run = wait_run(&serve, "the run to finish", finished);
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(step(&run, "slow-probe")["attempts"], 1);
    let t = timeline(&run);
    let probe_done = t
        .find("slow-probe       succeeded")
        .expect("probe succeeded");
    let note_started = t
        .find("note             attempt 1 started")
        .expect("note ran");
    assert!(probe_done < note_started, "{t}");
    // The probe finished before the stop, so the restart did not send it again.
    let slow_requests = stand_in.get("/requests")["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/slow"))
        .count();
    assert_eq!(slow_requests, 1);
}
