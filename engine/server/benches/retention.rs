//! A long life: the store's size after 100,000 finished runs with and without retention,
//! how long the background removal takes, what it does to intake latency meanwhile, and
//! what a rewrite (`SledStore::compact`) gives back.
//!
//! `cargo bench -p medic-server --bench retention` (a plain `main`; `MEDIC_BENCH_RUNS`
//! sets the number of runs, default 100,000). Intake latency during the sweep is printed
//! as a ratio to the baseline measured in the same run, so a loaded machine shows less.

use axum::body::Body;
use axum::http::Request;
use medic_core::journal::RunCreated;
use medic_core::{Durability, Entry, Event, HostCall, JournalStore, Level, RunMeta, RunStatus};
use medic_server::{ServeConfig, Service, router};
use medic_store::SledStore;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tower::ServiceExt;

const WORKFLOW: &str = include_str!("../../../examples/checkout-flag/workflow.yaml");
const ALERT: &str = include_str!("../../../examples/checkout-flag/alert.json");

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A finished run: created with the example's workflow and incident, one attempt with a
/// log line and its result, finished. Written lazily; the caller flushes.
fn finished_run(
    store: &SledStore,
    wf: &medic_model::Workflow,
    inc: &medic_model::Incident,
    i: usize,
    at: u64,
) {
    let id = format!("{at:012x}-{i:08x}");
    let mut incident = inc.clone();
    incident.id = format!("inc-{i}");
    let components: BTreeMap<String, String> = wf
        .steps
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                format!("/var/lib/medic/steps/{}.wasm", s.uses),
            )
        })
        .collect();
    let mut meta = RunMeta {
        id: id.clone(),
        workflow: wf.name.clone(),
        incident_title: incident.title.clone(),
        status: RunStatus::Running,
        created_ms: at,
        updated_ms: at,
    };
    let first = Entry {
        seq: 0,
        at_ms: at,
        event: Event::RunCreated(Box::new(RunCreated {
            workflow: wf.clone(),
            workflow_file: "/etc/medic/workflows/checkout-bad-flag.yaml".into(),
            incident,
            components,
            drill: false,
        })),
    };
    store.create_run_lazy(&meta, &first).unwrap();
    let step = wf.steps[0].id.clone();
    let events = [
        Event::AttemptStarted {
            step: step.clone(),
            attempt: 1,
            idempotency_key: format!("{id}/{step}"),
            params: serde_json::json!({"url": "http://127.0.0.1:18080/health"}),
        },
        Event::HostCall {
            step: step.clone(),
            attempt: 1,
            call: HostCall::Log {
                level: Level::Info,
                message: "GET http://127.0.0.1:18080/health: 200".into(),
            },
        },
        Event::AttemptSucceeded {
            step: step.clone(),
            attempt: 1,
            output: serde_json::json!({"status": 200}),
            duration_ms: 12,
        },
    ];
    for (seq, event) in events.into_iter().enumerate() {
        let e = Entry {
            seq: seq as u64 + 1,
            at_ms: at + seq as u64,
            event,
        };
        store.append(&id, &e, None, Durability::Lazy).unwrap();
    }
    meta.status = RunStatus::Succeeded;
    meta.updated_ms = at + 5;
    let last = Entry {
        seq: 4,
        at_ms: at + 5,
        event: Event::RunFinished {
            status: RunStatus::Succeeded,
            reason: None,
        },
    };
    store
        .append(&id, &last, Some(&meta), Durability::Lazy)
        .unwrap();
}

