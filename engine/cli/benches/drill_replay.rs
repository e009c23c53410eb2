//! Replaying a recorded 4-hour incident, printed as figures (no criterion):
//!
//! The incident: 60 steps over the five phases, 3 gates with 20-minute deadlines decided
//! 15 minutes in, 24 verify checks that fail six times each (HTTP 503) with 80-second
//! backoffs before they pass, 201 recorded exchanges, about four hours from the alert to
//! the end. Every step is the real `http-probe` component in the real sandbox; every
//! request is answered from the recording.
//!
//! Figures: wall time of one replay (target on the 2-core reference machine: <= 1 s),
//! the virtual time it covered, and the drill file's size per exchange (YAML and JSON).
//!
//! `cargo bench -p medic-cli --bench drill_replay`

use medic_drill::format::{Answer, DrillBody, DrillFile, Exchange, GateDecision, Offset, Request};
use medic_drill::{Env, Options, Report, Setup, Syntax};
use medic_model::{Decision, Gate, Incident, IncidentStatus, Phase, Retry, Step, Workflow};
use medic_sandbox::{Sandbox, SandboxConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const START_MS: u64 = 1_790_000_000_000;
const MIN: u64 = 60_000;

fn probe(id: &str, phase: Phase, attempts: u32, backoff_ms: u64) -> Step {
    let retry = Retry {
        attempts,
        backoff_ms,
        factor: 1.0,
        ..Retry::default()
    };
    Step {
        id: id.into(),
        phase,
        uses: "http-probe".into(),
        gate: None,
        with: json!({"url": format!("http://127.0.0.1:9/{id}"), "expect_status": [200]}),
        condition: None,
        retry,
        timeout_ms: Some(30_000),
        secrets: vec![],
        allow: vec!["127.0.0.1:9".into()],
        limits: Default::default(),
        tls: Vec::new(),
        continue_on_error: false,
    }
}

fn gate(id: &str) -> Step {
    Step {
        gate: Some(Gate {
            prompt: format!("{id}: go on?"),
            approvers: vec!["oncall".into()],
            deadline_ms: 20 * MIN,
            on_deadline: Decision::Reject,
        }),
        uses: String::new(),
        ..probe(id, Phase::Restore, 1, 0)
    }
}

/// The workflow and its recording.
fn incident() -> (Workflow, DrillFile) {
    let mut steps = Vec::new();
    let mut exchanges = Vec::new();
    let mut decisions = Vec::new();
    let mut at = 0;
    let ok = |id: &str, at: u64, status: u16, exchanges: &mut Vec<Exchange>| {
        exchanges.push(Exchange {
            step: id.into(),
            attempt: 1,
            at: Offset(at),
            request: Request {
                method: "GET".into(),
                url: format!("http://127.0.0.1:9/{id}"),
                headers: BTreeMap::new(),
                body: None,
            },
            response: Answer {
                status: Some(status),
                headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
                body: Some(DrillBody::Json(
                    json!({"status": if status == 200 {"ok"} else {"unavailable"}, "checked": id}),
                )),
                error: None,
            },
            latency: Offset(40),
        });
    };
    for (phase, n) in [(Phase::Detect, 6), (Phase::Communicate, 6)] {
        for i in 0..n {
            let id = format!("{}-{i}", phase.as_str());
            steps.push(probe(&id, phase, 3, 10_000));
            ok(&id, at, 200, &mut exchanges);
            at += 1_000;
        }
    }
    for i in 0..14 {
        if i % 5 == 2 {
            let id = format!("gate-{i}");
            steps.push(gate(&id));
            decisions.push(GateDecision {
                step: id,
                after: Offset(15 * MIN),
                decision: Decision::Approve,
                by: "oncall".into(),
                comment: Some("looks right".into()),
            });
            at += 15 * MIN;
            continue;
        }
        let id = format!("restore-{i}");
        steps.push(probe(&id, Phase::Restore, 3, 30_000));
        ok(&id, at, 200, &mut exchanges);
        at += 1_000;
    }
    for i in 0..24 {
        let id = format!("verify-{i}");
        steps.push(probe(&id, Phase::Verify, 7, 80_000));
        for _ in 0..6 {
            ok(&id, at, 503, &mut exchanges);
            at += 80_000;
        }
        ok(&id, at, 200, &mut exchanges);
    }
    for i in 0..10 {
        let id = format!("follow-up-{i}");
        steps.push(probe(&id, Phase::FollowUp, 3, 10_000));
        ok(&id, at, 200, &mut exchanges);
    }
    let workflow = Workflow {
        name: "four-hour-incident".into(),
        description: "bench".into(),
        trigger: Default::default(),
        steps,
        on_resolved: Default::default(),
        vars: Default::default(),
    };
    let drill = DrillFile {
        medic_drill: medic_drill::FORMAT_VERSION,
        name: "four-hour incident".into(),
        description: None,
        recorded_from: Some("0000019c0000-bench000".into()),
        external_url: None,
        started_at_ms: START_MS,
        incident: Incident {
            id: "bench".into(),
            title: "Checkout error rate".into(),
            severity: "critical".into(),
            status: IncidentStatus::Firing,
            labels: Default::default(),
            annotations: Default::default(),
            started_at: medic_core::clock::rfc3339(START_MS),
            source: "bench".into(),
            notes: Vec::new(),
        },
        workflow_file: None,
        workflow: Some(workflow.clone()),
        incident_updates: vec![],
        decisions,
        exchanges,
        matching: Default::default(),
        faults: vec![],
        original: None,
    };
    (workflow, drill)
}

fn main() {
    let (workflow, drill) = incident();
    let components = workflow
        .steps
        .iter()
        .filter(|s| !s.is_gate())
        .map(|s| (s.id.clone(), medic_test_programs::HTTP_PROBE.to_string()))
        .collect();
    let setup = Setup {
        workflow,
        workflow_file: "(bench)".into(),
        components,
    };
    let cache = tempfile_dir();
    let sandbox = Arc::new(
        Sandbox::new(SandboxConfig {
            cache_dir: Some(cache.clone()),
            ..SandboxConfig::default()
        })
        .expect("sandbox"),
    );
    let env = Env {
        store: None,
        runner: sandbox,
        secrets: None,
        observer: None,
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let opts = Options::default();
    // The first replay compiles the component; the figures are for the ones after.
    let first = rt
        .block_on(medic_drill::replay::run(&drill, &setup, &opts, &env))
        .expect("replay");
    let report = Report::new(&drill, &setup, &opts, &first).expect("report");
    assert!(report.replay.restored(), "{}", report.text());
    assert!(report.divergences.is_empty(), "{}", report.text());
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let r = rt
                .block_on(medic_drill::replay::run(&drill, &setup, &opts, &env))
                .expect("replay");
            let el = t.elapsed();
            assert_eq!(r.entries.len(), first.entries.len());
            el
        })
        .collect();
    times.sort();
    let yaml = medic_drill::write(&drill, Syntax::Yaml);
    // A baseline measured in the same run, for a loaded or slower machine: reading the
    // drill file (YAML with positions, then the typed file), pure CPU like the replay.
    let mut base: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let parsed = medic_drill::parse("bench.yaml", &yaml).expect("the drill reads back");
            assert_eq!(parsed.exchanges.len(), drill.exchanges.len());
            t.elapsed()
        })
        .collect();
    base.sort();
    let json = medic_drill::write(&drill, Syntax::Json);
    let n = drill.exchanges.len();
    println!(
        "replay of a {}-step, {n}-exchange, {}-gate incident covering {} of virtual time ({} journal entries):",
        setup.workflow.steps.len(),
        drill.decisions.len(),
        report.replay.duration,
        first.entries.len()
    );
    println!(
        "  wall time: median {:.0} ms, min {:.0} ms, max {:.0} ms (target <= 1000 ms)",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "  baseline (reading the drill file): median {:.0} ms; replay = {:.1}x the baseline",
        base[base.len() / 2].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() / base[base.len() / 2].as_secs_f64()
    );
    println!(
        "  drill file: YAML {} bytes ({} per exchange), JSON {} bytes ({} per exchange)",
        yaml.len(),
        yaml.len() / n,
        json.len(),
        json.len() / n
    );
    let _ = std::fs::remove_dir_all(cache);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("medic-drill-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("cache dir");
    d
}
