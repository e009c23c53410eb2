//! Retention and online compaction while `medic serve` keeps taking alerts (issue 18):
//! the store's size on disk comes back down, every acknowledged alert keeps its run, the
//! open run and its waiting gate survive, old PagerDuty dedupe marks go, and a restart
//! afterwards resumes.

use crate::support::{Server, TOKEN, eventually, group, metric, payload};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const NOTE: &str = "apiVersion: medic/v1\nkind: Workflow\nname: note\ntrigger:\n  matchers: ['alertname=~\"(Done|Live).*\"']\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: { annotate: '{{ incident.title }}' }\n";
const GATED: &str = "apiVersion: medic/v1\nkind: Workflow\nname: gated\ntrigger:\n  matchers: ['alertname=\"Gate\"']\nsteps:\n  - id: ask\n    phase: restore\n    gate:\n      prompt: roll back?\n      approvers: [alice]\n      deadline: 1h\n      on-deadline: reject\n  - id: after\n    phase: follow-up\n    uses: echo\n    with: { annotate: done }\n";
/// Sweeps and compactions are called by the test, between and during posts; the
/// background loop stays out of the way (`every`). Compacted by the default ratio, also
/// when small.
const CONFIG: &str = "[retention]\nkeep = \"1s\"\nevery = \"1h\"\ncompact_min_size = \"0\"\n";

async fn post(s: &Server, path: &str, body: &[u8], extra: &[(&str, &str)]) -> Value {
    let auth = format!("Bearer {TOKEN}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    let r = s.request("POST", path, &headers, body).await;
    assert_eq!(r.status, 202, "{r:?}");
    r.json()
}

fn runs_of(runs: &Value, workflow: &str, status: &str) -> usize {
    runs.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["workflow"] == workflow && r["status"] == status)
        .count()
}

async fn pagerduty(s: &Server, webhook: &str) -> Value {
    let body = payload("pagerduty-triggered.json");
    post(s, "/intake/pagerduty", &body, &[("x-webhook-id", webhook)]).await
}

/// Phase one, on a server of its own runtime: returns the gated run's id and the
/// acknowledged live alerts.
async fn serve_compact_and_post(store: &Path) -> (String, Vec<String>) {
    let s = Arc::new(Server::start_in(store, CONFIG, &[NOTE, GATED]).await);
    post(
        &s,
        "/intake/alertmanager",
        &group(&["Gate".into()], "firing"),
        &[],
    )
    .await;
    // A PagerDuty delivery whose dedupe mark will be older than `keep`, and one mark as
    // an older medic wrote it (no time).
    assert_eq!(pagerduty(&s, "old-delivery").await["accepted"], 1);
    s.store
        .write(
            vec![medic_store::Op::Put(
                b"seen/pagerduty/legacy".to_vec(),
                Vec::new(),
            )],
            medic_core::Durability::Flush,
        )
        .unwrap();
    // Garbage to give back: 200 runs that finish, whose incidents resolve.
    let done: Vec<String> = (0..200).map(|i| format!("Done{i:03}")).collect();
    for chunk in done.chunks(20) {
        post(&s, "/intake/alertmanager", &group(chunk, "firing"), &[]).await;
    }
    eventually("the done runs to finish", async || {
        (runs_of(&s.get("/api/runs").await, "note", "succeeded") == 200).then_some(())
    })
    .await;
    for chunk in done.chunks(20) {
        post(&s, "/intake/alertmanager", &group(chunk, "resolved"), &[]).await;
    }
    eventually("the done incidents to resolve", async || {
        let incidents = s.get("/api/incidents").await;
        let resolved = incidents
            .as_array()?
            .iter()
            .filter(|i| i["status"] == "resolved")
            .count();
        (resolved == 200).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = s.store.size_on_disk().unwrap();

    // Alerts keep arriving while retention sweeps and the store is compacted.
    let stop = Arc::new(AtomicBool::new(false));
    let posters: Vec<_> = (0..2)
        .map(|w| {
            let (s, stop) = (s.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) || i < 20 {
                    let name = format!("Live{w}-{i:04}");
                    let v = post(
                        &s,
                        "/intake/alertmanager",
                        &group(std::slice::from_ref(&name), "firing"),
                        &[],
                    )
                    .await;
                    assert_eq!(v["accepted"], 1, "{v}");
                    acked.push(name);
                    i += 1;
                    // A steady trickle, not as fast as the loopback allows: with drivers
                    // on their own threads, an unpaced poster wrote so many new runs
                    // during the first compaction that the store, measured right after
                    // it, was no longer half its size before (the assertion below).
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                acked
            })
        })
        .collect();
    let mut compactions = Vec::new();
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if round == 2 {
            // A fresh mark: not older than `keep` at the last sweep.
            assert_eq!(pagerduty(&s, "fresh-delivery").await["accepted"], 1);
        }
        let svc = s.svc.clone();
        let (swept, compacted) = tokio::task::spawn_blocking(move || {
            let swept = medic_server::sweep(&svc).unwrap();
            (swept, medic_server::compact_if_due(&svc).unwrap())
        })
        .await
        .unwrap();
        compactions.push((swept, compacted));
        if round == 0 {
            // Alerts keep arriving (the store grows again later), but right after the
            // first sweep and compaction it is far below where it was.
            let after = s.store.size_on_disk().unwrap();
            assert!(
                after < before / 2,
                "store {before} bytes before, {after} after"
            );
            let legacy = s.store.get(b"seen/pagerduty/legacy").unwrap();
            let at: u64 = medic_core::codec::decode(&legacy.unwrap()).unwrap();
            assert!(
                at > 1_700_000_000_000,
                "stamped with the sweep's time: {at}"
            );
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    for p in posters {
        acked.extend(p.await.unwrap());
    }
    let (first_sweep, first_compaction) = &compactions[0];
    assert_eq!(first_sweep.runs, 200, "{compactions:?}");
    assert_eq!(first_sweep.dedupe_marks, 1, "{compactions:?}");
    let c = first_compaction.expect("the first sweep left garbage worth compacting");
    assert!(c.after < c.before / 2, "{c:?}");
    let text = s
        .request(
            "GET",
            "/metrics",
            &[("authorization", &format!("Bearer {TOKEN}"))],
            b"",
        )
        .await
        .body;
    assert!(
        metric(&text, "medic_store_compactions_total") >= 1.0,
        "{text}"
    );
    assert!(
        metric(&text, "medic_store_compaction_pause_seconds") > 0.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "medic_retention_removed_total{what=\"dedupe_marks\"}"
        ) >= 1.0
    );

    // The old delivery's mark is gone (a re-delivery counts again); the fresh one stays.
    assert_eq!(pagerduty(&s, "fresh-delivery").await["duplicate"], true);
    assert_eq!(pagerduty(&s, "old-delivery").await["accepted"], 1);

    check_served(&s, &acked).await;
    let runs = s.get("/api/runs").await;
    let notes = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["workflow"] == "note");
    assert_eq!(
        notes.count(),
        acked.len(),
        "one run per live alert, none of the removed"
    );
    let gated = runs;
    let gated = gated
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workflow"] == "gated")
        .expect("the gated run")["id"]
        .as_str()
        .unwrap()
        .to_string();
    check_gate(&s, &gated).await;
    (gated, acked)
}

