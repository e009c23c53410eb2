use crate::support::medic;

#[test]
fn schema_prints_the_workflow_format_for_editors() {
    let out = medic().arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(schema["$schema"].as_str().unwrap().contains("2020-12"));
    assert!(schema["properties"]["apiVersion"].is_object(), "{schema}");
    assert!(schema["properties"]["steps"].is_object(), "{schema}");
}

#[test]
fn an_unusable_store_is_a_clear_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let data = file.join("data");
    let out = medic()
        .arg("--data")
        .arg(&data)
        .arg("runs")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(&data.display().to_string()), "{stderr}");
    assert!(stderr.contains("Not a directory"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
}

#[test]
fn an_unknown_run_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = medic()
        .arg("--data")
        .arg(dir.path())
        .args(["runs", "show", "no-such-run"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr.trim(), "error: no run with id no-such-run");
}

#[test]
fn a_second_medic_on_the_same_store_is_told_why_it_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let _held = medic_store::SledStore::open(dir.path().join("store")).unwrap();
    let out = medic()
        .arg("--data")
        .arg(dir.path())
        .arg("runs")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("in use by another medic process"),
        "{stderr}"
    );
}
