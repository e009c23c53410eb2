//! A long life: the store's size after 100,000 finished runs with and without retention,
//! how long the background removal takes, what it does to intake latency meanwhile, and
//! what a rewrite gives back: online (`SledStore::compact_online`, with its pause and
//! the intake latency meanwhile, alone and after every sweep as `medic serve` does it)
//! and offline (`SledStore::compact`).
//!
//! `cargo bench -p medic-server --bench retention` (a plain `main`; `MEDIC_BENCH_RUNS`
//! sets the number of runs, default 100,000). Intake latency during the sweep is printed
//! as a ratio to the baseline measured in the same run, so a loaded machine shows less.

use axum::body::Body;
use axum::http::Request;
// The allocator the `medic` binary runs with (engine/alloc).
use medic_alloc as _;
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

/// Intake ack latencies (ms) of alerts posted every 2 ms while `job` runs on a blocking
/// thread (at least one is posted): open loop, each post on its own task, so alerts that
/// arrive during a pause all wait and are all counted. `job`'s result and how long it
/// took.
async fn posting_during<T: Send + 'static>(
    app: &axum::Router,
    first: u64,
    job: impl FnOnce() -> T + Send + 'static,
) -> (Vec<f64>, T, Duration) {
    let t = Instant::now();
    let job = tokio::task::spawn_blocking(job);
    let mut posts = Vec::new();
    let mut i = first;
    while !job.is_finished() || posts.is_empty() {
        let app = app.clone();
        posts.push(tokio::spawn(async move { post_ms(&app, i).await }));
        i += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let out = job.await.unwrap();
    let took = t.elapsed();
    let mut during = Vec::new();
    for p in posts {
        during.push(p.await.unwrap());
    }
    (during, out, took)
}

/// `p50 X ms p99 Y ms (xA / xB)` against the baseline's p50 and p99.
fn against(during: &mut [f64], base: (f64, f64)) -> String {
    let (d50, d99) = (pct(during, 0.5), pct(during, 0.99));
    let max = during.iter().copied().fold(0.0, f64::max);
    format!(
        "p50 {d50:.2} ms p99 {d99:.2} ms max {max:.1} ms (x{:.1} / x{:.1}; {} alerts)",
        d50 / base.0,
        d99 / base.1,
        during.len()
    )
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// A service over `store` with `retention` as its `[retention]` section and no workflow
/// (the sandbox never runs a step here).
fn service(store: &Arc<SledStore>, retention: &str) -> Arc<Service> {
    let config =
        ServeConfig::parse(&format!("tokens = [\"t\"]\n[retention]\n{retention}")).unwrap();
    let sandbox =
        Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
    Service::new(store.clone(), sandbox, config, Vec::new()).unwrap()
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
    let write_runs = |first: usize, n: usize| {
        let start = now_ms() - 10_000;
        std::thread::scope(|s| {
            for w in 0..2 {
                let (store, wf, inc) = (&store, &wf, &inc);
                s.spawn(move || {
                    for i in (first + w..first + n).step_by(2) {
                        finished_run(store, wf, inc, i, start);
                    }
                });
            }
        });
        store.write(Vec::new(), Durability::Flush).unwrap();
    };
    let t = Instant::now();
    write_runs(0, runs);
    let full = store.size_on_disk().unwrap();
    let live = store.live_bytes().unwrap();
    println!(
        "without retention: {runs} finished runs written in {:.1} s; store {:.1} MiB ({:.0} B per run; live records {:.1} MiB)",
        t.elapsed().as_secs_f64(),
        mib(full),
        full as f64 / runs as f64,
        mib(live)
    );

    // Sweeps and compactions are called here; the background loop stays out of the way.
    let svc = service(&store, "keep = \"1s\"\nevery = \"1h\"\n");
    let app = router(svc.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = rt.block_on(async {
        let mut base = Vec::new();
        for i in 0..300 {
            base.push(post_ms(&app, i).await);
        }
        (pct(&mut base, 0.5), pct(&mut base, 0.99))
    });
    println!(
        "intake latency: baseline p50 {:.2} ms p99 {:.2} ms",
        base.0, base.1
    );
    let worker = svc.clone();
    let (mut during, swept, took) = rt.block_on(posting_during(&app, 1_000, move || {
        medic_server::sweep(&worker)
    }));
    let swept = swept.unwrap();
    println!(
        "retention sweep: removed {} runs in {:.1} s ({:.0} runs/s); intake latency during it {}",
        swept.runs,
        took.as_secs_f64(),
        swept.runs as f64 / took.as_secs_f64(),
        against(&mut during, base)
    );
    let after = store.size_on_disk().unwrap();
    println!(
        "with retention: store {:.1} MiB right after the sweep ({:.0}% of before)",
        mib(after),
        after as f64 * 100.0 / full as f64
    );
    // A long life with retention: the same number of runs again, in ten rounds, each
    // followed by a sweep (the runs are already older than `keep`).
    for round in 0..10 {
        write_runs(runs + round * runs / 10, runs / 10);
        medic_server::sweep(&svc).unwrap();
    }
    let lived = store.size_on_disk().unwrap();
    println!(
        "with retention over a life of {runs} more runs (10 rounds, a sweep after each): store {:.1} MiB ({:.0}% of the store without retention)",
        mib(lived),
        lived as f64 * 100.0 / full as f64
    );

    // Online compaction of that store while alerts keep coming.
    let worker = store.clone();
    let (mut during, c, _) = rt.block_on(posting_during(&app, 100_000, move || {
        worker.compact_online()
    }));
    let c = c.unwrap();
    println!(
        "online compaction (store serving, {} records live, {} written during the copy): {:.1} -> {:.2} MiB, every store operation waited {:.1} ms; intake latency meanwhile {}",
        c.records,
        c.recopied,
        mib(c.before),
        mib(c.after),
        c.pause.as_secs_f64() * 1000.0,
        against(&mut during, base)
    );

    // The same life again with retention and online compaction as `medic serve` does it
    // (the default rule: compact when the store is >= 64 MiB and >= 4x its live records).
    let mut pauses = Vec::new();
    let mut peak = 0;
    let mut during = Vec::new();
    for round in 0..10 {
        write_runs(2 * runs + round * runs / 10, runs / 10);
        peak = peak.max(store.size_on_disk().unwrap());
        let worker = svc.clone();
        let (lat, c, _) = rt.block_on(posting_during(&app, 300_000, move || {
            medic_server::sweep(&worker).unwrap();
            medic_server::compact_if_due(&worker).unwrap()
        }));
        during.extend(lat);
        if let Some(c) = c {
            pauses.push(c.pause.as_secs_f64() * 1000.0);
        }
    }
    let compacted = store.size_on_disk().unwrap();
    println!(
        "with retention + online compaction over a life of {runs} more runs: store {:.1} MiB at the end, {:.1} MiB at most ({:.0}% of the store without retention); {} compactions, pauses {}",
        mib(compacted),
        mib(peak),
        peak as f64 * 100.0 / full as f64,
        pauses.len(),
        pauses
            .iter()
            .map(|p| format!("{p:.0} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "intake latency during those sweeps and compactions: {}",
        against(&mut during, base)
    );

    // The pause grows with the live records: a store holding a tenth of the runs.
    write_runs(3 * runs, runs / 10);
    let live = store.live_bytes().unwrap();
    let worker = store.clone();
    let (mut during, c, _) = rt.block_on(posting_during(&app, 200_000, move || {
        worker.compact_online()
    }));
    let c = c.unwrap();
    println!(
        "online compaction with {} runs live ({:.1} MiB of records, {} records, {} written during the copy): {:.1} -> {:.1} MiB, every store operation waited {:.0} ms ({:.1} ms per live MiB); intake latency meanwhile {}",
        runs / 10,
        mib(live),
        c.records,
        c.recopied,
        mib(c.before),
        mib(c.after),
        c.pause.as_secs_f64() * 1000.0,
        c.pause.as_secs_f64() * 1000.0 / mib(live),
        against(&mut during, base)
    );
    drop(app);
    drop(svc);
    drop(rt);
    drop(store);
    // The service's inbox writer thread ends once the service is gone; until then the
    // store is still open and the offline rewrite is refused.
    let mut tries = 0;
    let c = loop {
        match SledStore::compact(&path) {
            Ok(c) => break c,
            Err(_) if tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    println!(
        "after `SledStore::compact` (offline rewrite into a fresh tree): {:.2} MiB ({:.1}% of the full store), {:.0} ms",
        mib(c.after),
        c.after as f64 * 100.0 / full as f64,
        c.pause.as_secs_f64() * 1000.0
    );
}
