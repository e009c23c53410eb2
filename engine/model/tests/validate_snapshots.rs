//! Snapshot test of the diagnostics for every file in `tests/validate/`.
//!
//! Each `<name>.yaml` is parsed as `tests/validate/<name>.yaml`; the diagnostics, one per
//! line, must equal `<name>.expected` (empty for a valid file). Run with `MEDIC_BLESS=1` to
//! rewrite the expected files after a deliberate change, then read the diff: these messages
//! are what a person on call sees.

use std::fs;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/validate")
}

fn render(name: &str, src: &str) -> String {
    match medic_model::parse_workflow(&format!("tests/validate/{name}.yaml"), src) {
        Ok(_) => String::new(),
        Err(diags) => {
            let lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
            lines.join("\n") + "\n"
        }
    }
}

#[test]
fn validate_snapshots() {
    let bless = std::env::var("MEDIC_BLESS").is_ok_and(|v| v == "1");
    let mut names: Vec<String> = fs::read_dir(dir())
        .expect("tests/validate exists")
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.len() >= 15,
        "expected the full set of snapshot files, found {names:?}"
    );
    let mut failures = Vec::new();
    for name in &names {
        let src = fs::read_to_string(dir().join(format!("{name}.yaml"))).unwrap();
        let got = render(name, &src);
        let expected_path = dir().join(format!("{name}.expected"));
        if name.starts_with("ok-") {
            assert_eq!(got, "", "{name}.yaml is meant to be valid");
        } else {
            assert_ne!(got, "", "{name}.yaml is meant to be invalid");
        }
        if bless {
            fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!("missing {name}.expected; run with MEDIC_BLESS=1 to create it")
        });
        if got != want {
            failures.push(format!("--- {name}.expected\n{want}+++ got\n{got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "snapshots differ (MEDIC_BLESS=1 rewrites them):\n{}",
        failures.join("\n")
    );
}
