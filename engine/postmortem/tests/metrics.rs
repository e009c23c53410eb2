//! Every metric from the journal entries it is defined on, with expected values worked out
//! by hand from the entry times below; and each absent, with its reason, when its inputs
//! are missing.

use medic_core::journal::RunCreated;
use medic_core::{Entry, Event, Failure, FailureKind, HostCall, HttpOutcome, RetryPlan, RunStatus};
use medic_model::{Decision, IncidentStatus};
use medic_postmortem::Postmortem;
use serde_json::json;

/// 2026-11-22T03:00:00Z, the alert's startsAt: impact start.
const T0: u64 = 1_795_316_400_000;

const WORKFLOW: &str = r#"
apiVersion: medic/v1
kind: Workflow
name: checkout
steps:
  - {id: history, phase: detect, uses: k8s-rollout, with: {action: history}}
  - {id: war-room, phase: communicate, uses: chat-matrix, retry: {attempts: 3, backoff: 2s}}
  - {id: announce, phase: communicate, uses: chat-matrix}
  - {id: undo, phase: restore, uses: k8s-rollout, with: {action: undo}}
  - {id: rolled-out, phase: restore, uses: k8s-rollout, with: {action: status}}
  - {id: health, phase: verify, uses: http-probe}
  - {id: error-rate, phase: verify, uses: prom-check, retry: {attempts: 5, backoff: 2s}}
  - id: resume-rollouts
    phase: follow-up
    gate: {prompt: Resume rollouts?, approvers: [oncall], deadline: 30m, on-deadline: reject}
  - {id: kept-paused, phase: follow-up, uses: chat-matrix, if: '!steps.resume-rollouts.output.approved'}
"#;

const ALERT: &str = r#"{"title": "CheckoutErrorRate", "severity": "critical",
  "labels": {"service": "checkout"}, "startsAt": "2026-11-22T03:00:00Z"}"#;

/// Builds a journal from (offset ms after T0, event); sequence numbers in order.
fn journal(workflow: &str, events: Vec<(u64, Event)>) -> Vec<Entry> {
    let workflow = medic_model::parse_workflow("w.yaml", workflow)
        .expect("test workflow parses")
        .workflow;
    let incident = medic_intake::read_any(ALERT.as_bytes())
        .and_then(medic_intake::Batch::into_alerts)
        .unwrap()[0]
        .to_incident("2026-11-22T03:00:00Z");
    let mut entries = vec![Entry {
        seq: 0,
        at_ms: T0 + 45_000,
        event: Event::RunCreated(Box::new(RunCreated {
            workflow,
            workflow_file: "w.yaml".into(),
            incident,
            components: Default::default(),
            drill: false,
        })),
    }];
    for (i, (offset, event)) in events.into_iter().enumerate() {
        entries.push(Entry {
            seq: i as u64 + 1,
            at_ms: T0 + offset,
            event,
        });
    }
    entries
}

fn start(step: &str, attempt: u32) -> Event {
    Event::AttemptStarted {
        step: step.into(),
        attempt,
        idempotency_key: "k".into(),
        params: json!({}),
    }
}

fn ok(step: &str, attempt: u32, duration_ms: u64) -> Event {
    Event::AttemptSucceeded {
        step: step.into(),
        attempt,
        output: json!({}),
        duration_ms,
    }
}

fn failed(step: &str, attempt: u32, retry_at: Option<u64>) -> Event {
    Event::AttemptFailed {
        step: step.into(),
        attempt,
        failure: Failure::new(FailureKind::StepError, true, "HTTP 502"),
        duration_ms: 1_000,
        retry: retry_at.map(|at| RetryPlan {
            attempt: attempt + 1,
            not_before_ms: T0 + at,
        }),
    }
}