/// Every acknowledged alert is an incident whose runs exist; no removed run is back.
async fn check_served(s: &Server, acked: &[String]) {
    let incidents = eventually("every acknowledged alert handled", async || {
        let incidents = s.get("/api/incidents").await;
        let handled = acked.iter().all(|name| {
            incidents.as_array().unwrap().iter().any(|i| {
                i["labels"]["alertname"] == name.as_str()
                    && !i["runs"].as_array().unwrap().is_empty()
            })
        });
        handled.then_some(incidents)
    })
    .await;
    for i in incidents.as_array().unwrap() {
        let name = i["labels"]["alertname"].as_str().unwrap_or_default();
        assert!(!name.starts_with("Done"), "removed incident back: {i}");
        if name.starts_with("Live") {
            for run in i["runs"].as_array().unwrap() {
                let run = s.get(&format!("/api/runs/{}", run.as_str().unwrap())).await;
                assert_eq!(run["workflow"], "note", "{run}");
            }
        }
    }
}

/// The gated run still waits at its open gate.
async fn check_gate(s: &Server, gated: &str) {
    let run = s.get(&format!("/api/runs/{gated}")).await;
    assert_eq!(run["status"], "running", "{run}");
    assert_eq!(run["steps"][0]["gate"]["open"], true, "{run}");
}

#[test]
fn retention_and_online_compaction_while_alerts_arrive_lose_nothing_and_a_restart_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (gated, acked) = rt.block_on(serve_compact_and_post(&store));
    // Stopped as a kill would: the runtime and every task holding the store go (the
    // inbox writer thread ends on its own once the service is gone).
    drop(rt);
    for _ in 0..200 {
        match medic_store::SledStore::open(&store) {
            Ok(_) => break,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Server::start_in(&store, CONFIG, &[NOTE, GATED]).await;
        check_served(&s, &acked).await;
        check_gate(&s, &gated).await;
        let decision = json!({"decision": "approve", "by": "alice"}).to_string();
        post(
            &s,
            &format!("/api/runs/{gated}/gates/ask"),
            decision.as_bytes(),
            &[],
        )
        .await;
        eventually("the resumed run to finish", async || {
            let run = s.get(&format!("/api/runs/{gated}")).await;
            (run["status"] == "succeeded").then_some(())
        })
        .await;
        let v = post(
            &s,
            "/intake/alertmanager",
            &group(&["Live-after".into()], "firing"),
            &[],
        )
        .await;
        assert_eq!(v["accepted"], 1, "{v}");
        check_served(&s, &["Live-after".to_string()]).await;
    });
}
