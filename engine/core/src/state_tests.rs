//! The fold against the same journal applied entry by entry.

use super::*;
use crate::journal::RunCreated;
use medic_model::{Incident, IncidentStatus};

const WORKFLOW: &str = "\
apiVersion: medic/v1
kind: Workflow
name: probe
trigger:
  matchers: ['alertname=\"X\"']
steps:
  - id: check
    phase: verify
    uses: probe.wasm
";

fn entry(seq: u64, event: Event) -> Entry {
    Entry {
        seq,
        at_ms: 1_000 + seq,
        event,
    }
}

fn log(seq: u64, attempt: u32) -> Entry {
    entry(
        seq,
        Event::HostCall {
            step: "check".into(),
            attempt,
            call: HostCall::Annotate {
                message: format!("call {seq}"),
            },
        },
    )
}

fn journal() -> Vec<Entry> {
    let workflow = medic_model::parse_workflow("w.yaml", WORKFLOW)
        .expect("the test workflow parses")
        .workflow;
    let incident = Incident {
        id: "i".into(),
        title: "t".into(),
        severity: "critical".into(),
        status: IncidentStatus::Firing,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        started_at: "2026-01-01T00:00:00Z".into(),
        source: "generic".into(),
        notes: Vec::new(),
    };
    let started = |seq, attempt| {
        entry(
            seq,
            Event::AttemptStarted {
                step: "check".into(),
                attempt,
                idempotency_key: "k".into(),
                params: serde_json::json!({}),
            },
        )
    };
    vec![
        entry(
            0,
            Event::RunCreated(Box::new(RunCreated {
                workflow,
                workflow_file: "w.yaml".into(),
                incident,
                components: BTreeMap::new(),
                drill: false,
            })),
        ),
        started(1, 1),
        log(2, 1),
        log(3, 1),
        entry(
            4,
            Event::AttemptFailed {
                step: "check".into(),
                attempt: 1,
                failure: Failure::new(crate::FailureKind::StepError, true, "not yet"),
                duration_ms: 3,
                retry: Some(RetryPlan {
                    attempt: 2,
                    not_before_ms: 2_000,
                }),
            },
        ),
        started(5, 2),
        log(6, 2),
        log(7, 2),
    ]
}

#[test]
fn the_fold_keeps_only_the_open_attempts_calls_as_applying_each_entry_does() {
    let entries = journal();
    let folded = RunState::fold("r", &entries).unwrap();
    let mut applied = RunState::fold("r", &entries[..1]).unwrap();
    for e in &entries[1..] {
        applied.apply(e).unwrap();
    }
    // No state type compares with `==`; the Debug form shows every field (no HTTP
    // responses here, so no map order to differ).
    assert_eq!(format!("{folded:?}"), format!("{applied:?}"));
    let open = &folded.steps["check"];
    assert_eq!(open.status, StepStatus::Running);
    let calls: Vec<String> = open.inflight.calls.iter().map(HostCall::describe).collect();
    assert_eq!(calls, ["annotate \"call 6\"", "annotate \"call 7\""]);

    // Once the attempt ends, nothing is left to replay, whichever way the state was built.
    let mut done = entries.clone();
    done.push(entry(
        8,
        Event::AttemptSucceeded {
            step: "check".into(),
            attempt: 2,
            output: serde_json::json!({}),
            duration_ms: 5,
        },
    ));
    let folded = RunState::fold("r", &done).unwrap();
    applied.apply(&done[8]).unwrap();
    assert_eq!(format!("{folded:?}"), format!("{applied:?}"));
    assert!(folded.steps["check"].inflight.calls.is_empty());
}
