//! Components built against every released `medic:step` version run; the version is
//! found from the component's exports; an unknown version is refused by name.

use crate::support::{component, medic, sandbox};
use medic_core::{
    AttemptHost, AttemptRequest, AttemptResult, FailureKind, Grants, Invocation, MemoryStore,
    NewRun, ResolvedLimits, RunJournal, StaticSecrets, StepRunner, SystemClock,
};
use medic_sandbox::WitVersion;
use std::sync::Arc;

/// One attempt of `path` with `params`, as `medic step test` runs it.
async fn attempt(path: &str, params: &str, timeout_ms: u64) -> AttemptResult {
    let store = Arc::new(MemoryStore::new());
    let step = medic_core::attempt::standalone_step("s", medic_model::Phase::Verify, path);
    let new = NewRun::standalone(step, path.to_string(), crate::support::incident());
    let journal = RunJournal::create(store, Arc::new(SystemClock), "wit-versions", new).unwrap();
    let host =
        AttemptHost::standalone(journal, "s", Vec::new(), Arc::new(StaticSecrets::default()));
    let request = AttemptRequest {
        component: path.to_string(),
        invocation: Invocation {
            run_id: "wit-versions".into(),
            step_id: "s".into(),
            attempt: 1,
            idempotency_key: "00".into(),
            phase: medic_model::Phase::Verify,
            incident: crate::support::incident(),
            params: params.into(),
            drill: false,
        },
        grants: Grants::default(),
        limits: ResolvedLimits {
            timeout_ms,
            ..ResolvedLimits::default()
        },
    };
    sandbox().run(request, host).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_0_1_0_component_is_detected_as_0_1_0_and_runs() {
    let echo = component("echo");
    let m = sandbox().describe(&echo).await.unwrap();
    assert_eq!(m.wit_version, WitVersion::V0_1_0);
    assert_eq!(m.name, "echo");
    match attempt(&echo, r#"{"n": 7}"#, 5_000).await {
        AttemptResult::Done(v) => {
            assert_eq!(v["params"]["n"], 7, "{v}");
            assert_eq!(v["incident_title"], "CheckoutErrorRate", "{v}");
            // 0.1.0 has no deadline-ms; the adapter drops it.
            assert!(v.get("deadline_ms").is_none(), "{v}");
        }
        other => panic!("{other:?}"),
    }
    // Retry-after and step errors come back through the adapter too.
    assert!(matches!(
        attempt(&echo, r#"{"retry_after_ms": 250}"#, 5_000).await,
        AttemptResult::RetryAfter { ms: 250, .. }
    ));
    match attempt(&echo, r#"{"fail": "nope", "retryable": true}"#, 5_000).await {
        AttemptResult::Failed(f) => {
            assert_eq!(f.kind, FailureKind::StepError);
            assert!(f.retryable);
            assert_eq!(f.message, "nope");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_0_2_0_component_receives_the_attempts_deadline_ms() {
    let v2 = component("echo-v2");
    let m = sandbox().describe(&v2).await.unwrap();
    assert_eq!(m.wit_version, WitVersion::V0_2_0);
    assert_eq!(m.wit_version, WitVersion::NEWEST);
    match attempt(&v2, r#"{"x": 1}"#, 7_000).await {
        AttemptResult::Done(v) => {
            assert_eq!(v["wit"], "0.2.0", "{v}");
            let left = v["deadline_ms"].as_u64().unwrap();
            // What is left of the 7 s timeout when run() starts: most of it.
            assert!(left <= 7_000 && left > 5_000, "{v}");
        }
        other => panic!("{other:?}"),
    }
    // A step that needs more time than is left asks for another attempt.
    match attempt(&v2, r#"{"min_ms_left": 60000}"#, 2_000).await {
        AttemptResult::RetryAfter { ms, reason } => {
            assert_eq!(ms, 1000);
            assert!(reason.contains("need 60000"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_of_an_unknown_version_is_refused_naming_it_and_the_supported_ones() {
    let future = component("future-wit");
    let e = sandbox().describe(&future).await.unwrap_err().to_string();
    assert!(
        e.contains("built against medic:step@0.99.0, which this medic does not support")
            && e.contains("supported versions: 0.1.0, 0.2.0"),
        "{e}"
    );
    // A run's attempt fails with the same reason.
    match attempt(&future, "{}", 5_000).await {
        AttemptResult::Failed(f) => {
            assert_eq!(f.kind, FailureKind::Component);
            assert!(f.message.contains("medic:step@0.99.0"), "{f}");
        }
        other => panic!("{other:?}"),
    }
    // And `medic step test` says so and exits non-zero.
    let data = tempfile::tempdir().unwrap();
    let out = medic()
        .arg("--data")
        .arg(data.path())
        .args(["step", "test", &future])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("medic:step@0.99.0") && stdout.contains("0.1.0, 0.2.0"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_exporting_no_step_interface_is_not_a_medic_step() {
    let e = sandbox()
        .describe(component("wrong-world"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "not a medic step: it exports no `medic:step/step` interface (it exports `run`)"
        ) && e.contains("supported versions: 0.1.0, 0.2.0"),
        "{e}"
    );
}
