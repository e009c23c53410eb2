use crate::support::{engine_with, new_run};
use medic_core::{FailureKind, RunState, RunStatus};

/// Runs `hostile` in `mode` as the first step (allowed to fail), then a healthy step.
/// Returns the hostile step's failure.
async fn hostile(mode: &str, extra: &str) -> medic_core::Failure {
    let t = engine_with(&[("GRANTED", "s3cr3t-value")], None);
    let yaml = format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: hostile-{mode}\nsteps:\n  - id: bad\n    phase: restore\n    uses: hostile\n    with: {{ mode: {mode}, url: 'http://127.0.0.1:1/' }}\n    continue-on-error: true\n{extra}  - id: after\n    phase: verify\n    uses: echo\n    with: {{ hello: world }}\n"
    );
    let run = t.engine.create_run(new_run(&yaml)).unwrap();
    let status = t.engine.drive(&run).await.unwrap();
    // Only the hostile step failed: the next step ran and the run succeeded.
    assert_eq!(status, RunStatus::Succeeded, "mode {mode}");
    let state = RunState::load(t.store.as_ref(), &run).unwrap();
    assert_eq!(
        state.steps["after"].output.as_ref().unwrap()["params"]["hello"],
        "world"
    );

    // And the engine is fine: a fresh run in the same process succeeds.
    let ok = t
        .engine
        .create_run(new_run("apiVersion: medic/v1\nkind: Workflow\nname: ok\nsteps:\n  - id: fine\n    phase: verify\n    uses: hostile\n    with: { mode: ok }\n"))
        .unwrap();
    assert_eq!(t.engine.drive(&ok).await.unwrap(), RunStatus::Succeeded);

    state.steps["bad"]
        .last_failure
        .clone()
        .expect("hostile step failed")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_loops_forever_times_out() {
    let started = std::time::Instant::now();
    let f = hostile("loop", "    timeout: 1s\n").await;
    assert_eq!(f.kind, FailureKind::Timeout, "{f}");
    assert_eq!(
        f.to_string(),
        "timed out: timed out after 1s (the step's timeout)"
    );
    assert!(started.elapsed().as_secs() < 20, "the loop was stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_allocates_without_bound_hits_the_memory_limit() {
    let f = hostile("alloc", "    limits: { memory: 32MiB }\n").await;
    assert_eq!(f.kind, FailureKind::MemoryLimit, "{f}");
    assert!(f.message.contains("limit is 33554432 bytes"), "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_calling_a_host_it_was_not_granted_is_denied() {
    let f = hostile("forbidden-host", "    allow: [example.org]\n").await;
    assert_eq!(f.message, "host not allowed: 127.0.0.1:1", "{f}");
    assert!(!f.retryable);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_asking_for_an_ungranted_secret_gets_none() {
    let f = hostile("forbidden-secret", "    secrets: [GRANTED]\n").await;
    assert_eq!(f.message, "secret not granted: NOT_GRANTED", "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_traps_fails_its_step() {
    let f = hostile("trap", "").await;
    assert_eq!(f.kind, FailureKind::Trap, "{f}");
    assert!(f.message.starts_with("trap: "), "{f}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_returning_10_mb_is_refused() {
    let f = hostile("big-output", "").await;
    assert_eq!(f.kind, FailureKind::OutputTooLarge, "{f}");
    assert!(f.message.contains("limit is 1048576 bytes"), "{f}");
}
