//! `medic run` of a rollback to "previous" is killed before each of its journal writes,
//! then `medic resume` finishes it: the deployment always ends on the revision chosen
//! before the kill, rolled back exactly once, as the real kubectl reports.

use crate::kube_api::KubeApi;
use crate::support::medic_in;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// A fresh server with web at revisions 1..3 and a `medic run` command rolling it back.
fn setup(dir: &Path) -> (KubeApi, Command) {
    let k = KubeApi::start();
    k.seed(
        "web",
        &[
            ("registry.local/web:1", "release 1"),
            ("registry.local/web:2", "release 2"),
            ("registry.local/web:3", "release 3 (bad)"),
        ],
    );
    let workflow = dir.join("rollback.yaml");
    std::fs::write(
        &workflow,
        format!(
            "apiVersion: medic/v1\nkind: Workflow\nname: web-rollback\nsteps:\n  - id: undo\n    phase: restore\n    uses: k8s-rollout\n    with: {{ server: \"{}\", deployment: web, action: undo, to_revision: previous }}\n    allow: [127.0.0.1]\n    retry: {{ attempts: 3, backoff: 50ms }}\n",
            k.url()
        ),
    )
    .unwrap();
    let alert = dir.join("alert.json");
    std::fs::write(
        &alert,
        r#"{"title": "WebErrors", "labels": {"alertname": "WebErrors"}}"#,
    )
    .unwrap();
    let mut run = medic_in(&dir.join("data"));
    run.arg("run")
        .arg(&workflow)
        .arg("--alert")
        .arg(&alert)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    (k, run)
}

fn journal_len(data: &Path) -> usize {
    let out = medic_in(data).args(["runs", "--json"]).output().unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let Some(id) = runs
        .as_array()
        .unwrap()
        .first()
        .and_then(|r| r["id"].as_str())
    else {
        return 0;
    };
    let out = medic_in(data)
        .args(["runs", "show", id, "--json", "--journal"])
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    shown["journal"].as_array().unwrap().len()
}

/// The world a single rollback from 3 to 2 leaves, as kubectl reports it.
fn check_rolled_back_once(k: &KubeApi, what: &str) {
    k.wait_rollout("web");
    assert_eq!(k.image("web"), "registry.local/web:2", "{what}");
    let history: Vec<(u64, String)> = k.history("web");
    assert_eq!(
        history,
        [
            (1, "release 1".to_string()),
            (3, "release 3 (bad)".to_string()),
            (4, "release 2".to_string())
        ],
        "{what}"
    );
}

#[test]
fn killed_at_every_journal_write_the_rollback_lands_once_on_the_chosen_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (k, mut run) = setup(dir.path());
    assert!(run.status().unwrap().success(), "clean run failed");
    check_rolled_back_once(&k, "clean run");
    // The journal's entries, and the finishing append's meta, a write of its own.
    let writes = journal_len(&dir.path().join("data")) + 1;
    assert!(writes >= 9, "{writes} journal writes");

    for at in 1..=writes {
        let dir = tempfile::tempdir().unwrap();
        let (k, mut run) = setup(dir.path());
        let status = run
            .env("MEDIC_CRASH_AT_WRITE", at.to_string())
            .status()
            .unwrap();
        assert!(!status.success(), "write {at}: the failpoint did not fire");
        let data = dir.path().join("data");
        let out = medic_in(&data).arg("resume").output().unwrap();
        assert!(
            out.status.success(),
            "write {at}: resume failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if journal_len(&data) == 0 {
            // Killed before the run existed: nothing may have changed.
            assert_eq!(k.image("web"), "registry.local/web:3", "write {at}");
            continue;
        }
        check_rolled_back_once(&k, &format!("killed before journal write {at}"));
    }
}
