//! Golden postmortems of real journals: each `tests/golden/postmortem/<name>.journals.json`
//! was recorded from a real run by the e2e tests (`MEDIC_BLESS=1 cargo test -p medic-cli
//! --test e2e examples_restore:: postmortem::`): examples/bad-flag against real Unleash,
//! Synapse and Prometheus, examples/bad-deploy against the kubectl-proven Kubernetes API
//! test server, Synapse and Prometheus through `medic serve`, and an incident that started
//! two workflows in `medic serve`. The Markdown, JSON and SVG drafts of each must equal the
//! checked-in `<name>.md`, `<name>.json` and `<name>.svg` byte for byte;
//! `MEDIC_BLESS=1 cargo test -p medic-postmortem --test golden` rewrites them (review the
//! diff).
//!
//! Each fixture is also checked to hold what the goldens are meant to show: bad-deploy and
//! the two-run incident have a gate decided by a person with a comment, a retry (the
//! Kubernetes API refused the rollback once; an echo step asked to be retried) and a
//! resolved incident; bad-flag a retoggle verified by Prometheus.

use medic_core::Entry;
use medic_postmortem::{Format, Postmortem};
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/postmortem")
}

fn bless() -> bool {
    std::env::var("MEDIC_BLESS").is_ok_and(|v| v == "1")
}

/// The fixture's journals as `(run id, entries)`.
fn journals(name: &str) -> Vec<(String, Vec<Entry>)> {
    let path = dir().join(format!("{name}.journals.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (record it, see this file's doc)", path.display()));
    let doc: Vec<Value> = serde_json::from_str(&text).unwrap();
    doc.into_iter()
        .map(|run| {
            let id = run["id"].as_str().unwrap().to_string();
            let entries: Vec<Entry> = serde_json::from_value(run["entries"].clone())
                .unwrap_or_else(|e| panic!("{}: run {id}: {e}", path.display()));
            (id, entries)
        })
        .collect()
}

/// Compares every format with its golden file (or writes it, blessing); returns the facts.
fn check(name: &str) -> Value {
    let journals = journals(name);
    let pm = Postmortem::from_journals(journals.iter().map(|(id, e)| (id, e)))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut mismatched = Vec::new();
    for format in [Format::Markdown, Format::Json, Format::Svg] {
        let output = pm.render(format);
        let path = dir().join(format!("{name}.{}", format.extension()));
        if bless() {
            std::fs::write(&path, &output).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (MEDIC_BLESS=1 writes it)", path.display()));
        if golden != output {
            let line = golden
                .lines()
                .zip(output.lines())
                .position(|(a, b)| a != b)
                .map_or_else(
                    || "the line count".to_string(),
                    |i| format!("line {}", i + 1),
                );
            mismatched.push(format!("{} (first difference at {line})", path.display()));
        }
    }
    assert!(
        mismatched.is_empty(),
        "postmortem output differs from its golden file: {}; if the change is meant, \
         rerun with MEDIC_BLESS=1 and review the diff",
        mismatched.join(", ")
    );
    // The picture alone (what the run page draws) is the draft's picture, byte for byte.
    let picture = Postmortem::picture(journals.iter().map(|(id, e)| (id, e)))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        picture == pm.svg(),
        "{name}: Postmortem::picture differs from the draft's svg"
    );
    // Deterministic: reading the same journals again, in the other order, gives the
    // same bytes.
    let again = Postmortem::from_journals(journals.iter().rev().map(|(id, e)| (id, e))).unwrap();
    assert_eq!(again.markdown(), pm.markdown());
    serde_json::from_str(&pm.json()).unwrap()
}

fn rows<'a>(facts: &'a Value, kind: &str) -> Vec<&'a Value> {
    facts["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

#[test]
fn bad_flag_postmortem_matches_its_golden_files() {
    let facts = check("bad-flag");
    assert_eq!(facts["restore"][0]["kind"], "retoggle", "{facts:#}");
    assert!(facts["metrics"]["time_to_verified"]["seconds"].is_number());
    assert!(!rows(&facts, "http").is_empty(), "exchanges summarised");
}

#[test]
fn bad_deploy_postmortem_matches_its_golden_files() {
    let facts = check("bad-deploy");
    // A person decided the gate, with a comment.
    let gate = &facts["gates"][0];
    assert_eq!(gate["step"], "resume-rollouts", "{facts:#}");
    assert_eq!(gate["by"], "oncall");
    assert_eq!(gate["by_deadline"], false);
    assert_eq!(gate["comment"], "decided by examples/bad-deploy/run.sh");
    // A retry: the API server refused the rollback once (MEDIC_EXAMPLE_HICCUP).
    assert!(
        rows(&facts, "retry").iter().any(|r| r["step"] == "undo"),
        "no retry of the undo in {facts:#}"
    );
    // The incident resolved (Alertmanager's resolution while the gate waited).
    assert_eq!(facts["incident"]["status"], "resolved");
    assert!(facts["metrics"]["time_to_resolve"]["seconds"].is_number());
    assert!(
        facts["restore"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "rollback")
    );
}

#[test]
fn an_incident_with_two_runs_has_one_golden_postmortem() {
    let facts = check("two-runs");
    let runs: Vec<&str> = facts["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["workflow"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), 2, "{facts:#}");
    assert!(runs.contains(&"triage") && runs.contains(&"escalate"));
    // One timeline: rows of both runs, in time order.
    let workflows: std::collections::BTreeSet<&str> = facts["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["workflow"].as_str())
        .collect();
    assert!(workflows.contains("triage") && workflows.contains("escalate"));
    let times: Vec<&str> = facts["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(facts["gates"][0]["by"], "alice");
    assert_eq!(facts["gates"][0]["comment"], "error rate still rising");
    assert!(rows(&facts, "retry").iter().any(|r| r["step"] == "flip"));
    assert_eq!(facts["incident"]["status"], "resolved");
}