async fn post_ms(app: &axum::Router, i: u64) -> f64 {
    let body = serde_json::json!({
        "version": "4", "groupKey": format!("b{i}"), "status": "firing", "receiver": "medic",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": [{"status": "firing", "labels": {"alertname": "Bench", "n": i.to_string()},
                    "annotations": {}, "startsAt": "2026-11-22T03:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z"}]
    })
    .to_string();
    let req = Request::post("/intake/alertmanager")
        .header("content-type", "application/json")
        .header("authorization", "Bearer t")
        .body(Body::from(body))
        .unwrap();
    let t = Instant::now();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 202);
    t.elapsed().as_secs_f64() * 1000.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    let runs: usize = std::env::var("MEDIC_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let wf = medic_model::parse_workflow("workflow.yaml", WORKFLOW)
        .unwrap()
        .workflow;
    let inc = medic_intake::read_any(ALERT.as_bytes())
        .and_then(medic_intake::Batch::into_alerts)
        .unwrap()[0]
        .to_incident("2026-01-01T00:00:00Z");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = Arc::new(SledStore::open(&path).unwrap());
    let t = Instant::now();
    let start = now_ms() - 10_000;
    std::thread::scope(|s| {
        for w in 0..2 {
            let (store, wf, inc) = (&store, &wf, &inc);
            s.spawn(move || {
                for i in (w..runs).step_by(2) {
                    finished_run(store, wf, inc, i, start);
                }
            });
        }
    });
    store.write(Vec::new(), Durability::Flush).unwrap();
    let full = store.size_on_disk().unwrap();
    println!(
        "without retention: {runs} finished runs written in {:.1} s; store {:.1} MiB ({:.0} B per run)",
        t.elapsed().as_secs_f64(),
        full as f64 / 1048576.0,
        full as f64 / runs as f64
    );

    let config =
        ServeConfig::parse("tokens = [\"t\"]\n[retention]\nkeep = \"1s\"\nevery = \"1h\"\n")
            .unwrap();
    // No workflow: the sandbox never runs a step here.
    let sandbox =
        Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
    let svc = Service::new(store.clone(), sandbox, config, Vec::new()).unwrap();
    let app = router(svc.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut base = Vec::new();
        for i in 0..300 {
            base.push(post_ms(&app, i).await);
        }
        let worker = svc.clone();
        let t = Instant::now();
        let sweep = tokio::task::spawn_blocking(move || medic_server::sweep(&worker));
        let mut during = Vec::new();
        let mut i = 1_000;
        while !sweep.is_finished() {
            during.push(post_ms(&app, i).await);
            i += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let swept = sweep.await.unwrap().unwrap();
        let took = t.elapsed();
        let (b50, b99) = (pct(&mut base, 0.5), pct(&mut base, 0.99));
        let (d50, d99) = (pct(&mut during, 0.5), pct(&mut during, 0.99));
        println!(
            "retention sweep: removed {} runs in {:.1} s ({:.0} runs/s)",
            swept.runs,
            took.as_secs_f64(),
            swept.runs as f64 / took.as_secs_f64()
        );
        println!(
            "intake latency: baseline p50 {b50:.2} ms p99 {b99:.2} ms; during the sweep ({} alerts) p50 {d50:.2} ms p99 {d99:.2} ms (x{:.1} / x{:.1})",
            during.len(),
            d50 / b50,
            d99 / b99
        );
    });
    drop(app);
    drop(svc);
    let after = store.size_on_disk().unwrap();
    println!(
        "with retention: store {:.1} MiB right after the sweep ({:.0}% of before)",
        after as f64 / 1048576.0,
        after as f64 * 100.0 / full as f64
    );
    // A long life with retention: the same number of runs again, in ten rounds, each
    // followed by a sweep (the runs are already older than `keep`). sled reuses the space
    // freed, so the store stays near one round's size instead of growing.
    let config = ServeConfig::parse("tokens = [\"t\"]\n[retention]\nkeep = \"1s\"\n").unwrap();
    let sandbox =
        Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
    let svc = Service::new(store.clone(), sandbox, config, Vec::new()).unwrap();
    let start = now_ms() - 10_000;
    for round in 0..10 {
        for i in (round * runs / 10)..((round + 1) * runs / 10) {
            finished_run(&store, &wf, &inc, runs + i, start);
        }
        store.write(Vec::new(), Durability::Flush).unwrap();
        medic_server::sweep(&svc).unwrap();
    }
    let lived = store.size_on_disk().unwrap();
    println!(
        "with retention over a life of {runs} more runs (10 rounds, a sweep after each): store {:.1} MiB ({:.0}% of the store without retention)",
        lived as f64 / 1048576.0,
        lived as f64 * 100.0 / full as f64
    );
    drop(svc);
    drop(store);
    let c = SledStore::compact(&path).unwrap();
    println!(
        "after `SledStore::compact` (rewrite into a fresh tree): {:.2} MiB ({:.1}% of the full store)",
        c.after as f64 / 1048576.0,
        c.after as f64 * 100.0 / full as f64
    );
}
