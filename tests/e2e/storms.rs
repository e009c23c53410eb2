//! Alert storms and a long life (`medic serve`): a critical alert overtakes a backlog of
//! warnings, storm control caps the runs a workflow starts, and retention removes finished
//! runs while open ones survive a restart.

use crate::harness::serve::{Serve, http};
use crate::support::{StandIn, free_port, poll_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An Alertmanager v4 webhook with one firing alert per name, of `severity`.
fn group(names: &[String], severity: &str) -> String {
    group_of(names, severity, "firing")
}

fn group_of(names: &[String], severity: &str, status: &str) -> String {
    let ends = if status == "resolved" {
        "2026-11-22T03:30:00Z"
    } else {
        "0001-01-01T00:00:00Z"
    };
    let alerts: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({
                "status": status, "labels": {"alertname": n, "severity": severity},
                "annotations": {"summary": format!("{n} is failing")},
                "startsAt": "2026-11-22T03:00:00Z", "endsAt": ends,
                "generatorURL": "http://127.0.0.1:9090/graph"
            })
        })
        .collect();
    json!({
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": status,
        "receiver": "medic", "groupLabels": {}, "commonLabels": {"severity": severity},
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093", "alerts": alerts
    })
    .to_string()
}

fn post(serve: &Serve, body: &str) -> u64 {
    let (status, answer) = http(serve.port, "POST", "/intake/alertmanager", Some(body)).unwrap();
    assert_eq!(status, 202, "{answer}");
    serde_json::from_str::<Value>(&answer).unwrap()["accepted"]
        .as_u64()
        .unwrap()
}

fn metric(serve: &Serve, line_start: &str) -> Option<u64> {
    let (_, text) = http(serve.port, "GET", "/metrics", None).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
}

fn runs(serve: &Serve) -> Vec<Value> {
    serve.get("/api/runs").as_array().unwrap().clone()
}

/// A provider on a free port that answers every request with 200 `{}`, and remembers
/// when the first request arrived.
fn provider() -> (u16, std::sync::Arc<std::sync::Mutex<Option<Instant>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let first = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = first.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            seen.lock().unwrap().get_or_insert_with(Instant::now);
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    (port, first)
}

#[test]
fn a_critical_alert_starts_before_a_backlog_of_4000_warnings_drains_and_every_warning_is_handled() {
    // Warnings probe a provider that answers in 50 ms; the critical alert's workflow
    // probes its own provider, which notes when the first step's request arrives.
    let slow = StandIn::start();
    let p = slow.port;
    let (c, first_request) = provider();
    let warn = format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: probe\ntrigger:\n  matchers: ['severity=\"warning\"']\nsteps:\n  - id: check\n    phase: detect\n    uses: http-probe\n    allow: [\"127.0.0.1:{p}\"]\n    with: {{ url: \"http://127.0.0.1:{p}/slow?ms=50\" }}\n"
    );
    let page = format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: page\ntrigger:\n  matchers: ['severity=\"critical\"']\nsteps:\n  - id: check\n    phase: detect\n    uses: http-probe\n    allow: [\"127.0.0.1:{c}\"]\n    with: {{ url: \"http://127.0.0.1:{c}/health\" }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::with_workflows(
        dir.path(),
        free_port(),
        &[("probe.yaml", warn), ("page.yaml", page)],
    );
    let mut accepted = 0;
    for g in 0..40 {
        let names: Vec<String> = (0..100).map(|i| format!("Warn{g}x{i}")).collect();
        accepted += post(&serve, &group(&names, "warning"));
    }
    assert_eq!(accepted, 4000);

    let posted = Instant::now();
    let posted_wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    post(&serve, &group(&["Critical0".to_string()], "critical"));
    let acked = posted.elapsed();
    let arrived = poll_until(Duration::from_secs(120), || *first_request.lock().unwrap())
        .expect("the critical alert's step never reached its provider");
    // Where the time went: the acknowledgement, the run's creation (its journal's first
    // record), and the rest (waiting for a slot, attempt_started, the instance, the request).
    let created = runs(&serve)
        .iter()
        .find(|r| r["workflow"] == "page")
        .and_then(|r| medic_model::time::to_ms(r["created"].as_str()?))
        .expect("the critical alert's run");
    println!(
        "critical alert: acknowledged after {} ms, its run created {} ms after the post",
        acked.as_millis(),
        created - posted_wall
    );
    // Warnings are still waiting: it did not wait for the backlog to drain.
    let unfinished = runs(&serve)
        .iter()
        .filter(|r| r["workflow"] == "probe" && r["status"] == "running")
        .count();
    println!(
        "critical alert posted to its first step's request: {} ms, with {unfinished} of 4000 warning runs unfinished",
        arrived.duration_since(posted).as_millis()
    );
    assert!(
        unfinished > 0,
        "the backlog had drained before the critical step started"
    );

    // Every warning is still handled: 4,001 runs, all succeeded.
    let done = poll_until(Duration::from_secs(900), || {
        let all = runs(&serve);
        (all.len() == 4001 && all.iter().all(|r| r["status"] == "succeeded")).then_some(())
    });
    assert!(
        done.is_some(),
        "not every warning alert was handled: {} runs",
        runs(&serve).len()
    );
    assert_eq!(
        metric(&serve, "medic_inbox_items_total{state=\"handled\"}"),
        Some(4001)
    );
}

