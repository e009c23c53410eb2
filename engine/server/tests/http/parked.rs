//! Runs parked at a gate hold no driver in memory (issue 16): a decision posted for one,
//! or its deadline passing, drives it again to the end.

use crate::support::{Server, TOKEN, eventually, group, metric};
use serde_json::{Value, json};

/// Two gates: one only alice decides (deadline far off), one taken by its deadline.
const GATED: &str = "apiVersion: medic/v1\nkind: Workflow\nname: gated\ntrigger:\n  matchers: ['alertname=~\"Ask.*\"']\nsteps:\n  - id: ask\n    phase: restore\n    gate:\n      prompt: roll back?\n      approvers: [alice]\n      deadline: 1h\n      on-deadline: reject\n  - id: after\n    phase: follow-up\n    uses: echo\n    with: { annotate: done }\n";
const TIMED: &str = "apiVersion: medic/v1\nkind: Workflow\nname: timed\ntrigger:\n  matchers: ['alertname=\"Timed\"']\nsteps:\n  - id: ask\n    phase: restore\n    gate:\n      prompt: roll back?\n      deadline: 3s\n      on-deadline: approve\n  - id: after\n    phase: follow-up\n    uses: echo\n    with: { annotate: done }\n";

async fn post(s: &Server, path: &str, body: &[u8]) -> u16 {
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    s.request("POST", path, &headers, body).await.status
}

async fn parked(s: &Server) -> f64 {
    let auth = format!("Bearer {TOKEN}");
    let text = s
        .request("GET", "/metrics", &[("authorization", &auth)], b"")
        .await
        .body;
    metric(&text, "medic_runs_parked")
}

async fn run_ids(s: &Server, workflow: &str, n: usize) -> Vec<String> {
    eventually("the runs to start", async || {
        let runs = s.get("/api/runs").await;
        let ids: Vec<String> = runs
            .as_array()?
            .iter()
            .filter(|r| r["workflow"] == workflow)
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect();
        (ids.len() == n).then_some(ids)
    })
    .await
}

async fn finished(s: &Server, run: &str) -> Value {
    eventually("the run to finish", async || {
        let run = s.get(&format!("/api/runs/{run}")).await;
        (run["status"] != "running").then_some(run)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_posted_as_gates_open_are_each_taken_by_parked_runs() {
    let s = Server::start("", &[GATED]).await;
    let names: Vec<String> = (0..12).map(|i| format!("Ask{i:02}")).collect();
    assert_eq!(
        post(&s, "/intake/alertmanager", &group(&names, "firing")).await,
        202
    );
    let ids = run_ids(&s, "gated", names.len()).await;
    // Each decision is posted the moment its gate opens (refused until then), around
    // when the driver reads its mailbox and parks the run. A parked run has no driver
    // to wake: one the post did not start would leave the run waiting for an hour, and
    // this test waiting in vain. (The narrower window, a post between the driver's last
    // mailbox read and its leaving, is closed by the driver's second look; this test
    // rarely lands in it.)
    let decision = json!({"decision": "approve", "by": "alice"}).to_string();
    for id in &ids {
        let path = format!("/api/runs/{id}/gates/ask");
        eventually("the gate to open", async || {
            (post(&s, &path, decision.as_bytes()).await == 202).then_some(())
        })
        .await;
    }
    for id in &ids {
        assert_eq!(finished(&s, id).await["status"], "succeeded", "{id}");
    }
    assert_eq!(parked(&s).await, 0.0, "a parked entry outlived its run");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_parked_at_a_gate_goes_on_when_its_deadline_passes() {
    let s = Server::start("", &[TIMED]).await;
    assert_eq!(
        post(
            &s,
            "/intake/alertmanager",
            &group(&["Timed".into()], "firing")
        )
        .await,
        202
    );
    let id = run_ids(&s, "timed", 1).await.remove(0);
    // Parked: waiting at its gate with no driver.
    eventually("the run to park", async || {
        (parked(&s).await == 1.0).then_some(())
    })
    .await;
    let run = finished(&s, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(parked(&s).await, 0.0);
}
