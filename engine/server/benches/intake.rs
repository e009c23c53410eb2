//! `medic serve` under load, in process (the router driven with `oneshot`, so the figures
//! are medic's, not the loopback's): durable intake throughput with N concurrent clients,
//! and alert-to-first-step-started latency at a fixed offered rate.
//! Targets on the 2-core reference machine: >= 10,000 alerts/s; p99 <= 10 ms at 500/s.
//!
//! `cargo bench -p medic-server --bench intake`

use axum::body::Body;
use axum::http::Request;
use medic_core::{Clock, Event, SystemClock};
use medic_server::{LoadedWorkflow, ServeConfig, Service, router};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn payload(i: u64) -> String {
    serde_json::json!({
        "version": "4", "groupKey": format!("bench{i}"), "status": "firing", "receiver": "medic",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": [{"status": "firing", "labels": {"alertname": "Bench", "n": i.to_string()},
                    "annotations": {}, "startsAt": "2026-11-22T03:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "fingerprint": format!("{i:016x}")}]
    })
    .to_string()
}

fn service(dir: &std::path::Path, concurrency: usize) -> Arc<Service> {
    let store = Arc::new(medic_store::SledStore::open(dir.join("store")).unwrap());
    let sandbox =
        Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
    let config =
        ServeConfig::parse(&format!("tokens = [\"t\"]\nconcurrency = {concurrency}\n")).unwrap();
    let doc = medic_model::parse_workflow(
        "bench.yaml",
        "apiVersion: medic/v1\nkind: Workflow\nname: bench\ntrigger:\n  matchers: ['alertname=\"Bench\"']\nsteps:\n  - id: first\n    phase: detect\n    uses: echo\n",
    )
    .unwrap();
    let echo = medic_test_programs::path("echo").unwrap();
    let wf = LoadedWorkflow {
        components: [("first".to_string(), echo.to_string())].into(),
        workflow: doc.workflow,
        file: "bench.yaml".into(),
    };
    Service::new(store, sandbox, config, vec![wf]).unwrap()
}

async fn post(app: &axum::Router, i: u64) {
    let req = Request::post("/intake/alertmanager")
        .header("content-type", "application/json")
        .header("authorization", "Bearer t")
        .body(Body::from(payload(i)))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 202);
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Throughput: intake only (no processor), so the figure is the durable ack path.
        for clients in [1u64, 8, 32, 128] {
            let dir = tempfile::tempdir().unwrap();
            let svc = service(dir.path(), 8);
            let app = router(svc);
            // 1 client: 2,000 alerts; more: 8,000 in all, split evenly.
            let per_client = if clients == 1 { 2_000 } else { 8_000 / clients };
            let started = Instant::now();
            let tasks: Vec<_> = (0..clients)
                .map(|c| {
                    let app = app.clone();
                    tokio::spawn(async move {
                        for k in 0..per_client {
                            post(&app, c * 1_000_000 + k).await;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let n = per_client * clients;
            let secs = started.elapsed().as_secs_f64();
            println!("durable intake, {clients:>2} concurrent clients: {:>8.0} alerts/s ({n} alerts in {secs:.2} s)", n as f64 / secs);
        }

        // Latency: 500 alerts/s for 4 s, each a new incident; from POST to the run's
        // first `attempt_started` record.
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path(), 64);
        tokio::spawn(medic_server::process(svc.clone()));
        let app = router(svc.clone());
        let rate = 500u64;
        let total = rate * 4;
        let mut sent = Vec::new();
        let start = Instant::now();
        for i in 0..total {
            let due = start + Duration::from_micros(i * 1_000_000 / rate);
            tokio::time::sleep_until(due.into()).await;
            sent.push((i, SystemClock.now_ms()));
            let app = app.clone();
            tokio::spawn(async move { post(&app, 5_000_000 + i).await });
        }
        // Wait for every run to have started its first step.
        let store = svc.engine().store().clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut latencies = Vec::new();
        loop {
            latencies.clear();
            let runs = store.runs().unwrap();
            for m in &runs {
                let entries = store.entries(&m.id).unwrap();
                let started = entries.iter().find(|e| matches!(e.event, Event::AttemptStarted { .. }));
                let Some(started) = started else { continue };
                let n: u64 = match &entries[0].event {
                    Event::RunCreated(c) => c.incident.labels["n"].parse().unwrap(),
                    _ => continue,
                };
                let posted = sent[(n - 5_000_000) as usize].1;
                latencies.push(started.at_ms.saturating_sub(posted));
            }
            if latencies.len() as u64 == total || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        latencies.sort_unstable();
        let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
        println!(
            "alert to first step started at {rate} alerts/s: p50 {} ms, p99 {} ms, max {} ms ({} of {total} runs started)",
            pct(0.5),
            pct(0.99),
            latencies.last().unwrap(),
            latencies.len()
        );
    });
}