#[test]
fn the_storm_cap_suppresses_the_21st_run_inside_a_minute_and_records_it_on_the_incident() {
    let dir = tempfile::tempdir().unwrap();
    let note = "apiVersion: medic/v1\nkind: Workflow\nname: page-oncall\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: { annotate: '{{ incident.title }}' }\n";
    let serve = Serve::with_config(
        dir.path(),
        free_port(),
        &[("page.yaml", note.to_string())],
        "[storm]\nmax_runs = 20\nper = \"1m\"\n",
    );
    for i in 0..21 {
        post(&serve, &group(&[format!("Storm{i}")], "critical"));
    }
    // A re-send of the 21st alert joins its incident; it starts nothing either.
    post(&serve, &group(&["Storm20".to_string()], "critical"));
    let handled = poll_until(Duration::from_secs(60), || {
        (metric(&serve, "medic_inbox_items_total{state=\"handled\"}") == Some(22)).then_some(())
    });
    assert!(handled.is_some(), "the inbox was not handled");
    let incidents = serve.get("/api/incidents");
    let incidents = incidents.as_array().unwrap();
    // Nothing acknowledged is lost: every alert has its incident.
    assert_eq!(incidents.len(), 21, "{incidents:?}");
    let suppressed: Vec<&Value> = incidents
        .iter()
        .filter(|i| !i["suppressed"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(suppressed.len(), 1, "{suppressed:?}");
    let s = suppressed[0];
    assert_eq!(s["title"], "Storm20 — Storm20 is failing", "{s}");
    assert_eq!(s["alerts"], 2, "{s}");
    assert_eq!(s["runs"].as_array().unwrap().len(), 0, "{s}");
    assert_eq!(s["suppressed"][0]["workflow"], "page-oncall");
    let reason = s["suppressed"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "suppressed by storm control: 20 runs of `page-oncall` already started in the last 1m"
        ),
        "{reason}"
    );
    let done = poll_until(Duration::from_secs(60), || {
        let all = runs(&serve);
        (all.len() == 20 && all.iter().all(|r| r["status"] == "succeeded")).then_some(())
    });
    assert!(done.is_some(), "{:?}", runs(&serve));
    assert_eq!(
        metric(
            &serve,
            "medic_storm_suppressed_total{workflow=\"page-oncall\"}"
        ),
        Some(1)
    );
}

#[test]
fn retention_removes_finished_runs_keeps_open_runs_and_gates_archives_and_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let note = "apiVersion: medic/v1\nkind: Workflow\nname: note\ntrigger:\n  matchers: ['alertname=~\"Done.*\"']\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: { annotate: '{{ incident.title }}' }\n";
    let gated = "apiVersion: medic/v1\nkind: Workflow\nname: gated\ntrigger:\n  matchers: ['alertname=\"Gate\"']\nsteps:\n  - id: ask\n    phase: restore\n    gate:\n      prompt: roll back?\n      approvers: [alice]\n      deadline: 1h\n      on-deadline: reject\n  - id: after\n    phase: follow-up\n    uses: echo\n    with: { annotate: done }\n";
    let files = [
        ("note.yaml", note.to_string()),
        ("gated.yaml", gated.to_string()),
    ];
    let config =
        "[retention]\nkeep = \"1s\"\nevery = \"200ms\"\narchive = \"archive/removed.jsonl\"\n";
    let port = free_port();
    let mut serve = Serve::with_config(dir.path(), port, &files, config);
    let done: Vec<String> = (0..3).map(|i| format!("Done{i}")).collect();
    post(&serve, &group(&done, "warning"));
    post(&serve, &group(&["Gate".to_string()], "critical"));
    let finished = poll_until(Duration::from_secs(60), || {
        let all = runs(&serve);
        let ids: Vec<String> = all
            .iter()
            .filter(|r| r["workflow"] == "note" && r["status"] == "succeeded")
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        (ids.len() == 3).then_some(ids)
    })
    .expect("the note runs did not finish");
    // Finished runs of incidents still firing stay; once resolved, they go.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&serve).len(), 4, "removed while their incidents fired");
    post(&serve, &group_of(&done, "warning", "resolved"));
    let removed = poll_until(Duration::from_secs(60), || {
        let all = runs(&serve);
        let incidents = serve.get("/api/incidents");
        (all.len() == 1 && incidents.as_array().unwrap().len() == 1).then_some(all)
    })
    .expect("finished runs and resolved incidents were not removed");
    // The open run and its waiting gate stay.
    let gated_id = removed[0]["id"].as_str().unwrap().to_string();
    assert_eq!(removed[0]["workflow"], "gated");
    assert_eq!(removed[0]["status"], "running");
    let run = serve.get(&format!("/api/runs/{gated_id}"));
    assert_eq!(run["steps"][0]["gate"]["open"], true, "{run}");
    // Each removed run is in the archive with its journal, and so is each incident.
    let archive = std::fs::read_to_string(dir.path().join("archive/removed.jsonl")).unwrap();
    let lines: Vec<Value> = archive
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut archived: Vec<String> = lines
        .iter()
        .filter_map(|l| l["run"]["id"].as_str().map(String::from))
        .collect();
    archived.sort();
    let mut want = finished.clone();
    want.sort();
    assert_eq!(archived, want);
    for l in lines.iter().filter(|l| l.get("run").is_some()) {
        let journal = l["journal"].as_array().unwrap();
        assert_eq!(journal[0]["event"]["type"], "run_created", "{l}");
        assert_eq!(
            journal.last().unwrap()["event"]["type"],
            "run_finished",
            "{l}"
        );
    }
    assert_eq!(
        lines.iter().filter(|l| l.get("incident").is_some()).count(),
        3
    );
    assert_eq!(
        metric(&serve, "medic_retention_removed_total{what=\"runs\"}"),
        Some(3)
    );
    assert!(metric(&serve, "medic_store_size_bytes").is_some_and(|b| b > 0));

    // A restart resumes the open run: its gate is still open and takes a decision.
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    drop(serve);
    let serve = Serve::with_config(dir.path(), port, &files, config);
    let run = serve.get(&format!("/api/runs/{gated_id}"));
    assert_eq!(run["steps"][0]["gate"]["open"], true, "{run}");
    let decision = json!({"decision": "approve", "by": "alice", "comment": "go"}).to_string();
    let (code, body) = http(
        serve.port,
        "POST",
        &format!("/api/runs/{gated_id}/gates/ask"),
        Some(&decision),
    )
    .unwrap();
    assert_eq!(code, 202, "{body}");
    let ended = poll_until(Duration::from_secs(60), || {
        let run = serve.get(&format!("/api/runs/{gated_id}"));
        (run["status"] == "succeeded").then_some(())
    });
    assert!(ended.is_some(), "the resumed run did not finish");
    // The web view's run index and the run list hold no removed run, also after the
    // store was rewritten to give the space back.
    drop(serve);
    let out = crate::support::medic_in(dir.path())
        .arg("compact")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("compacted:"), "{said}");
    let store = medic_store::SledStore::open(dir.path().join("store")).unwrap();
    let index: Vec<String> = store
        .scan(b"web/runs/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| String::from_utf8_lossy(&k[b"web/runs/".len() + 8..]).into_owned())
        .collect();
    assert_eq!(index, vec![gated_id.clone()]);
    let ids: Vec<String> = medic_core::JournalStore::runs(&store)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, vec![gated_id]);
}