/// The whole incident: every phase, a retry in communicate and verify, a gate a person
/// decided, the incident resolved while the gate waited.
fn full_incident() -> Vec<Entry> {
    journal(
        WORKFLOW,
        vec![
            (45_100, start("history", 1)),
            (45_600, ok("history", 1, 500)),
            (46_000, start("war-room", 1)),
            (47_000, failed("war-room", 1, Some(49_000))),
            (49_000, start("war-room", 2)),
            (50_500, ok("war-room", 2, 1_500)), // first communicate success: T+50.5 s
            (51_000, start("announce", 1)),
            (52_000, ok("announce", 1, 1_000)),
            (52_000, start("undo", 1)),
            (
                53_000,
                Event::HostCall {
                    step: "undo".into(),
                    attempt: 1,
                    call: HostCall::HttpRequest {
                        id: 1,
                        method: "PATCH".into(),
                        url: "http://k8s:6443/apis/apps/v1/deployments/checkout?token=x".into(),
                        headers: vec![],
                        body: Default::default(),
                    },
                },
            ),
            (
                54_000,
                Event::HostCall {
                    step: "undo".into(),
                    attempt: 1,
                    call: HostCall::HttpResponse {
                        id: 1,
                        outcome: HttpOutcome::Response {
                            status: 200,
                            headers: vec![],
                            body: Default::default(),
                        },
                        duration_ms: 1_000,
                    },
                },
            ),
            (55_000, ok("undo", 1, 3_000)),
            (55_000, start("rolled-out", 1)),
            (70_000, ok("rolled-out", 1, 15_000)), // last restore success: T+70 s
            (70_000, start("health", 1)),
            (71_000, ok("health", 1, 1_000)),
            (71_000, start("error-rate", 1)),
            (74_000, failed("error-rate", 1, Some(76_000))),
            (76_000, start("error-rate", 2)),
            (80_000, ok("error-rate", 2, 4_000)), // verify passed: T+80 s
            (
                81_000,
                Event::GateOpened {
                    step: "resume-rollouts".into(),
                    prompt: "Resume rollouts?".into(),
                    approvers: vec!["oncall".into()],
                    deadline_ms: T0 + 81_000 + 1_800_000,
                    on_deadline: Decision::Reject,
                },
            ),
            (
                100_000, // resolved: T+100 s
                Event::IncidentUpdated {
                    status: IncidentStatus::Resolved,
                },
            ),
            (
                201_000, // decided 120 s after the gate opened
                Event::GateDecided {
                    step: "resume-rollouts".into(),
                    decision: Decision::Approve,
                    by: "oncall".into(),
                    by_deadline: false,
                    comment: Some("the fix is in the pipeline".into()),
                },
            ),
            (
                201_000,
                Event::StepSkipped {
                    step: "kept-paused".into(),
                    reason: "condition is false".into(),
                },
            ),
            (
                202_000,
                Event::RunFinished {
                    status: RunStatus::Succeeded,
                    reason: None,
                },
            ),
        ],
    )
}

