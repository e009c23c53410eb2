//! The representative records the golden files hold: one value per journal event and
//! host call variant, and the run meta, built here so the test can compare them.

use super::{Case, Record, kind};
use medic_core::journal::RunCreated;
use medic_core::{
    Body, ClockKind, Entry, Event, Failure, FailureKind, HostCall, HttpOutcome, Level, RetryPlan,
    RunMeta, RunStatus,
};
use medic_model::{
    Decision, Gate, Incident, IncidentStatus, Limits, MatchOp, Matcher, OnResolved, Phase, Retry,
    Step, Trigger, Workflow,
};
use serde_json::json;
use std::collections::BTreeMap;
const AT: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const STEP: &str = "retoggle";

fn entry(seq: u64, event: Event) -> Entry {
    Entry {
        seq,
        at_ms: AT + seq * 7,
        event,
    }
}

fn call(seq: u64, call: HostCall) -> Entry {
    entry(
        seq,
        Event::HostCall {
            step: STEP.into(),
            attempt: 2,
            call,
        },
    )
}

fn workflow() -> Workflow {
    let probe = Step {
        id: "confirm".into(),
        phase: Phase::Detect,
        uses: "http-probe".into(),
        gate: None,
        with: json!({"url": "{{ incident.annotations.service_url }}/health", "expect_status": 200}),
        condition: None,
        retry: Retry::default(),
        timeout_ms: Some(5_000),
        secrets: vec![],
        allow: vec!["127.0.0.1".into()],
        limits: Limits::default(),
        tls: Vec::new(),
        continue_on_error: true,
    };
    let retoggle = Step {
        id: STEP.into(),
        phase: Phase::Restore,
        uses: "flag-toggle".into(),
        gate: None,
        with: json!({"flag": "new-checkout", "enabled": false}),
        condition: Some("steps.confirm.status == \"failed\"".into()),
        retry: Retry {
            attempts: 3,
            backoff_ms: 1_000,
            factor: 2.0,
            max_backoff_ms: 60_000,
        },
        timeout_ms: None,
        secrets: vec!["FLAGS_TOKEN".into()],
        allow: vec![
            "flags.example.com".into(),
            "*.internal.example.com:8443".into(),
        ],
        limits: Limits {
            memory_bytes: Some(32 << 20),
            output_bytes: Some(65_536),
        },
        tls: Vec::new(),
        continue_on_error: false,
    };
    Workflow {
        name: "checkout-bad-flag".into(),
        description: "Turn the new-checkout flag off when checkout fails.".into(),
        trigger: Trigger {
            matchers: vec![Matcher {
                label: "alertname".into(),
                op: MatchOp::Eq,
                value: "CheckoutErrorRate".into(),
            }],
            severity: vec!["critical".into()],
            source: vec![],
            group_by: vec![],
        },
        steps: vec![probe, retoggle],
        on_resolved: OnResolved::Continue,
        vars: Default::default(),
    }
}

/// A workflow with the parts added after the first golden files: a gate step and
/// `on-resolved`. Its own file, so the original `run_created.bin` keeps proving that
/// journals written before them still read.
fn gated_workflow() -> Workflow {
    let mut w = workflow();
    w.on_resolved = OnResolved::Cancel;
    w.steps.push(Step {
        id: "rollback-gate".into(),
        phase: Phase::Restore,
        uses: String::new(),
        gate: Some(Gate {
            prompt: "Checkout still failing: roll back {{ incident.labels.service }}?".into(),
            approvers: vec!["alice".into(), "bob".into()],
            deadline_ms: 20 * 60_000,
            on_deadline: Decision::Approve,
        }),
        with: json!({}),
        condition: None,
        retry: Retry::default(),
        timeout_ms: None,
        secrets: vec![],
        allow: vec![],
        limits: Limits::default(),
        tls: Vec::new(),
        continue_on_error: false,
    });
    w
}

fn incident() -> Incident {
    Incident {
        id: "inc-7f3a".into(),
        title: "CheckoutErrorRate — checkout 5xx above 5%".into(),
        severity: "critical".into(),
        status: IncidentStatus::Firing,
        labels: BTreeMap::from([
            ("alertname".into(), "CheckoutErrorRate".into()),
            ("service".into(), "checkout".into()),
        ]),
        annotations: BTreeMap::from([("service_url".into(), "http://127.0.0.1:18080".into())]),
        started_at: "2026-01-01T00:00:00Z".into(),
        source: "alertmanager".into(),
        notes: Vec::new(),
    }
}

