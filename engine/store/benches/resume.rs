//! What a restart costs: 10,000 runs parked in a retry backoff, then open the store,
//! list the unfinished runs, and fold each journal to find out what to do next.
//!
//! `cargo bench -p medic-store --bench resume` (a plain `main`: one timed pass of a
//! cold restart is the figure that matters, not a statistical micro-benchmark).

use medic_core::codec::encode_entry;
use medic_core::journal::RunCreated;
use medic_core::{
    Body, Durability, Entry, Event, Failure, FailureKind, HostCall, HttpOutcome, JournalStore,
    Level, Next, RetryPlan, RunMeta, RunState, RunStatus,
};
use medic_model::{Incident, Workflow};
use medic_store::SledStore;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RUNS: usize = 10_000;
const WRITERS: usize = 16;
const TARGET_MS: u128 = 2_000;

const WORKFLOW: &str = include_str!("../../../examples/checkout-flag/workflow.yaml");
const ALERT: &str = include_str!("../../../examples/checkout-flag/alert.json");

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store");
    let workflow = medic_model::parse_workflow("workflow.yaml", WORKFLOW)
        .expect("the example workflow parses")
        .workflow;
    // Runs are parked on the step that runs first.
    let step = workflow.steps[workflow.execution_order()[0]].id.clone();
    let incident = medic_intake::read_any(ALERT.as_bytes())
        .and_then(medic_intake::Batch::into_alerts)
        .expect("the example alert parses")[0]
        .to_incident("2026-01-01T00:00:00Z");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;

    let setup = Instant::now();
    let store = SledStore::open(&path).expect("open a fresh store");
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (store, workflow, incident, step) = (&store, &workflow, &incident, &step);
            s.spawn(move || {
                for i in (w..RUNS).step_by(WRITERS) {
                    park_run(store, workflow, incident, step, i, now);
                }
            });
        }
    });
    let flushes = store.flush_count();
    drop(store);
    println!(
        "setup: {RUNS} runs ({}-step workflow, parked on {step}) x 6 records from {WRITERS} \
         threads in {} ms, {flushes} fsyncs for {} flushing writes (group commit)",
        workflow.steps.len(),
        setup.elapsed().as_millis(),
        RUNS * 5
    );
    println!("store on disk: {} MiB", dir_size(&path) / (1024 * 1024));

    // The restart, as `medic resume` does it.
    let t0 = Instant::now();
    let store = SledStore::open(&path).expect("reopen");
    let opened = t0.elapsed();
    let t1 = Instant::now();
    let unfinished: Vec<RunMeta> = store
        .runs()
        .expect("list runs")
        .into_iter()
        .filter(|m| m.status == RunStatus::Running)
        .collect();
    let listed = t1.elapsed();
    let t2 = Instant::now();
    let resume_at = now + 1_000;
    let mut reading = Duration::ZERO;
    for meta in &unfinished {
        let read = Instant::now();
        let entries = store.entries(&meta.id).expect("journal");
        reading += read.elapsed();
        let state = RunState::fold(&meta.id, &entries).expect("fold");
        match state.next(resume_at) {
            Next::Wait { .. } => {}
            other => panic!("run {} should be waiting, got {other:?}", meta.id),
        }
    }
    let folded = t2.elapsed();
    let total = t0.elapsed();
    assert_eq!(unfinished.len(), RUNS);
    println!(
        "resume {RUNS} parked runs: open {} ms, list {} ms, fold+next {} ms, total {} ms \
         (target <= {TARGET_MS} ms)",
        opened.as_millis(),
        listed.as_millis(),
        folded.as_millis(),
        total.as_millis()
    );
    println!(
        "  of which reading and decoding journals: {} ms",
        reading.as_millis()
    );
    if total.as_millis() > TARGET_MS {
        println!("OVER TARGET");
    }

    let (request, response) = http_call(&step, now);
    let bytes = encode_entry(&request).len() + encode_entry(&response).len();
    println!("journal bytes per HTTP call (request + response records): {bytes}");
}

