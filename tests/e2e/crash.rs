//! Kill `medic` anywhere; every run resumes and no completed side effect repeats.
//!
//! The examples (HTTP steps, each sending its idempotency key) run against the stand-in
//! service, which logs every request it receives. The `medic run` process is killed with
//! SIGKILL — at the k-th journal write (failpoint), or at a random instant from outside —
//! then `medic resume` finishes the run. Each time:
//! - the run completes and the world ends as a clean run leaves it;
//! - every request the journal records was received exactly as many times as recorded
//!   (retries are new attempts, recorded as such): answered requests are never resent;
//! - a request in flight at the kill arrived at most once more, with the same
//!   idempotency key.

/// An example scenario: its folder, the stand-in's scenario, and the world it must leave.
#[derive(Clone, Copy)]
struct Example {
    dir: &'static str,
    scenario: &'static str,
    done: fn(&StandIn) -> Result<(), String>,
}

const EXAMPLES: [Example; 2] = [
    Example {
        dir: "checkout-flag",
        scenario: "flag",
        done: |s| {
            let flag = s.get("/flags/new-checkout");
            let chat = s.get("/chat");
            if flag["enabled"] != false || chat["messages"].as_array().unwrap().len() != 2 {
                return Err(format!("flag {flag}, chat {chat}"));
            }
            Ok(())
        },
    },
    Example {
        dir: "checkout-rollback",
        scenario: "deploy",
        done: |s| {
            let dep = s.get("/deployments/checkout");
            let chat = s.get("/chat");
            if dep["release"] != "v1" || chat["messages"].as_array().unwrap().len() != 2 {
                return Err(format!("deployment {dep}, chat {chat}"));
            }
            Ok(())
        },
    },
];

