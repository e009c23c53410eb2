//! `medic drill` on the hand-written scenarios in examples/drills (no service runs: every
//! request is answered from the drill file): the suite, faults of every kind, a fork at a
//! gate, a crash inside a drill, a workflow changed after the recording, byte-identical
//! reports, malformed files.

use crate::support::{medic, repo, steps_dir};
use std::path::{Path, PathBuf};
use std::process::Output;

/// `medic drill ARGS` on a fresh data dir, with the test components.
fn drill(data: &Path, args: &[&str]) -> Output {
    medic()
        .arg("--data")
        .arg(data)
        .env("MEDIC_STEPS", steps_dir())
        .arg("drill")
        .args(args)
        .output()
        .expect("medic runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn example(name: &str) -> String {
    repo()
        .join("examples/drills")
        .join(name)
        .display()
        .to_string()
}

const MIGRATION: &str = "migration-roll-forward.yaml";

/// A copy of examples/drills to change.
fn copy_examples() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("drills");
    std::fs::create_dir_all(to.join("workflows")).unwrap();
    for sub in ["", "workflows"] {
        for e in std::fs::read_dir(repo().join("examples/drills").join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, to.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    // The recorded drills name their workflows as `../bad-flag/workflow.yaml` and
    // `../bad-deploy/workflow.yaml`.
    for example in ["bad-flag", "bad-deploy"] {
        let to = dir.path().join(example);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(
            repo().join("examples").join(example).join("workflow.yaml"),
            to.join("workflow.yaml"),
        )
        .unwrap();
    }
    (dir, to)
}

#[test]
fn the_example_drills_pass_as_a_suite() {
    let data = tempfile::tempdir().unwrap();
    let out = drill(
        data.path(),
        &[
            "test",
            &repo().join("examples/drills").display().to_string(),
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for name in [
        MIGRATION,
        "verify-fails-escalate.yaml",
        "bad-flag.yaml",
        "bad-deploy.yaml",
    ] {
        let row = t
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{t}"));
        assert!(row.contains(" ok "), "{row}");
    }
    assert!(t.contains("0 failed"), "{t}");
    // Drill runs are kept, and listed as drills.
    let runs = medic()
        .arg("--data")
        .arg(data.path())
        .arg("runs")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&runs.stdout);
    assert!(listed.contains("[drill]"), "{listed}");
}

#[test]
fn a_broken_workflow_copy_fails_the_suite_with_a_readable_row() {
    let (_tmp, dir) = copy_examples();
    let wf = dir.join("workflows/migration-roll-forward.yaml");
    let src = std::fs::read_to_string(&wf).unwrap();
    std::fs::write(&wf, src.replace("/admin/deploy", "/admin/deployments")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = drill(data.path(), &["test", &dir.display().to_string()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let row = t.lines().find(|l| l.starts_with(MIGRATION)).unwrap();
    assert!(
        row.contains("FAIL") && row.contains("did not restore"),
        "{t}"
    );
    assert!(t.contains("step roll-forward failed"), "{t}");
    assert!(
        t.contains(
            "first divergence: step roll-forward: POST http://127.0.0.1:8080/admin/deployments"
        ) && t.contains(
            "closest recorded: POST http://127.0.0.1:8080/admin/deploy (step roll-forward"
        ) && t.contains("path /admin/deployments, recorded /admin/deploy"),
        "{t}"
    );
    assert!(t.contains("1 failed"), "{t}");
}

#[test]
fn the_same_drill_gives_the_same_report_byte_for_byte() {
    let data = tempfile::tempdir().unwrap();
    let a = drill(data.path(), &["run", &example(MIGRATION)]);
    let b = drill(data.path(), &["run", &example(MIGRATION)]);
    assert!(a.status.success(), "{}", text(&a));
    assert_eq!(
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
    let t = String::from_utf8_lossy(&a.stdout);
    assert!(t.contains("verdict: RESTORED\n"), "{t}");
    assert!(t.contains("divergences: none"), "{t}");
    // Approved 4 minutes after the gate opened; rolled forward then.
    assert!(
        t.contains("time to restore        -                        4m"),
        "{t}"
    );
    let j1 = drill(data.path(), &["run", &example(MIGRATION), "--json"]);
    let j2 = drill(data.path(), &["run", &example(MIGRATION), "--json"]);
    assert_eq!(j1.stdout, j2.stdout);
}

/// The JSON report of the migration drill with `args`.
fn report(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let data = tempfile::tempdir().unwrap();
    let file = example(MIGRATION);
    let mut all = vec!["run", file.as_str(), "--json"];
    all.extend_from_slice(args);
    let out = drill(data.path(), &all);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), v, text(&out))
}

fn step<'a>(r: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    r["replay"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {r}"))
}

#[test]
fn each_fault_kind_changes_the_outcome() {
    // 503 three times: three attempts 30 s apart in virtual time, then "did not restore".
    let (code, r, t) = report(&["--fault", "roll-forward=503x3"]);
    assert_eq!(code, Some(1), "{t}");
    assert_eq!(r["verdict"], "did_not_restore", "{t}");
    assert!(
        r["blocked_by"]
            .as_str()
            .unwrap()
            .starts_with("step roll-forward failed"),
        "{t}"
    );
    assert_eq!(step(&r, "roll-forward")["attempts"], 3);
    // 4m at the gate, two 30 s backoffs, then the recorded latencies.
    assert!(starts(&r["replay"]["duration"], "5m30."), "{t}");
    assert_eq!(r["faulted"].as_array().unwrap().len(), 3);

    // Twice only: the third attempt gets the recorded 202 and it restores, a minute later.
    let (code, r, t) = report(&["--fault", "roll-forward=503x2"]);
    assert_eq!(code, Some(0), "{t}");
    assert_eq!(r["verdict"], "restored", "{t}");
    assert!(starts(&r["replay"]["time_to_restore"], "5m30."), "{t}");

    // No answer: each attempt costs the step's timeout (30 s default) in virtual time.
    let (code, r, t) = report(&["--fault", "roll-forward=timeout"]);
    assert_eq!(code, Some(1), "{t}");
    assert!(
        starts(&r["replay"]["duration"], "7m"),
        "4m + 3 timeouts + 2 backoffs: {t}"
    );

    // Refused: fails at once, same verdict.
    let (code, _, t) = report(&["--fault", "roll-forward=refused"]);
    assert_eq!(code, Some(1), "{t}");

    // A malformed migration answer: the detect step cannot read it, nothing is restored.
    let (code, r, t) = report(&["--fault", "migration=malformed"]);
    assert_eq!(code, Some(1), "{t}");
    assert_eq!(step(&r, "migration")["status"], "failed", "{t}");
    assert_eq!(step(&r, "roll-forward")["status"], "skipped", "{t}");

    // Latency on the deploy: still restores, 10 minutes later.
    let (code, r, t) = report(&["--fault", "POST /admin/deploy=latency:10m"]);
    assert_eq!(code, Some(0), "{t}");
    assert!(starts(&r["replay"]["time_to_restore"], "14m"), "{t}");

    // Nobody answers the gate: the deadline (20m) rejects, the database owner is paged.
    let (code, r, t) = report(&["--decide", "roll-forward-ok=deadline"]);
    assert_eq!(code, Some(1), "{t}");
    assert_eq!(
        step(&r, "roll-forward-ok")["decision"],
        "rejected by deadline",
        "{t}"
    );
    assert_eq!(step(&r, "page-db-owner")["status"], "succeeded", "{t}");

    // The incident resolves on its own while the gate waits: the workflow cancels.
    let (code, r, t) = report(&["--incident", "resolved@2m"]);
    assert_eq!(code, Some(1), "{t}");
    assert_eq!(step(&r, "roll-forward")["status"], "cancelled", "{t}");
    assert!(
        step(&r, "roll-forward")["why"]
            .as_str()
            .unwrap()
            .starts_with("cancelled"),
        "{t}"
    );
    assert_eq!(step(&r, "page-db-owner")["status"], "skipped", "{t}");
}

fn starts(v: &serde_json::Value, prefix: &str) -> bool {
    v.as_str().is_some_and(|s| s.starts_with(prefix))
}

#[test]
fn a_fork_at_the_gate_takes_the_other_decision() {
    let (code, r, t) = report(&["--from", "1m", "--decide", "roll-forward-ok=reject@1m"]);
    assert_eq!(code, Some(1), "{t}");
    assert_eq!(step(&r, "migration")["status"], "succeeded");
    assert_eq!(
        step(&r, "roll-forward-ok")["decision"],
        "rejected by oncall",
        "{t}"
    );
    assert_eq!(step(&r, "roll-forward")["status"], "skipped", "{t}");
    assert_eq!(step(&r, "page-db-owner")["status"], "succeeded", "{t}");
    assert!(
        r["inputs"][0]
            .as_str()
            .unwrap()
            .starts_with("fork: recorded history until 1m"),
        "{t}"
    );
    // A fork after the gate opened keeps the recorded decision.
    let (code, r, t) = report(&["--from", "1h", "--decide", "roll-forward-ok=reject"]);
    assert_eq!(code, Some(0), "{t}");
    assert_eq!(
        step(&r, "roll-forward-ok")["decision"],
        "approved by oncall",
        "{t}"
    );
}

#[test]
fn a_crash_inside_a_drill_resumes_and_gives_the_same_report() {
    let (_, clean, _) = report(&["--fault", "roll-forward=503x2"]);
    let mut crashed = 0;
    for n in (2..36).step_by(2) {
        let (_, r, t) = report(&[
            "--fault",
            "roll-forward=503x2",
            "--crash-at",
            &n.to_string(),
        ]);
        let said = r["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("crash:"));
        crashed += usize::from(said);
        assert_eq!(r["replay"], clean["replay"], "crash at write {n}:\n{t}");
        assert_eq!(r["verdict"], clean["verdict"], "crash at write {n}");
        assert_eq!(r["divergences"], clean["divergences"], "crash at write {n}");
    }
    assert!(
        crashed >= 12,
        "only {crashed} crash points were inside the run"
    );
}

#[test]
fn a_changed_workflow_gives_a_divergence_report_naming_the_step_and_the_closest_request() {
    let (_tmp, dir) = copy_examples();
    let wf = dir.join("workflows/migration-roll-forward.yaml");
    let src = std::fs::read_to_string(&wf).unwrap();
    // A URL changed, and a step added before the health check.
    let changed = src
        .replace("url: http://127.0.0.1:8080/health", "url: http://127.0.0.1:8080/healthz")
        .replace(
            "  - id: health\n",
            "  - id: smoke\n    phase: verify\n    uses: http-probe\n    with: { url: \"http://127.0.0.1:8080/cart\" }\n    allow: [\"127.0.0.1:8080\"]\n    continue-on-error: true\n\n  - id: health\n",
        );
    std::fs::write(&wf, changed).unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = drill(
        data.path(),
        &[
            "run",
            &dir.join(MIGRATION).display().to_string(),
            "--strict",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("step smoke attempt 1: GET http://127.0.0.1:8080/cart"),
        "{t}"
    );
    assert!(
        t.contains("step health attempt 1: GET http://127.0.0.1:8080/healthz"),
        "{t}"
    );
    assert!(
        t.contains("closest recorded: GET http://127.0.0.1:8080/health (step health, at 4m)")
            && t.contains("difference: path /healthz, recorded /health"),
        "{t}"
    );
    assert!(
        t.contains("recorded requests the replay did not make"),
        "{t}"
    );
}

#[test]
fn a_malformed_drill_file_is_refused_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    let src = std::fs::read_to_string(example(MIGRATION)).unwrap();
    std::fs::write(&f, src.replace("after: 4m", "after: soon")).unwrap();
    let out = drill(dir.path(), &["run", &f.display().to_string()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    let line = src.lines().position(|l| l.contains("after: 4m")).unwrap() + 1;
    assert!(
        t.contains(&format!(
            "bad.yaml:{line}:12: decisions[0].after: `soon` is not a duration"
        )),
        "{t}"
    );
    std::fs::write(
        &f,
        "medic_drill: 1\nname: x\nstarted_at_ms: 1\nincident: {}\nexchanges: [\n",
    )
    .unwrap();
    let out = drill(dir.path(), &["run", &f.display().to_string()]);
    assert!(text(&out).contains("bad.yaml:"), "{}", text(&out));
    let schema = medic().args(["schema", "--drill"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert_eq!(v["title"], "medic drill file");
}
