use crate::support::{incident, medic, new_run, steps_dir};
use async_trait::async_trait;
use medic_core::{
    Clock, Event, Executor, JournalStore, ManualClock, RunState, RunStatus, StaticSecrets,
};
use medic_store::SledStore;
use std::sync::Arc;

#[test]
fn medic_resume_finishes_runs_left_unfinished() {
    let data = tempfile::tempdir().unwrap();
    let run = {
        // A run created by an engine that then "crashed" before driving it.
        let store = Arc::new(SledStore::open(data.path().join("store")).unwrap());
        let engine = Executor::new(
            store,
            crate::support::sandbox(),
            Arc::new(medic_core::SystemClock),
            Arc::new(StaticSecrets::default()),
        );
        let mut new = new_run(
            "apiVersion: medic/v1\nkind: Workflow\nname: left-behind\nsteps:\n  - id: one\n    phase: restore\n    uses: echo\n    with: { x: 1 }\n",
        );
        // Resolve through the steps dir like the CLI would.
        for v in new.components.values_mut() {
            *v = steps_dir().join("echo.wasm").display().to_string();
        }
        new.incident = incident();
        engine.create_run(new).unwrap()
    };
    let out = medic()
        .arg("--data")
        .arg(data.path())
        .arg("resume")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("run {run}: succeeded")),
        "{stdout}"
    );
    let store = SledStore::open(data.path().join("store")).unwrap();
    assert_eq!(
        store.run(&run).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
}

/// A clock whose sleeps never end: an engine parked on a timer, about to be killed.
struct Frozen(u64);

#[async_trait]
impl Clock for Frozen {
    fn now_ms(&self) -> u64 {
        self.0
    }
    async fn sleep_until(&self, _deadline_ms: u64) {
        std::future::pending::<()>().await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_backoff_survives_a_restart_with_the_remaining_time() {
    let t0 = 1_800_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let yaml = "apiVersion: medic/v1\nkind: Workflow\nname: parked\nsteps:\n  - id: rollout\n    phase: verify\n    uses: echo\n    with: { retry_after_ms: 30000, retry_until_attempt: 2 }\n    retry: { attempts: 2 }\n";
    let run = {
        let store = Arc::new(SledStore::open(dir.path().join("store")).unwrap());
        let engine = Executor::new(
            store,
            crate::support::sandbox(),
            Arc::new(Frozen(t0)),
            Arc::new(StaticSecrets::default()),
        );
        let run = engine.create_run(new_run(yaml)).unwrap();
        // Parked in the 30 s backoff: the engine goes away here.
        let parked =
            tokio::time::timeout(std::time::Duration::from_secs(10), engine.drive(&run)).await;
        assert!(parked.is_err(), "the run must be waiting on its timer");
        run
    };
    // Restart 25 s later.
    let clock = Arc::new(ManualClock::new(t0 + 25_000));
    let store = Arc::new(SledStore::open(dir.path().join("store")).unwrap());
    let engine = Executor::new(
        store.clone(),
        crate::support::sandbox(),
        clock.clone(),
        Arc::new(StaticSecrets::default()),
    );
    assert_eq!(engine.unfinished_runs().unwrap(), vec![run.clone()]);
    assert_eq!(engine.drive(&run).await.unwrap(), RunStatus::Succeeded);
    let entries = store.entries(&run).unwrap();
    let second = entries
        .iter()
        .find(|e| matches!(e.event, Event::AttemptStarted { attempt: 2, .. }))
        .expect("attempt 2 ran");
    // It waited the remaining 5 s, not a fresh 30 s and not zero.
    assert_eq!(second.at_ms, t0 + 30_000);
    let state = RunState::fold(&run, &entries).unwrap();
    assert_eq!(
        state.steps["rollout"].output.as_ref().unwrap()["attempt"],
        2
    );
}
