use crate::support::{StandIn, engine_with, new_run};
use medic_core::{
    Durability, Entry, Event, FailureKind, HostCall, JournalStore, Level, RunState, RunStatus,
};

const ECHO: &str = "apiVersion: medic/v1\nkind: Workflow\nname: replay\nsteps:\n  - id: talk\n    phase: communicate\n    uses: echo\n    with: { annotate: 'b', log: 'a' }\n";

fn append(store: &dyn JournalStore, run: &str, seq: u64, event: Event) {
    store
        .append(
            run,
            &Entry {
                seq,
                at_ms: medic_core::Clock::now_ms(&medic_core::SystemClock),
                event,
            },
            None,
            Durability::Flush,
        )
        .unwrap();
}

fn host_call(call: HostCall) -> Event {
    Event::HostCall {
        step: "talk".into(),
        attempt: 1,
        call,
    }
}

fn started() -> Event {
    Event::AttemptStarted {
        step: "talk".into(),
        attempt: 1,
        idempotency_key: "k".into(),
        params: serde_json::json!({}),
    }
}

/// `echo` annotates, then logs. A journal that recorded the log first cannot be replayed.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_call_order_is_a_nondeterminism_error() {
    let t = engine_with(&[], None);
    let run = t.engine.create_run(new_run(ECHO)).unwrap();
    append(t.store.as_ref(), &run, 1, started());
    append(
        t.store.as_ref(),
        &run,
        2,
        host_call(HostCall::Log {
            level: Level::Info,
            message: "a".into(),
        }),
    );
    assert_eq!(t.engine.drive(&run).await.unwrap(), RunStatus::Failed);
    let state = RunState::load(t.store.as_ref(), &run).unwrap();
    let f = state.steps["talk"].last_failure.clone().unwrap();
    assert_eq!(f.kind, FailureKind::Nondeterminism);
    assert_eq!(
        f.message,
        "nondeterminism at host call #1: the journal recorded `log info \"a\"`, but the step now asks for `annotate \"b\"`"
    );
    assert!(!f.retryable);
}

/// The recorded prefix is answered from the journal (not written again); the rest goes live.
#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_attempt_replays_its_recorded_calls_then_goes_live() {
    let t = engine_with(&[], None);
    let run = t.engine.create_run(new_run(ECHO)).unwrap();
    append(t.store.as_ref(), &run, 1, started());
    append(
        t.store.as_ref(),
        &run,
        2,
        host_call(HostCall::Annotate {
            message: "b".into(),
        }),
    );
    assert_eq!(t.engine.drive(&run).await.unwrap(), RunStatus::Succeeded);
    let entries = t.store.entries(&run).unwrap();
    let kinds: Vec<String> = entries
        .iter()
        .map(|e| match &e.event {
            Event::HostCall { call, .. } => call.describe(),
            other => serde_json::to_value(other).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "run_created",
            "attempt_started",
            "annotate \"b\"",
            "log info \"a\"",
            "attempt_succeeded",
            "run_finished"
        ]
    );
}

/// A crash right after a response was journalled: the resumed attempt gets the response
/// from the journal and the service never sees the request again.
#[tokio::test(flavor = "multi_thread")]
async fn an_answered_request_is_not_sent_again_on_resume() {
    let service = StandIn::start();
    let yaml = format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: replay-http\nsteps:\n  - id: probe\n    phase: verify\n    uses: http-probe\n    with: {{ url: '{}/flags/new-checkout', json_pointer: /enabled, json_equals: true }}\n    allow: [127.0.0.1]\n",
        service.url()
    );
    let original = engine_with(&[], None);
    let run = original.engine.create_run(new_run(&yaml)).unwrap();
    assert_eq!(
        original.engine.drive(&run).await.unwrap(),
        RunStatus::Succeeded
    );
    let full = original.store.entries(&run).unwrap();
    let cut = full
        .iter()
        .position(|e| {
            matches!(
                &e.event,
                Event::HostCall {
                    call: HostCall::HttpResponse { .. },
                    ..
                }
            )
        })
        .unwrap();

    // The flag changes afterwards: a live request would now fail the step.
    let disable = std::process::Command::new("python3")
        .args(["-c", "import sys,urllib.request;urllib.request.urlopen(urllib.request.Request(sys.argv[1], method='POST'))"])
        .arg(format!("{}/flags/new-checkout/disable", service.url()))
        .status()
        .unwrap();
    assert!(disable.success());

    let crashed = engine_with(&[], None);
    let meta = original.store.run(&run).unwrap().unwrap();
    crashed.store.create_run(&meta, &full[0]).unwrap();
    for e in &full[1..=cut] {
        crashed
            .store
            .append(&run, e, None, Durability::Flush)
            .unwrap();
    }
    assert_eq!(
        crashed.engine.drive(&run).await.unwrap(),
        RunStatus::Succeeded
    );
    let state = RunState::load(crashed.store.as_ref(), &run).unwrap();
    assert_eq!(
        state.steps["probe"].output.as_ref().unwrap()["json_value"],
        true
    );
    let reqs = service.get("/requests");
    let flag_gets = reqs["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"] == "/flags/new-checkout")
        .count();
    assert_eq!(flag_gets, 1, "{reqs}");
}

/// An attempt's timeout runs from its start, across a restart: medic was down for 40 s
/// during an attempt with a 30 s timeout, so the resumed attempt has already timed out
/// and the retry policy takes over.
#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_attempt_keeps_its_original_deadline() {
    let t0 = 1_800_000_000_000;
    let clock = std::sync::Arc::new(medic_core::ManualClock::new(t0));
    let t = engine_with(&[], Some(clock.clone()));
    let yaml = "apiVersion: medic/v1\nkind: Workflow\nname: slow\nsteps:\n  - id: talk\n    phase: restore\n    uses: echo\n    timeout: 30s\n    retry: { attempts: 2, backoff: 1s }\n";
    let run = t.engine.create_run(new_run(yaml)).unwrap();
    t.store
        .append(
            &run,
            &Entry {
                seq: 1,
                at_ms: t0,
                event: started(),
            },
            None,
            Durability::Flush,
        )
        .unwrap();
    clock.advance(40_000);
    assert_eq!(t.engine.drive(&run).await.unwrap(), RunStatus::Succeeded);
    let state = RunState::load(t.store.as_ref(), &run).unwrap();
    let s = &state.steps["talk"];
    assert_eq!(s.attempt, 2);
    assert_eq!(
        s.last_failure.as_ref().unwrap().message,
        "timed out after 30s (the step's timeout; medic was stopped during the attempt)"
    );
}
