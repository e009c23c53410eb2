use crate::support::{engine_with, new_run};
use medic_core::{Event, FailureKind, JournalStore, RunState, RunStatus};

const HEAD: &str = "apiVersion: medic/v1\nkind: Workflow\nname: semantics\nsteps:\n";

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_runs_again_and_step_state_carries_over() {
    let t = engine_with(&[], None);
    let yaml = format!(
        "{HEAD}  - id: wait\n    phase: verify\n    uses: echo\n    with: {{ state_key: rev, state_value: '7', retry_after_ms: 20, retry_until_attempt: 3 }}\n    retry: {{ attempts: 3, backoff: 10ms }}\n"
    );
    let run = t.engine.create_run(new_run(&yaml)).unwrap();
    assert_eq!(t.engine.drive(&run).await.unwrap(), RunStatus::Succeeded);
    let entries = t.store.entries(&run).unwrap();
    let not_ready: Vec<_> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::AttemptFailed { failure, retry, .. } => Some((failure.kind, retry.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(not_ready.len(), 2, "{not_ready:?}");
    assert!(
        not_ready
            .iter()
            .all(|(k, r)| *k == FailureKind::NotReady && r.is_some())
    );
    let state = RunState::fold(&run, &entries).unwrap();
    let out = state.steps["wait"].output.as_ref().unwrap();
    assert_eq!(out["attempt"], 3);
    // Attempt 3 saw what attempt 2 stored: durable per-step state.
    assert_eq!(out["previous"], "7");
}

#[tokio::test(flavor = "multi_thread")]
async fn conditions_skip_and_templates_read_earlier_outputs() {
    let t = engine_with(&[], None);
    let yaml = format!(
        "{HEAD}  - id: first\n    phase: detect\n    uses: echo\n    with: {{ n: 41, who: '{{{{ incident.labels.service }}}}' }}\n  - id: skipped\n    phase: restore\n    if: steps.first.output.params.n > 100\n    uses: echo\n  - id: second\n    phase: verify\n    uses: echo\n    with: {{ got: '{{{{ steps.first.output.params.n }}}}', text: 'n={{{{ steps.first.output.params.n }}}} for {{{{ steps.first.output.params.who }}}}', skipped: '{{{{ steps.skipped.status }}}}' }}\n"
    );
    let run = t.engine.create_run(new_run(&yaml)).unwrap();
    assert_eq!(t.engine.drive(&run).await.unwrap(), RunStatus::Succeeded);
    let state = RunState::load(t.store.as_ref(), &run).unwrap();
    assert_eq!(state.steps["skipped"].status.as_str(), "skipped");
    let p = &state.steps["second"].output.as_ref().unwrap()["params"];
    assert_eq!(p["got"], 41, "a whole-value template keeps the JSON type");
    assert_eq!(p["text"], "n=41 for checkout");
    assert_eq!(p["skipped"], "skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_step_stops_the_run_and_later_steps_are_not_run() {
    let t = engine_with(&[], None);
    let yaml = format!(
        "{HEAD}  - id: restore\n    phase: restore\n    uses: echo\n    with: {{ fail: 'flag service said 403 forbidden', retryable: false }}\n    retry: {{ attempts: 3, backoff: 10ms }}\n  - id: verify\n    phase: verify\n    uses: echo\n"
    );
    let run = t.engine.create_run(new_run(&yaml)).unwrap();
    assert_eq!(t.engine.drive(&run).await.unwrap(), RunStatus::Failed);
    let state = RunState::load(t.store.as_ref(), &run).unwrap();
    // Not retryable: one attempt only, despite `attempts: 3`.
    assert_eq!(state.steps["restore"].attempt, 1);
    assert_eq!(state.steps["verify"].status.as_str(), "skipped");
    assert_eq!(
        state.reason.as_deref(),
        Some("step restore failed: step error: flag service said 403 forbidden")
    );
}

/// The step itself puts the secret everywhere the host records something: a log line,
/// a note, step state, an HTTP header and body, its output and its error.
#[tokio::test(flavor = "multi_thread")]
async fn secret_values_never_reach_the_journal() {
    let service = crate::support::StandIn::start();
    let t = engine_with(&[("TOKEN", "tok-1234567890")], None);
    let yaml = format!(
        "{HEAD}  - id: leak\n    phase: communicate\n    uses: hostile\n    with: {{ mode: leak-secret, secret: TOKEN, url: '{}/chat' }}\n    secrets: [TOKEN]\n    allow: [127.0.0.1]\n",
        service.url()
    );
    let run = t.engine.create_run(new_run(&yaml)).unwrap();
    assert_eq!(t.engine.drive(&run).await.unwrap(), RunStatus::Succeeded);
    let entries = t.store.entries(&run).unwrap();
    let journal = serde_json::to_string(&entries).unwrap();
    assert!(!journal.contains("tok-1234567890"), "{journal}");
    for redacted in [
        "the token is [redacted:TOKEN]",
        "Bearer [redacted:TOKEN]",
        "token=[redacted:TOKEN]",
        r#""token":"[redacted:TOKEN]""#,
    ] {
        assert!(
            journal.contains(redacted),
            "missing {redacted} in {journal}"
        );
    }
    // The service did get the real value: redaction is for records, not for the step.
    let chat = service.get("/chat");
    assert_eq!(chat["messages"][0], "token=tok-1234567890");
}
