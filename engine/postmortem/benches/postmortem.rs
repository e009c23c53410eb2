//! A postmortem of a 10,000-entry journal: read it, compute the facts, write the Markdown
//! (which renders the SVG too), the JSON, the HTML and the SVG. Target: 50 ms for reading
//! plus the Markdown draft.
//!
//! `cargo bench -p medic-postmortem` (a plain `main`: the figure that matters is one
//! postmortem of a big incident, printed; the median of 11 runs after a warm-up).

use medic_core::journal::RunCreated;
use medic_core::{
    Body, Entry, Event, Failure, FailureKind, HostCall, HttpOutcome, Level, RetryPlan, RunStatus,
};
use medic_postmortem::Postmortem;
use serde_json::json;
use std::time::{Duration, Instant};

const ENTRIES: usize = 10_000;
const TARGET: Duration = Duration::from_millis(50);
const T0: u64 = 1_795_316_400_000;

/// 50 steps over 4 hours, each attempt polling over HTTP with logs and notes, every
/// fifth step retried once, until the journal has `ENTRIES` entries.
fn journal() -> Vec<Entry> {
    let phases = ["detect", "communicate", "restore", "verify", "follow-up"];
    let steps = 50;
    let mut yaml = String::from("apiVersion: medic/v1\nkind: Workflow\nname: big\nsteps:\n");
    for i in 0..steps {
        let phase = phases[i * phases.len() / steps];
        yaml += &format!(
            "  - {{id: step-{i:02}, phase: {phase}, uses: prom-check, retry: {{attempts: 3}}}}\n"
        );
    }
    let workflow = medic_model::parse_workflow("w.yaml", &yaml)
        .expect("bench workflow parses")
        .workflow;
    let incident = medic_intake::simple::parse(
        br#"{"title": "Checkout down", "startsAt": "2026-11-22T03:00:00Z"}"#,
    )
    .expect("bench alert parses")[0]
        .to_incident("2026-11-22T03:00:00Z");
    let order: Vec<String> = workflow
        .execution_order()
        .into_iter()
        .map(|i| workflow.steps[i].id.clone())
        .collect();
    let mut events = vec![Event::RunCreated(Box::new(RunCreated {
        workflow,
        workflow_file: "w.yaml".into(),
        incident,
        components: Default::default(),
        drill: false,
    }))];
    // Each attempt: start, 4 calls per poll, result.
    let per_step = (ENTRIES - 2) / steps;
    for (i, step) in order.iter().enumerate() {
        let attempts = if i % 5 == 4 { 2 } else { 1 };
        let calls = (per_step - 2 * attempts) / attempts;
        for attempt in 1..=attempts as u32 {
            events.push(Event::AttemptStarted {
                step: step.clone(),
                attempt,
                idempotency_key: "k".into(),
                params: json!({"query": "up"}),
            });
            for c in 0..calls as u32 {
                let call = match c % 4 {
                    0 => HostCall::HttpRequest {
                        id: c,
                        method: "GET".into(),
                        url: "http://prometheus:9090/api/v1/query?query=up".into(),
                        headers: vec![],
                        body: Body::Empty,
                    },
                    1 => HostCall::HttpResponse {
                        id: c - 1,
                        outcome: HttpOutcome::Response {
                            status: 200,
                            headers: vec![],
                            body: Body::Text("{\"status\":\"success\"}".into()),
                        },
                        duration_ms: 12,
                    },
                    2 => HostCall::Log {
                        level: Level::Warn,
                        message: format!("error ratio 0.{c} above 0.01"),
                    },
                    _ => HostCall::Annotate {
                        message: format!("poll {c}"),
                    },
                };
                events.push(Event::HostCall {
                    step: step.clone(),
                    attempt,
                    call,
                });
            }
            events.push(if attempt < attempts as u32 {
                Event::AttemptFailed {
                    step: step.clone(),
                    attempt,
                    failure: Failure::new(FailureKind::NotReady, true, "not yet"),
                    duration_ms: 60_000,
                    retry: Some(RetryPlan {
                        attempt: attempt + 1,
                        not_before_ms: 0,
                    }),
                }
            } else {
                Event::AttemptSucceeded {
                    step: step.clone(),
                    attempt,
                    output: json!({"ok": true}),
                    duration_ms: 60_000,
                }
            });
        }
    }
    while events.len() < ENTRIES - 1 {
        events.push(Event::HostCall {
            step: order[steps - 1].clone(),
            attempt: 1,
            call: HostCall::Log {
                level: Level::Info,
                message: "padding".into(),
            },
        });
    }
    events.push(Event::RunFinished {
        status: RunStatus::Succeeded,
        reason: None,
    });
    // Spread over 4 hours.
    let span = 4 * 3_600_000 / events.len() as u64;
    events
        .into_iter()
        .enumerate()
        .map(|(seq, event)| Entry {
            seq: seq as u64,
            at_ms: T0 + 60_000 + seq as u64 * span,
            event,
        })
        .collect()
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn main() {
    let journal = journal();
    assert_eq!(journal.len(), ENTRIES);
    let mut read_md = Vec::new();
    let mut all = Vec::new();
    let mut sizes = (0, 0, 0, 0);
    for _ in 0..12 {
        let start = Instant::now();
        let pm = Postmortem::from_journals([("run-1", &journal)]).expect("bench journal reads");
        let md = pm.markdown();
        read_md.push(start.elapsed());
        let (json, html, svg) = (pm.json(), pm.html(), pm.svg());
        all.push(start.elapsed());
        sizes = (md.len(), json.len(), html.len(), svg.len());
    }
    // The first pass warms caches and the allocator.
    let (read_md, all) = (median(read_md[1..].to_vec()), median(all[1..].to_vec()));
    // A baseline measured in the same run, for a loaded or slower machine: serialising
    // the same journal to JSON once (one pass over the same data, no postmortem logic).
    let baseline = median(
        (0..12)
            .map(|_| {
                let start = Instant::now();
                let bytes = serde_json::to_vec(&journal).expect("journal serialises");
                assert!(!bytes.is_empty());
                start.elapsed()
            })
            .collect(),
    );
    println!(
        "postmortem of a {ENTRIES}-entry journal (50 steps over 4 h): read + Markdown {:.1} ms (target ≤ {} ms), + JSON, HTML, SVG {:.1} ms",
        read_md.as_secs_f64() * 1000.0,
        TARGET.as_millis(),
        all.as_secs_f64() * 1000.0
    );
    println!(
        "  sizes: Markdown {} KiB, JSON {} KiB, HTML {} KiB, SVG {} KiB",
        sizes.0 / 1024,
        sizes.1 / 1024,
        sizes.2 / 1024,
        sizes.3 / 1024
    );
    println!(
        "  baseline (the journal to JSON): {:.1} ms; read + Markdown = {:.1}x the baseline",
        baseline.as_secs_f64() * 1000.0,
        read_md.as_secs_f64() / baseline.as_secs_f64()
    );
    if read_md > TARGET {
        println!("  SLOWER than the target");
    }
}