#[test]
fn every_metric_comes_from_its_entries() {
    let j = full_incident();
    let pm = Postmortem::from_journals([("run-1", &j)]).unwrap();
    let m = pm.metrics();
    // run_created at T+45 s.
    assert_eq!(m.time_to_detect.seconds, Some(45.0));
    assert_eq!(
        m.time_to_detect.from.as_deref(),
        Some("2026-11-22T03:00:00.000Z")
    );
    assert_eq!(
        m.time_to_detect.to.as_deref(),
        Some("2026-11-22T03:00:45.000Z")
    );
    // war-room's second attempt succeeded at T+50.5 s (its first failed and does not count).
    assert_eq!(m.time_to_communicate.seconds, Some(50.5));
    assert!(
        m.time_to_communicate
            .source
            .as_ref()
            .unwrap()
            .contains("war-room")
    );
    // rolled-out, the last restore step, at T+70 s.
    assert_eq!(m.time_to_mitigate.seconds, Some(70.0));
    assert_eq!(m.time_to_mitigate.text, "1 m 10 s");
    assert!(
        m.time_to_mitigate
            .source
            .as_ref()
            .unwrap()
            .contains("rolled-out")
    );
    // error-rate, after its retry, at T+80 s.
    assert_eq!(m.time_to_verified.seconds, Some(80.0));
    // incident_updated resolved at T+100 s.
    assert_eq!(m.time_to_resolve.seconds, Some(100.0));
    // The gate waited 201 - 81 = 120 s.
    assert_eq!(m.waiting_on_people.seconds, Some(120.0));
    assert_eq!(m.waiting_on_people.text, "2 m 0 s");
    // 7 component steps, 9 attempts (war-room and error-rate twice); 1 gate by a person.
    assert_eq!(
        (
            m.actions.automated,
            m.actions.automated_attempts,
            m.actions.by_people,
            m.actions.by_deadline
        ),
        (7, 9, 1, 0)
    );
    for metric in [
        &m.time_to_detect,
        &m.time_to_communicate,
        &m.time_to_mitigate,
        &m.time_to_verified,
        &m.time_to_resolve,
        &m.waiting_on_people,
    ] {
        assert_eq!(metric.absent, None, "{metric:?}");
    }
    let f = pm.facts();
    assert_eq!(f.impact.seconds, Some(100.0));
    assert_eq!(f.incident.status, "resolved");
    assert_eq!(
        f.restore.iter().map(|r| r.kind).collect::<Vec<_>>(),
        ["rollback", "wait"]
    );
    let gate = &f.gates[0];
    assert_eq!(
        (gate.decision, gate.by.as_deref(), gate.comment.as_deref()),
        (
            Some("approved"),
            Some("oncall"),
            Some("the fix is in the pipeline")
        )
    );
    // The exchange is one line, its query string (which could hold a token) left out.
    let http: Vec<_> = f.timeline.iter().filter(|r| r.kind == "http").collect();
    assert_eq!(http.len(), 1);
    assert_eq!(
        http[0].text,
        "PATCH k8s:6443/apis/apps/v1/deployments/checkout → 200 in 1.0 s"
    );
    assert_eq!(http[0].t, "T+00:54");
    assert!(!pm.json().contains("token=x"));
}

#[test]
fn metrics_are_absent_with_a_reason_when_their_inputs_are() {
    // No communicate or verify step; the restore step fails for good; nothing resolves;
    // no gate.
    let workflow = r#"
apiVersion: medic/v1
kind: Workflow
name: bare
steps:
  - {id: flip, phase: restore, uses: flags-unleash, with: {action: disable}}
"#;
    let j = journal(
        workflow,
        vec![
            (46_000, start("flip", 1)),
            (47_000, failed("flip", 1, None)),
            (
                48_000,
                Event::RunFinished {
                    status: RunStatus::Failed,
                    reason: Some("step flip failed".into()),
                },
            ),
        ],
    );
    let pm = Postmortem::from_journals([("run-2", &j)]).unwrap();
    let m = pm.metrics();
    assert_eq!(m.time_to_detect.seconds, Some(45.0));
    let absent = |metric: &medic_postmortem::Metric| {
        assert_eq!(metric.seconds, None);
        assert_eq!(metric.text, "unknown");
        metric.absent.clone().expect("a reason")
    };
    assert_eq!(
        absent(&m.time_to_communicate),
        "the workflow has no communicate step"
    );
    assert_eq!(
        absent(&m.time_to_mitigate),
        "restore step flip failed in run run-2"
    );
    assert_eq!(
        absent(&m.time_to_verified),
        "the workflow has no verify step"
    );
    assert!(absent(&m.time_to_resolve).starts_with("no run journalled the incident as resolved"));
    assert_eq!(
        absent(&m.waiting_on_people),
        "no gate opened: nothing waited on people"
    );
    assert!(
        pm.markdown()
            .contains("unknown: the workflow has no verify step")
    );
    assert!(
        pm.facts()
            .summary
            .contains("No restore is recorded as done")
    );

    // A verify step that never passed (skipped after the failure) is named.
    let with_verify = format!("{workflow}  - {{id: probe, phase: verify, uses: http-probe}}\n");
    let j = journal(
        &with_verify,
        vec![
            (46_000, start("flip", 1)),
            (47_000, ok("flip", 1, 1_000)),
            (47_000, start("probe", 1)),
            (48_000, failed("probe", 1, None)),
        ],
    );
    let pm = Postmortem::from_journals([("run-3", &j)]).unwrap();
    assert_eq!(pm.metrics().time_to_mitigate.seconds, Some(47.0));
    assert_eq!(
        pm.metrics().time_to_verified.absent.as_deref(),
        Some("verify step probe failed in run run-3")
    );
    assert_eq!(pm.facts().runs[0].status, "running");
}

