use crate::support::{medic, repo, steps_dir};

fn validate(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workflow.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = crate::support::medic_validate(&dir.path().join("data"), &file);
    let text =
        String::from_utf8_lossy(&out.stdout).replace(&file.display().to_string(), "workflow.yaml");
    (out.status.success(), text)
}

#[test]
fn the_example_validates() {
    let out = medic()
        .arg("--steps")
        .arg(steps_dir())
        .arg("--data")
        .arg(tempfile::tempdir().unwrap().path())
        .arg("validate")
        .arg(repo().join("examples/checkout-flag/workflow.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("ok: "), "{stdout}");
}

#[test]
fn params_are_checked_against_the_components_schema() {
    let (ok, out) = validate(
        "apiVersion: medic/v1\nkind: Workflow\nname: bad-params\nsteps:\n  - id: probe\n    phase: verify\n    uses: http-probe\n    with:\n      url: 42\n      expect_status: \"{{ incident.labels.code }}\"\n      retries: 3\n",
    );
    assert!(!ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("workflow.yaml:9:12: steps[0].with.url: http-probe params:")),
        "{out}"
    );
    assert!(lines.iter().any(|l| l.contains("retries")), "{out}");
    // The templated expect_status is only known at run time: not reported.
    assert!(!out.contains("expect_status"), "{out}");
}

#[test]
fn a_missing_component_is_named_with_where_it_was_looked_for() {
    let (ok, out) = validate(
        "apiVersion: medic/v1\nkind: Workflow\nname: missing\nsteps:\n  - id: page\n    phase: communicate\n    uses: pager-duty\n",
    );
    assert!(!ok);
    assert!(out.starts_with("workflow.yaml:7:11: steps[0].uses: no component named pager-duty (looked for pager-duty.wasm) in:"), "{out}");
}

#[test]
fn a_file_that_is_not_a_component_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"\0asm not really").unwrap();
    let file = dir.path().join("wf.yaml");
    std::fs::write(
        &file,
        "apiVersion: medic/v1\nkind: Workflow\nname: junk\nsteps:\n  - id: j\n    phase: verify\n    uses: ./junk.wasm\n",
    )
    .unwrap();
    let out = medic()
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("junk.wasm: not a valid component"),
        "{stdout}"
    );
}

/// A component built against another WIT world: named clearly by `validate`, and a
/// run's attempt fails with the same reason instead of crashing.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_of_another_wit_world_is_a_clear_mismatch() {
    let (ok, out) = validate(
        "apiVersion: medic/v1\nkind: Workflow\nname: mismatch\nsteps:\n  - id: w\n    phase: verify\n    uses: wrong-world\n",
    );
    assert!(!ok);
    assert!(
        out.contains("steps[0].uses: component ")
            && out.contains(
                "wrong-world.wasm: not a medic step: it exports no `medic:step/step` interface"
            ),
        "{out}"
    );

    let t = crate::support::engine_with(&[], None);
    let run = t
        .engine
        .create_run(crate::support::new_run(
            "apiVersion: medic/v1\nkind: Workflow\nname: mismatch\nsteps:\n  - id: w\n    phase: verify\n    uses: wrong-world\n",
        ))
        .unwrap();
    assert_eq!(
        t.engine.drive(&run).await.unwrap(),
        medic_core::RunStatus::Failed
    );
    let state = medic_core::RunState::load(t.store.as_ref(), &run).unwrap();
    let f = state.steps["w"].last_failure.clone().unwrap();
    assert_eq!(f.kind, medic_core::FailureKind::Component);
    assert!(f.message.contains("not a medic step"), "{f}");
}

/// `medic validate` itself, on every malformed file under tests/validate/: exit 1 and
/// exactly the snapshot (file:line:column, field, message).
#[test]
fn medic_validate_reports_every_malformed_file_as_its_snapshot() {
    let dir = repo().join("tests/validate");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".yaml") || name.starts_with("ok-") {
            continue;
        }
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let out = medic()
            .current_dir(repo())
            .arg("--data")
            .arg(tempfile::tempdir().unwrap().path())
            .arg("--steps")
            .arg(steps_dir())
            .arg("validate")
            .arg(format!("tests/validate/{name}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end(),
            expected.trim_end(),
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} malformed files");
}
