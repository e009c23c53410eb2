//! Golden postmortems (Markdown, JSON, SVG) of journals recorded from real runs: the
//! bad-flag and bad-deploy examples (tests/e2e/examples_restore.rs records them) and an
//! incident whose alert started two workflows (tests/e2e/postmortem.rs records it). The
//! journals and the expected outputs live in tests/golden/postmortem/; after a deliberate
//! change, `MEDIC_BLESS=1 cargo test -p medic-postmortem --test golden` rewrites the
//! outputs (review the diff).

use medic_core::Entry;
use medic_postmortem::Postmortem;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Recorded {
    id: String,
    entries: Vec<Entry>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/postmortem")
}

fn load(name: &str) -> Postmortem {
    let path = dir().join(format!("{name}.journals.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (recorded by the e2e tests with MEDIC_BLESS=1)",
            path.display()
        )
    });
    let runs: Vec<Recorded> = serde_json::from_str(&text).unwrap();
    Postmortem::from_journals(runs.into_iter().map(|r| (r.id, r.entries))).unwrap()
}

/// Compares (or with MEDIC_BLESS=1 writes) `<name>.<ext>`.
fn check(name: &str, ext: &str, actual: &str) {
    let path = dir().join(format!("{name}.{ext}"));
    if std::env::var("MEDIC_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; MEDIC_BLESS=1 creates it", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {} (MEDIC_BLESS=1 rewrites it):\nexpected: {:?}\nactual:   {:?}",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

fn golden(name: &str) -> Postmortem {
    let pm = load(name);
    check(name, "md", &pm.markdown());
    check(name, "json", &pm.json());
    check(name, "svg", &pm.svg());
    pm
}

#[test]
fn bad_deploy_rollback_with_a_gate_decided_by_a_person_and_a_resolved_incident() {
    let pm = golden("bad-deploy");
    let f = pm.facts();
    let gate = f.gates.first().expect("the resume-rollouts gate");
    assert_eq!(gate.step, "resume-rollouts");
    assert_eq!(gate.decision, Some("approved"));
    assert_eq!(gate.by.as_deref(), Some("oncall"));
    assert!(!gate.by_deadline);
    assert!(gate.comment.is_some());
    assert!(f.restore.iter().any(|r| r.kind == "rollback" && r.step == "undo"));
    assert_eq!(f.incident.status, "resolved");
    assert!(pm.metrics().time_to_resolve.seconds.is_some());
    assert!(f.timeline.iter().any(|r| r.kind == "retry"), "a retry");
    assert_eq!(pm.metrics().actions.by_people, 1);
    assert!(pm.markdown().contains("approved by oncall"));
}

#[test]
fn bad_flag_retoggle_with_retries() {
    let pm = golden("bad-flag");
    let f = pm.facts();
    assert!(f.restore.iter().any(|r| r.kind == "retoggle" && r.step == "retoggle"));
    assert!(f.timeline.iter().any(|r| r.kind == "retry"), "a retry");
    for m in [
        &pm.metrics().time_to_detect,
        &pm.metrics().time_to_communicate,
        &pm.metrics().time_to_mitigate,
        &pm.metrics().time_to_verified,
    ] {
        assert!(m.seconds.is_some(), "{m:?}");
    }
    assert!(pm.metrics().waiting_on_people.absent.is_some());
}

#[test]
fn an_incident_with_two_runs_is_one_postmortem() {
    let pm = golden("two-runs");
    let f = pm.facts();
    assert_eq!(f.runs.len(), 2);
    assert_ne!(f.runs[0].workflow, f.runs[1].workflow);
    // One merged timeline: rows of both workflows, in time order.
    for run in &f.runs {
        assert!(f.timeline.iter().any(|r| r.workflow == run.workflow));
    }
    let times: Vec<&str> = f.timeline.iter().map(|r| r.at.as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(pm.markdown().contains("| UTC | T+ | Workflow |"));
}

/// Nothing that looks like a credential in any output of any golden journal (the e2e
/// tests that record the journals grep for the real secret values too).
#[test]
fn no_output_carries_credentials() {
    for name in ["bad-deploy", "bad-flag", "two-runs"] {
        let pm = load(name);
        for (format, out) in [
            ("md", pm.markdown()),
            ("json", pm.json()),
            ("html", pm.html()),
            ("svg", pm.svg()),
        ] {
            let lower = out.to_lowercase();
            for needle in ["syt_", "bearer ", "authorization", "access_token", "token="] {
                assert!(
                    !lower.contains(needle),
                    "{name}.{format} contains {needle:?}"
                );
            }
        }
    }
}