#[test]
fn a_start_time_after_the_alert_is_not_turned_into_a_negative_time_to_detect() {
    let mut j = full_incident();
    let Event::RunCreated(created) = &mut j[0].event else {
        unreachable!()
    };
    created.incident.started_at = "2026-11-22T04:00:00Z".into();
    let pm = Postmortem::from_journals([("run-1", &j)]).unwrap();
    assert!(
        pm.metrics()
            .time_to_detect
            .absent
            .as_ref()
            .unwrap()
            .contains("clocks")
    );
    // Offsets then count from the alert's arrival.
    assert_eq!(pm.facts().impact.start, "2026-11-22T03:00:45.000Z");
    assert_eq!(pm.metrics().time_to_mitigate.seconds, Some(25.0));
}

#[test]
fn journals_that_are_not_runs_are_refused_by_name() {
    let mut j = full_incident();
    j.remove(3);
    let err = Postmortem::from_journals([("run-x", &j)]).err().unwrap();
    assert!(err.to_string().starts_with("run run-x: entry 4"), "{err}");
    let none: [(&str, &[Entry]); 0] = [];
    assert!(Postmortem::from_journals(none).is_err());
}

#[test]
fn the_same_journal_gives_the_same_bytes() {
    let j = full_incident();
    let a = Postmortem::from_journals([("run-1", &j)]).unwrap();
    let b = Postmortem::from_journals([("run-1", j.clone())]).unwrap();
    assert_eq!(a.markdown(), b.markdown());
    assert_eq!(a.json(), b.json());
    assert_eq!(a.html(), b.html());
    assert_eq!(a.svg(), b.svg());
}

#[test]
fn a_team_template_sees_the_facts_and_typos_fail_by_line() {
    let j = full_incident();
    let pm = Postmortem::from_journals([("run-1", &j)])
        .unwrap()
        .with_external_url("https://medic.example.com/");
    let out = pm
        .render_template(
            "team.md",
            "# {{ incident.title }}\nmitigated in {{ metrics.time_to_mitigate.text }}; {{ runs[0].postmortem_url }}\n",
        )
        .unwrap();
    assert_eq!(
        out,
        "# CheckoutErrorRate\nmitigated in 1 m 10 s; https://medic.example.com/api/runs/run-1/postmortem\n"
    );
    let err = pm
        .render_template("team.md", "ok\n{{ metrics.time_to_mitigat.text }}\n")
        .unwrap_err();
    assert!(
        err.to_string().starts_with("template team.md, line 2: "),
        "{err}"
    );
}

#[test]
fn run_context_gives_templates_the_run_and_its_metrics() {
    let j = full_incident();
    let ctx = medic_postmortem::run_context("run-1", &j, Some("https://medic.example.com"));
    assert_eq!(ctx["id"], "run-1");
    assert_eq!(ctx["url"], "https://medic.example.com/runs/run-1");
    assert_eq!(ctx["metrics"]["time_to_mitigate"]["text"], "1 m 10 s");
    assert_eq!(ctx["metrics"]["time_to_mitigate"]["seconds"], 70.0);
    let bare = medic_postmortem::run_context("run-1", &j, None);
    assert_eq!(bare["postmortem_url"], serde_json::Value::Null);
}
