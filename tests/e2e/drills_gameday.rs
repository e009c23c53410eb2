//! A game day: `medic drill run --speed N` paces virtual time, prints the timeline live,
//! and its gate waits for a person, who decides it with `medic approve` against the same
//! data dir while the drill runs; a person who is not an approver is refused with the
//! reason. No service runs: every request is answered from the drill file. The kept drill
//! run is marked by `medic runs` and labelled `drill="true"` in `medic serve`'s `/metrics`.

use crate::support::{medic, repo, steps_dir};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn approve(data: &Path, run: &str, by: &str, comment: &str) -> std::process::Output {
    medic()
        .arg("--data")
        .arg(data)
        .args(["approve", run, "roll-forward-ok", "--as", by])
        .args(["--comment", comment])
        .output()
        .unwrap()
}

#[test]
fn a_paced_drill_waits_at_its_gate_for_medic_approve() {
    let data = tempfile::tempdir().unwrap();
    let file = repo().join("examples/drills/migration-roll-forward.yaml");
    // 20x: the gate's 20-minute deadline is a minute of real time, time enough to decide
    // on a loaded machine; the recording's own decision (after 4 minutes) is not replayed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_medic"))
        .arg("--data")
        .arg(data.path())
        .env("MEDIC_STEPS", steps_dir())
        .args(["drill", "run"])
        .arg(&file)
        .args(["--speed", "20", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the gate never waited:\n{}", printed.join("\n")));
        printed.push(line.clone());
        if let Some(rest) = line
            .trim()
            .strip_prefix("waiting for people: medic approve ")
        {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let all = printed.join("\n");
    assert!(
        all.contains(&format!("drill run {run}: a game day at 20x real time")),
        "{all}"
    );
    assert!(all.contains("GATE"), "the timeline prints live: {all}");

    // Not an approver: refused, with the reason, and the gate still waits.
    let refused = approve(data.path(), &run, "mallory", "let me");
    assert!(!refused.status.success(), "{refused:?}");
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("mallory") && why.contains("oncall"), "{why}");

    let ok = approve(data.path(), &run, "oncall", "game day: roll forward");
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{ok:?}");
    assert!(
        said.contains(&format!(
            "approved gate roll-forward-ok of drill run {run} as oncall"
        )),
        "{said}"
    );

    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the drill did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        status.success(),
        "{out}\n{}",
        rx.try_iter().collect::<Vec<_>>().join("\n")
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    let steps = report["replay"]["steps"].as_array().unwrap();
    let step = |id: &str| steps.iter().find(|s| s["id"] == id).unwrap().clone();
    assert_eq!(
        step("roll-forward-ok")["decision"],
        "approved by oncall",
        "{report:#}"
    );
    assert_eq!(step("roll-forward")["status"], "succeeded", "{report:#}");
    assert_eq!(step("page-db-owner")["status"], "skipped", "{report:#}");

    // Kept under the id people used, with the person's comment; the folder is gone.
    let shown = medic()
        .arg("--data")
        .arg(data.path())
        .args(["runs", "show", &run, "--json"])
        .output()
        .unwrap();
    let kept: Value =
        serde_json::from_slice(&shown.stdout).unwrap_or_else(|e| panic!("{e}: {shown:?}"));
    let gate = kept["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "roll-forward-ok")
        .unwrap();
    assert_eq!(gate["output"]["by"], "oncall", "{kept:#}");
    assert_eq!(
        gate["output"]["comment"], "game day: roll forward",
        "{kept:#}"
    );
    assert!(!data.path().join("live-drills").join(&run).exists());
    // Too late now: the drill is over, so the store answers (the run is finished).
    let late = approve(data.path(), &run, "oncall", "again");
    assert!(!late.status.success());

    // Kept apart from real incidents: `medic runs` marks it, and `medic serve` on the same
    // store counts it under drill="true", not with the real runs.
    let listed = medic()
        .arg("--data")
        .arg(data.path())
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(runs[0]["id"], run.as_str());
    assert_eq!(runs[0]["drill"], true, "{runs:#}");
    let port = crate::support::free_port();
    let serve = crate::harness::serve::Serve::start(data.path(), port);
    let (status, metrics) =
        crate::harness::serve::http(serve.port, "GET", "/metrics", None).unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("medic_runs{status=\"succeeded\",drill=\"true\"} 1\n")
            && metrics.contains("medic_runs{status=\"succeeded\"} 0\n"),
        "{metrics}"
    );
}
