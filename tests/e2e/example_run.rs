use crate::support::{StandIn, medic, medic_in, repo};

/// The README's demo, as a test: detect → communicate → restore → verify → follow-up
/// against the stand-in service, through the `medic` binary.
#[test]
fn checkout_flag_example_runs_end_to_end() {
    let service = StandIn::start();
    let data = tempfile::tempdir().unwrap();
    let alert_src =
        std::fs::read_to_string(repo().join("examples/checkout-flag/alert.json")).unwrap();
    let alert = data.path().join("alert.json");
    std::fs::write(
        &alert,
        alert_src.replace("http://127.0.0.1:18080", &service.url()),
    )
    .unwrap();

    let out = medic_in(data.path())
        .arg("run")
        .arg(repo().join("examples/checkout-flag/workflow.yaml"))
        .arg("--alert")
        .arg(&alert)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "medic run failed:\n{stdout}\n{stderr}"
    );

    // The timeline shows each phase as it went, with outputs.
    for needle in [
        "detect      confirm",
        "attempt 1 failed: step error: expected status 200, got 500",
        "communicate announce",
        "restore     retoggle",
        "verify      verify",
        "follow-up   all-clear",
        "run succeeded",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert!(
        stdout.contains(r#""status":200"#),
        "verify output on the timeline:\n{stdout}"
    );

    // The world changed as the workflow said: flag off, messages posted, with the
    // verify step's output templated into the all-clear.
    assert_eq!(service.get("/flags/new-checkout")["enabled"], false);
    let chat = service.get("/chat");
    let messages = chat["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{chat}");
    assert!(
        messages[0].as_str().unwrap().contains("CheckoutErrorRate"),
        "{chat}"
    );
    assert!(
        messages[1].as_str().unwrap().contains("health 200 in"),
        "{chat}"
    );
    // The retoggle opted into the idempotency key.
    let reqs = service.get("/requests");
    let disable = reqs["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/flags/new-checkout/disable")
        .expect("disable request");
    assert_eq!(disable["idempotency_key"].as_str().unwrap().len(), 32);

    // The run is in the store: listed, and shown with its journal.
    let list = medic()
        .arg("--data")
        .arg(data.path())
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["status"], "succeeded");
    let id = runs[0]["id"].as_str().unwrap();
    let show = medic()
        .arg("--data")
        .arg(data.path())
        .args(["runs", "show", id, "--json", "--journal"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["steps"].as_array().unwrap().len(), 5);
    assert_eq!(shown["steps"][3]["id"], "verify");
    assert_eq!(shown["steps"][3]["output"]["status"], 200);
    let journal = shown["journal"].as_array().unwrap();
    assert!(
        journal
            .iter()
            .any(|e| e["event"]["call"]["call"] == "http_request")
    );
}

#[test]
fn a_failing_run_exits_non_zero_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    let wf = data.path().join("wf.yaml");
    std::fs::write(
        &wf,
        "apiVersion: medic/v1\nkind: Workflow\nname: down\nsteps:\n  - id: probe\n    phase: verify\n    uses: http-probe\n    with: { url: \"http://127.0.0.1:9/health\" }\n    allow: [127.0.0.1]\n    timeout: 5s\n",
    )
    .unwrap();
    let alert = data.path().join("alert.json");
    std::fs::write(
        &alert,
        r#"{"title": "down", "labels": {"alertname": "Down"}}"#,
    )
    .unwrap();
    let out = medic_in(data.path())
        .arg("run")
        .arg(&wf)
        .arg("--alert")
        .arg(&alert)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("run failed"), "{stdout}");
    assert!(
        stdout.contains("127.0.0.1:9"),
        "names the unreachable URL:\n{stdout}"
    );
}