/// One run, written as the executor would: created, attempt 1 started, a log line and
/// a health probe that got a 503, then the failure with a retry a day away.
fn park_run(
    store: &SledStore,
    workflow: &Workflow,
    incident: &Incident,
    step: &str,
    i: usize,
    now: u64,
) {
    let created = now - (RUNS - i) as u64;
    let id = format!("{created:012x}-{i:08x}");
    let mut incident = incident.clone();
    incident.id = format!("inc-{i}");
    let components: BTreeMap<String, String> = workflow
        .steps
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                format!("/var/lib/medic/steps/{}.wasm", s.uses),
            )
        })
        .collect();
    let meta = RunMeta {
        id: id.clone(),
        workflow: workflow.name.clone(),
        incident_title: incident.title.clone(),
        status: RunStatus::Running,
        created_ms: created,
        updated_ms: created,
    };
    let first = Entry {
        seq: 0,
        at_ms: created,
        event: Event::RunCreated(Box::new(RunCreated {
            workflow: workflow.clone(),
            workflow_file: "/etc/medic/workflows/checkout-bad-flag.yaml".into(),
            incident,
            components,
            drill: false,
        })),
    };
    store.create_run(&meta, &first).expect("create run");
    let (request, response) = http_call(step, created);
    let events = [
        (
            Event::AttemptStarted {
                step: step.into(),
                attempt: 1,
                idempotency_key: format!("{id}/{step}"),
                params: serde_json::json!({
                    "url": "http://127.0.0.1:18080/health",
                    "expect_status": 200,
                }),
            },
            Durability::Flush,
        ),
        (
            host_call(
                step,
                HostCall::Log {
                    level: Level::Info,
                    message: "GET http://127.0.0.1:18080/health".into(),
                },
            ),
            Durability::Lazy,
        ),
        (request.event, Durability::Flush),
        (response.event, Durability::Flush),
        (
            Event::AttemptFailed {
                step: step.into(),
                attempt: 1,
                failure: Failure::new(FailureKind::StepError, true, "expected status 200, got 503"),
                duration_ms: 41,
                retry: Some(RetryPlan {
                    attempt: 2,
                    not_before_ms: now + Duration::from_secs(86_400).as_millis() as u64,
                }),
            },
            Durability::Flush,
        ),
    ];
    for (seq, (event, durability)) in events.into_iter().enumerate() {
        let entry = Entry {
            seq: seq as u64 + 1,
            at_ms: created + seq as u64,
            event,
        };
        store.append(&id, &entry, None, durability).expect("append");
    }
}

fn host_call(step: &str, call: HostCall) -> Event {
    Event::HostCall {
        step: step.into(),
        attempt: 1,
        call,
    }
}

/// A representative recorded HTTP call: a health probe and its (failing) answer.
fn http_call(step: &str, at_ms: u64) -> (Entry, Entry) {
    let request = Entry {
        seq: 3,
        at_ms,
        event: host_call(
            step,
            HostCall::HttpRequest {
                id: 0,
                method: "GET".into(),
                url: "http://127.0.0.1:18080/health".into(),
                headers: vec![
                    ("accept".into(), "application/json".into()),
                    ("user-agent".into(), "medic-http-probe/0.1".into()),
                ],
                body: Body::Empty,
            },
        ),
    };
    let response = Entry {
        seq: 4,
        at_ms: at_ms + 38,
        event: host_call(
            step,
            HostCall::HttpResponse {
                id: 0,
                outcome: HttpOutcome::Response {
                    status: 503,
                    headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("content-length".into(), "48".into()),
                    ],
                    body: Body::Text(r#"{"status":"degraded","checkout_5xx_rate":0.071}"#.into()),
                },
                duration_ms: 38,
            },
        ),
    };
    (request, response)
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
