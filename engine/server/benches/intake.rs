//! `medic serve` under load, in process (the router driven with `oneshot`, so the figures
//! are medic's, not the loopback's): durable intake throughput with N concurrent clients
//! (each alert acknowledged only once it is on disk), and alert-to-first-step-started
//! latency at fixed offered rates. Every figure is printed with its ratio to the disk's
//! bare fsync rate measured in the same run, so a noisy neighbour shows as a slower
//! baseline rather than as a regression.
//! Targets on the 2-core reference machine: >= 10,000 alerts/s with 8-128 clients;
//! alert to first step started p50 <= 2 ms, p99 <= 10 ms at 500/s (p99 at 2,000/s printed).
//!
//! `cargo bench -p medic-server --bench intake` (`-- throughput` or `-- latency` for one part)

#[expect(dead_code, reason = "the CPU by thread is for the loopback bench")]
mod common;

use axum::body::Body;
use axum::http::Request;
use medic_core::{Clock, Event, SystemClock};
use medic_server::router;
use std::time::{Duration, Instant};
use tower::ServiceExt;

async fn post(app: &axum::Router, i: u64) {
    let req = Request::post("/intake/alertmanager")
        .header("content-type", "application/json")
        .header("authorization", "Bearer t")
        .body(Body::from(common::payload(i)))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 202);
}

/// Intake only (no processor), so the figure is the durable ack path.
async fn throughput(fsyncs: f64) {
    for clients in [1u64, 8, 32, 128] {
        let dir = tempfile::tempdir().unwrap();
        let app = router(common::service(dir.path(), 8));
        // 1 client: 2,000 alerts; more: 16,000 in all, split evenly.
        let per_client = if clients == 1 {
            2_000
        } else {
            16_000 / clients
        };
        let (started, cpu_started) = (Instant::now(), common::process_cpu());
        let ticks = common::cpu_ticks();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let app = app.clone();
                tokio::spawn(async move {
                    let mut acks = Vec::with_capacity(per_client as usize);
                    for k in 0..per_client {
                        let t = Instant::now();
                        post(&app, c * 1_000_000 + k).await;
                        acks.push(t.elapsed());
                    }
                    acks
                })
            })
            .collect();
        let mut acks = Vec::new();
        for t in tasks {
            acks.extend(t.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = (common::process_cpu() - cpu_started).as_secs_f64();
        acks.sort_unstable();
        let rate = acks.len() as f64 / secs;
        println!(
            "durable intake, {clients:>3} concurrent clients: {rate:>7.0} alerts/s ({} alerts in {secs:.2} s), \
             ack p50 {} ms, p99 {} ms; {:.2} alerts per bare fsync; CPU {:.0} µs per alert \
             (the process: medic and these clients), {:.0} % stolen",
            acks.len(),
            common::ms(common::pct(&acks, 0.5)),
            common::ms(common::pct(&acks, 0.99)),
            rate / fsyncs,
            cpu * 1e6 / acks.len() as f64,
            common::stolen_since(ticks),
        );
    }
}

/// `rate` alerts/s for 4 s, each a new incident; from POST to the run's first
/// `attempt_started` record.
async fn latency(rate: u64) {
    let dir = tempfile::tempdir().unwrap();
    let svc = common::service(dir.path(), 64);
    tokio::spawn(medic_server::process(svc.clone()));
    let app = router(svc.clone());
    let total = rate * 4;
    let base = 5_000_000;
    let mut sent = Vec::new();
    let (start, ticks) = (Instant::now(), common::cpu_ticks());
    for i in 0..total {
        let due = start + Duration::from_micros(i * 1_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        sent.push(SystemClock.now_ms());
        let app = app.clone();
        tokio::spawn(async move { post(&app, base + i).await });
    }
    // Wait for every run to finish, polling only the run index: reading every journal on
    // each poll would compete with the runs it measures (at 2,000/s it took a core).
    let store = svc.engine().store().clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = store.runs().unwrap();
        let done = runs
            .iter()
            .filter(|m| m.status != medic_core::RunStatus::Running)
            .count();
        if done as u64 == total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stolen = common::stolen_since(ticks);
    let mut latencies = Vec::new();
    for m in &store.runs().unwrap() {
        let entries = store.entries(&m.id).unwrap();
        let started = entries
            .iter()
            .find(|e| matches!(e.event, Event::AttemptStarted { .. }));
        let Some(started) = started else { continue };
        let n: u64 = match &entries[0].event {
            Event::RunCreated(c) => c.incident.labels["n"].parse().unwrap(),
            _ => continue,
        };
        latencies.push(started.at_ms.saturating_sub(sent[(n - base) as usize]));
    }
    latencies.sort_unstable();
    println!(
        "alert to first step started at {rate:>5} alerts/s: p50 {} ms, p99 {} ms, max {} ms \
         ({} of {total} runs started; {stolen:.0} % of the CPU stolen by the hypervisor)",
        common::pct(&latencies, 0.5),
        common::pct(&latencies, 0.99),
        latencies.last().unwrap(),
        latencies.len()
    );
}

fn main() {
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let part = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let dir = tempfile::tempdir().unwrap();
    let (fsyncs, median, p99) = common::fsync_baseline(dir.path());
    println!(
        "baseline (same run): bare 512-byte write+fdatasync {fsyncs:.0}/s, median {} ms, p99 {} ms; \
         CPU {:.0}k hashes of 4 KiB/s on one thread",
        common::ms(median),
        common::ms(p99),
        common::cpu_baseline() / 1e3
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        if part("throughput") {
            throughput(fsyncs).await;
        }
        if part("latency") {
            latency(500).await;
            latency(2_000).await;
        }
    });
}