/// Every golden record. Entries are named by `kind`; a suffix marks a second case of
/// the same variant.
pub(super) fn cases() -> Vec<Case> {
    let created = entry(
        0,
        Event::RunCreated(Box::new(RunCreated {
            workflow: workflow(),
            workflow_file: "examples/checkout-flag/workflow.yaml".into(),
            incident: incident(),
            components: BTreeMap::from([
                (
                    "confirm".into(),
                    "/var/lib/medic/steps/http-probe.wasm".into(),
                ),
                (STEP.into(), "/var/lib/medic/steps/flag-toggle.wasm".into()),
            ]),
            drill: false,
        })),
    );
    let entries: Vec<(&str, Entry)> = vec![
        ("", created),
        (
            "",
            entry(
                1,
                Event::StepSkipped {
                    step: "confirm".into(),
                    reason: "condition is false: steps.confirm.status == \"failed\"".into(),
                },
            ),
        ),
        (
            "",
            entry(
                2,
                Event::AttemptStarted {
                    step: STEP.into(),
                    attempt: 2,
                    idempotency_key: "0194a1b2c3d4-5e6f7a8b/retoggle".into(),
                    params: json!({"flag": "new-checkout", "enabled": false}),
                },
            ),
        ),
        (
            "",
            call(
                3,
                HostCall::Log {
                    level: Level::Warn,
                    message: "token ******** accepted; disabling new-checkout".into(),
                },
            ),
        ),
        (
            "",
            call(
                4,
                HostCall::Annotate {
                    message: "new-checkout disabled at 00:00:03Z".into(),
                },
            ),
        ),
        (
            "",
            call(
                5,
                HostCall::SecretRead {
                    name: "FLAGS_TOKEN".into(),
                    granted: true,
                    present: true,
                },
            ),
        ),
        (
            "",
            call(
                6,
                HostCall::StateSet {
                    key: "previous".into(),
                    value: "enabled".into(),
                },
            ),
        ),
        (
            "",
            call(
                7,
                HostCall::HttpRequest {
                    id: 0,
                    method: "POST".into(),
                    url: "https://flags.example.com/v1/flags/new-checkout".into(),
                    headers: vec![
                        ("authorization".into(), "Bearer ********".into()),
                        ("content-type".into(), "application/json".into()),
                        (
                            "idempotency-key".into(),
                            "0194a1b2c3d4-5e6f7a8b/retoggle".into(),
                        ),
                    ],
                    body: Body::Text(r#"{"enabled":false}"#.into()),
                },
            ),
        ),
        (
            "_no_body",
            call(
                8,
                HostCall::HttpRequest {
                    id: 1,
                    method: "GET".into(),
                    url: "http://127.0.0.1:18080/health".into(),
                    headers: vec![],
                    body: Body::Empty,
                },
            ),
        ),
        (
            "",
            call(
                9,
                HostCall::HttpResponse {
                    id: 0,
                    outcome: HttpOutcome::Response {
                        status: 200,
                        headers: vec![("content-type".into(), "application/json".into())],
                        body: Body::Text(r#"{"flag":"new-checkout","enabled":false}"#.into()),
                    },
                    duration_ms: 84,
                },
            ),
        ),
        (
            "_binary_body",
            call(
                10,
                HostCall::HttpResponse {
                    id: 1,
                    outcome: HttpOutcome::Response {
                        status: 200,
                        headers: vec![],
                        body: Body::from_bytes(&[0x00, 0xff, 0x10, 0x80]),
                    },
                    duration_ms: 3,
                },
            ),
        ),
        (
            "_error",
            call(
                11,
                HostCall::HttpResponse {
                    id: 2,
                    outcome: HttpOutcome::Error {
                        message: "connection refused".into(),
                    },
                    duration_ms: 1,
                },
            ),
        ),
        (
            "",
            call(
                12,
                HostCall::HttpDenied {
                    method: "GET".into(),
                    url: "https://evil.example.net/exfil".into(),
                    host: "evil.example.net".into(),
                },
            ),
        ),
        (
            "",
            call(
                13,
                HostCall::Clock {
                    clock: ClockKind::Wall,
                    ns: 1_767_225_600_123_456_789,
                },
            ),
        ),
        (
            "_monotonic",
            call(
                14,
                HostCall::Clock {
                    clock: ClockKind::Monotonic,
                    ns: 52_000_117,
                },
            ),
        ),
        (
            "",
            call(
                15,
                HostCall::Random {
                    hex: "9f86d081884c7d65".into(),
                    seed: false,
                },
            ),
        ),
        (
            "_seed",
            call(
                25,
                HostCall::Random {
                    hex: "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9".into(),
                    seed: true,
                },
            ),
        ),
        (
            "",
            entry(
                16,
                Event::AttemptSucceeded {
                    step: STEP.into(),
                    attempt: 2,
                    output: json!({"flag": "new-checkout", "enabled": false, "changed": true}),
                    duration_ms: 131,
                },
            ),
        ),
        (
            "",
            entry(
                17,
                Event::AttemptFailed {
                    step: STEP.into(),
                    attempt: 1,
                    failure: Failure::new(FailureKind::StepError, true, "flag service: 503"),
                    duration_ms: 97,
                    retry: Some(RetryPlan {
                        attempt: 2,
                        not_before_ms: AT + 1_000,
                    }),
                },
            ),
        ),
        (
            "_final",
            entry(
                18,
                Event::AttemptFailed {
                    step: STEP.into(),
                    attempt: 3,
                    failure: Failure::new(
                        FailureKind::Nondeterminism,
                        false,
                        "replay asked for http GET /a, journal has http GET /b",
                    ),
                    duration_ms: 12,
                    retry: None,
                },
            ),
        ),
        (
            "_gate",
            entry(
                20,
                Event::RunCreated(Box::new(RunCreated {
                    workflow: gated_workflow(),
                    workflow_file: "examples/bad-deploy/workflow.yaml".into(),
                    incident: incident(),
                    components: BTreeMap::new(),
                    drill: true,
                })),
            ),
        ),
        (
            "",
            entry(
                21,
                Event::GateOpened {
                    step: "rollback-gate".into(),
                    prompt: "Checkout still failing: roll back checkout?".into(),
                    approvers: vec!["alice".into(), "bob".into()],
                    deadline_ms: AT + 20 * 60_000,
                    on_deadline: Decision::Approve,
                },
            ),
        ),
        (
            "",
            entry(
                22,
                Event::GateDecided {
                    step: "rollback-gate".into(),
                    decision: Decision::Reject,
                    by: "alice".into(),
                    by_deadline: false,
                    comment: Some("error rate already falling".into()),
                },
            ),
        ),
        (
            "_deadline",
            entry(
                23,
                Event::GateDecided {
                    step: "rollback-gate".into(),
                    decision: Decision::Approve,
                    by: "deadline".into(),
                    by_deadline: true,
                    comment: None,
                },
            ),
        ),
        (
            "",
            entry(
                24,
                Event::IncidentUpdated {
                    status: IncidentStatus::Resolved,
                },
            ),
        ),
        (
            "",
            entry(
                19,
                Event::RunFinished {
                    status: RunStatus::Failed,
                    reason: Some("step retoggle failed: nondeterminism".into()),
                },
            ),
        ),
        (
            "",
            entry(
                20,
                Event::StepCancelled {
                    step: "all-clear".into(),
                    reason: "the incident resolved (on-resolved: cancel)".into(),
                },
            ),
        ),
        (
            "_cancelled",
            entry(
                21,
                Event::RunFinished {
                    status: RunStatus::Cancelled,
                    reason: Some(
                        "the incident resolved: 1 step cancelled (on-resolved: cancel)".into(),
                    ),
                },
            ),
        ),
    ];
    let mut out: Vec<Case> = entries
        .into_iter()
        .map(|(suffix, e)| Case {
            file: format!("{}{suffix}.bin", kind(&e.event)),
            record: Record::Entry(e),
        })
        .collect();
    out.push(Case {
        file: "run_meta.bin".into(),
        record: Record::Meta(RunMeta {
            id: "0194a1b2c3d4-5e6f7a8b".into(),
            workflow: "checkout-bad-flag".into(),
            incident_title: "CheckoutErrorRate — checkout 5xx above 5%".into(),
            status: RunStatus::Running,
            created_ms: AT,
            updated_ms: AT + 133,
        }),
    });
    out
}