use crate::support::{StandIn, medic_in, repo};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run_cmd(ex: Example, data: &Path, service: &StandIn) -> Command {
    let alert = data.with_extension("alert.json");
    let example = repo().join("examples").join(ex.dir);
    let src = std::fs::read_to_string(example.join("alert.json")).unwrap();
    std::fs::write(
        &alert,
        src.replace("http://127.0.0.1:18080", &service.url()),
    )
    .unwrap();
    let mut c = medic_in(data);
    c.arg("run")
        .arg(example.join("workflow.yaml"))
        .arg("--alert")
        .arg(&alert)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// The journal of the only run in `data`, if one was created.
fn journal(data: &Path) -> Option<(String, Vec<Value>)> {
    let out = medic_in(data).args(["runs", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = runs.as_array().unwrap().first()?["id"]
        .as_str()?
        .to_string();
    let out = medic_in(data)
        .args(["runs", "show", &id, "--json", "--journal"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some((id, shown["journal"].as_array().unwrap().clone()))
}

/// (step, attempt, id) of every journalled HTTP request, and of those answered.
fn requests(journal: &[Value]) -> (Vec<(String, Value)>, Vec<String>) {
    let id = |ev: &Value| format!("{}/{}/{}", ev["step"], ev["attempt"], ev["call"]["id"]);
    let mut sent = Vec::new();
    let mut answered = Vec::new();
    for e in journal {
        let ev = &e["event"];
        if ev["type"] != "host_call" {
            continue;
        }
        match ev["call"]["call"].as_str() {
            Some("http_request") => sent.push((id(ev), ev["call"].clone())),
            Some("http_response") => answered.push(id(ev)),
            _ => {}
        }
    }
    (sent, answered)
}

/// (idempotency key, method, path) of a journalled request.
fn group_of(call: &Value) -> (String, String, String) {
    let key = call["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| {
            h[0].as_str()
                .unwrap()
                .eq_ignore_ascii_case("idempotency-key")
        })
        .map(|h| h[1].as_str().unwrap().to_string())
        .unwrap_or_default();
    let url = call["url"].as_str().unwrap();
    let path = url
        .splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .unwrap_or_default();
    (key, call["method"].as_str().unwrap().to_string(), path)
}

/// Resumes whatever the kill left and checks the invariants. `what` names the kill.
fn resume_and_check(ex: Example, data: &Path, service: &StandIn, what: &str) {
    let Some((_, before)) = journal(data) else {
        // Killed before the run was created: nothing may have been sent.
        let reqs = service.get("/requests");
        assert_eq!(
            reqs["requests"].as_array().unwrap().len(),
            0,
            "{what}: {reqs}"
        );
        return;
    };
    let (sent, answered) = requests(&before);
    let inflight: Vec<_> = sent
        .iter()
        .filter(|(id, _)| !answered.contains(id))
        .collect();
    assert!(
        inflight.len() <= 1,
        "{what}: {} requests in flight",
        inflight.len()
    );
    let inflight_group = inflight.first().map(|(_, call)| group_of(call));

    let out = medic_in(data).arg("resume").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: resume failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (id, after) = journal(data).unwrap();
    let last = &after.last().unwrap()["event"];
    assert_eq!(last["type"], "run_finished", "{what}: run {id}");
    assert_eq!(last["status"], "succeeded", "{what}: run {id}: {last}");
    // The run list says what the journal says, even when the kill fell between the
    // finished entry and its meta.
    let out = medic_in(data).args(["runs", "--json"]).output().unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["status"], "succeeded", "{what}: run {id}: {runs}");

    // Every request the final journal records, and what the service received.
    let mut expected: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (_, call) in requests(&after).0 {
        *expected.entry(group_of(&call)).or_default() += 1;
    }
    let mut received: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for r in service.get("/requests")["requests"].as_array().unwrap() {
        let key = r["idempotency_key"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: request without key: {r}"));
        let g = (
            key.to_string(),
            r["method"].as_str().unwrap().to_string(),
            r["path"].as_str().unwrap().to_string(),
        );
        *received.entry(g).or_default() += 1;
    }
    for (g, n) in &received {
        let want = expected.get(g).copied().unwrap_or(0);
        let extra_allowed = usize::from(inflight_group.as_ref() == Some(g));
        assert!(
            *n >= want && *n <= want + extra_allowed,
            "{what}: {g:?} received {n} times, journal records {want}, in flight at the kill: {inflight_group:?}"
        );
    }
    assert_eq!(
        received.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{what}: every recorded request reached the service"
    );
    if let Err(e) = (ex.done)(service) {
        panic!("{what}: the world is not as a clean run leaves it: {e}");
    }
}

/// Journal writes of a clean run (create + appends + the finishing append's meta,
/// counted apart): the failpoint's range.
fn clean_run(ex: Example) -> (usize, Duration) {
    let service = StandIn::scenario(ex.scenario);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let started = Instant::now();
    let status = run_cmd(ex, &data, &service).status().unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{}: clean run failed", ex.dir);
    let (_, entries) = journal(&data).unwrap();
    resume_and_check(ex, &data, &service, &format!("{}: clean run", ex.dir));
    (entries.len() + 1, took)
}

#[test]
fn killed_at_every_journal_write_runs_resume_without_repeating_effects() {
    let mut points = 0;
    for ex in EXAMPLES {
        let (writes, _) = clean_run(ex);
        for k in 1..=writes {
            let service = StandIn::scenario(ex.scenario);
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            let status = run_cmd(ex, &data, &service)
                .env("MEDIC_CRASH_AT_WRITE", k.to_string())
                .status()
                .unwrap();
            assert!(
                !status.success(),
                "{} write {k}: the failpoint did not fire",
                ex.dir
            );
            resume_and_check(
                ex,
                &data,
                &service,
                &format!("{}: killed before journal write {k}", ex.dir),
            );
            points += 1;
        }
    }
    assert!(points >= 50, "{points} kill points; want at least 50");
}

#[test]
fn killed_at_100_random_instants_runs_resume_without_repeating_effects() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut x = seed | 1;
    for ex in EXAMPLES {
        let (_, took) = clean_run(ex);
        // Spread the kills over process start-up and the whole run.
        let span = (took.as_micros() as u64).max(1) * 12 / 10;
        for i in 0..50 {
            // xorshift64: enough randomness for kill instants; the seed is in every message.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = Duration::from_micros(x % span);
            let service = StandIn::scenario(ex.scenario);
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            let mut child = run_cmd(ex, &data, &service).spawn().unwrap();
            std::thread::sleep(at);
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            let what = format!("{}: kill {i} at {at:?} (seed {seed})", ex.dir);
            resume_and_check(ex, &data, &service, &what);
        }
    }
}
