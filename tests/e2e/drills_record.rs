//! Drills recorded from real runs of the restore examples (examples/bad-flag against real
//! Unleash, Synapse and Prometheus; examples/bad-deploy against the kubectl-proven
//! Kubernetes API, Synapse and Prometheus, through `medic serve`), then replayed after the
//! example's script stopped every service: the same verdict and provider calls, with
//! nothing left to connect to. The services' tokens appear nowhere in the drill file, the
//! reports or the drill run's journal.
//!
//! Needs scripts/deps.d/10-prometheus, 20-unleash, 30-kubectl and 40-synapse.

use crate::support::{medic, repo, steps_dir};
use serde_json::Value;
use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An example's script, held after its run (`MEDIC_EXAMPLE_KEEP=1`) until released.
struct Held {
    child: Child,
    stdin: Option<ChildStdin>,
    dir: tempfile::TempDir,
    state: HashMap<String, String>,
}

impl Held {
    fn start(name: &str, env: &[(&str, &str)]) -> Held {
        let dir = tempfile::tempdir().unwrap();
        let state_file = dir.path().join("state");
        let log = std::fs::File::create(dir.path().join("output")).unwrap();
        let mut child = Command::new("bash")
            .arg(repo().join(format!("examples/{name}/run.sh")))
            .env("MEDIC", env!("CARGO_BIN_EXE_medic"))
            .env("MEDIC_STEPS", steps_dir())
            .env("MEDIC_EXAMPLE_KEEP", "1")
            .env("MEDIC_EXAMPLE_STATE", &state_file)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut held = Held {
            child,
            stdin,
            dir,
            state: HashMap::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(900);
        while !state_file.exists() {
            if let Ok(Some(s)) = held.child.try_wait() {
                panic!("examples/{name}/run.sh exited ({s}):\n{}", held.output());
            }
            assert!(
                Instant::now() < deadline,
                "{name} took too long:\n{}",
                held.output()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        held.state = std::fs::read_to_string(&state_file)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        held
    }

    fn get(&self, key: &str) -> String {
        self.state
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.state))
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output")).unwrap_or_default()
    }

    /// Lets the script stop its services and waits for it.
    fn release(mut self) -> String {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "services not stopped:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.output()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

fn run(data: &Path, args: &[&str]) -> Output {
    medic()
        .arg("--data")
        .arg(data)
        .env("MEDIC_STEPS", steps_dir())
        .args(args)
        .output()
        .unwrap()
}

fn all(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Records the example's only run into a drill file; returns it and the run id.
fn record(held: &Held, out: &Path) -> (PathBuf, String) {
    let data = PathBuf::from(held.get("MEDIC_DATA"));
    let list = run(&data, &["runs", "--json"]);
    let runs: Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let file = out.join("drill.yaml");
    let mut args = vec!["drill", "record", &id, "-o"];
    let shown = file.display().to_string();
    args.push(&shown);
    // `medic serve`'s external_url: the follow-up's postmortem link renders the same.
    if let Some(url) = held.state.get("MEDIC_SERVER") {
        args.extend(["--external-url", url]);
    }
    let rec = run(&data, &args);
    assert!(rec.status.success(), "{}", all(&rec));
    // MEDIC_DRILL_KEEP=DIR keeps the recording (how examples/drills got theirs).
    if let Ok(keep) = std::env::var("MEDIC_DRILL_KEEP") {
        let name = held
            .dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let _ = std::fs::copy(&file, Path::new(&keep).join(format!("{name}.yaml")));
    }
    (file, id)
}

/// Replays `file` on a fresh store: (text report, JSON report, everything printed, the
/// kept drill run's journal).
fn replay(file: &Path, extra: &[&str]) -> (Output, Value, String) {
    let data = tempfile::tempdir().unwrap();
    let f = file.display().to_string();
    let mut args = vec!["drill", "run", f.as_str()];
    args.extend_from_slice(extra);
    let text = run(data.path(), &args);
    args.push("--json");
    let json = run(data.path(), &args);
    let report: Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", all(&json)));
    let listed = run(data.path(), &["runs", "--json"]);
    let runs: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let mut journals = String::new();
    for r in runs.as_array().unwrap() {
        let shown = run(
            data.path(),
            &["runs", "show", r["id"].as_str().unwrap(), "--journal"],
        );
        journals.push_str(&all(&shown));
    }
    let printed = format!("{}{}{journals}", all(&text), all(&json));
    (text, report, printed)
}

fn calls(outcome: &Value) -> Vec<(String, Value)> {
    outcome["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["calls"].clone()))
        .collect()
}

fn assert_no_secret(what: &str, haystack: &str, secrets: &[String]) {
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !haystack.contains(s.as_str()),
            "a secret value appears in {what}"
        );
    }
}

fn assert_down(url: &str) {
    let host = url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let host = host.split('/').next().unwrap();
    assert!(TcpStream::connect(host).is_err(), "{url} still answers");
}

#[test]
fn bad_flag_recorded_and_replayed_with_every_service_down() {
    let tmp = tempfile::tempdir().unwrap();
    let held = Held::start("bad-flag", &[]);
    let (file, _) = record(&held, tmp.path());
    let secrets = vec![held.get("UNLEASH_TOKEN"), held.get("MATRIX_ONCALL_TOKEN")];
    let urls = [
        held.get("UNLEASH_URL"),
        held.get("MATRIX_URL"),
        held.get("PROM_URL"),
    ];
    let script = held.release();
    for u in &urls {
        assert_down(u);
    }
    let drill_text = std::fs::read_to_string(&file).unwrap();
    assert_no_secret("the drill file", &drill_text, &secrets);
    assert!(
        drill_text.contains("[redacted:UNLEASH_TOKEN]"),
        "the token is a placeholder"
    );

    let (text, report, printed) = replay(&file, &[]);
    assert!(text.status.success(), "{}\n{script}", all(&text));
    assert_eq!(report["verdict"], "restored_as_before", "{}", all(&text));
    assert_eq!(calls(&report["replay"]), calls(&report["original"]));
    assert_eq!(report["divergences"], Value::Array(vec![]));
    assert_no_secret("the reports and journals", &printed, &secrets);

    // The flag API answering 503 for good: the retoggle's five attempts fail in virtual
    // time, and the report names it.
    let (text, report, _) = replay(&file, &["--fault", "retoggle=503"]);
    assert_eq!(text.status.code(), Some(1), "{}", all(&text));
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains("verdict: DID NOT RESTORE: step retoggle failed"),
        "{t}"
    );
    assert_eq!(report["replay"]["steps"][2]["attempts"], 5, "{t}");
}

#[test]
fn bad_deploy_recorded_and_replayed_with_every_service_down_and_forked_at_its_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let held = Held::start("bad-deploy", &[("MEDIC_EXAMPLE_DECIDE", "approve")]);
    let (file, _) = record(&held, tmp.path());
    let secrets = vec![held.get("MATRIX_ONCALL_TOKEN")];
    let urls = [
        held.get("K8S_URL"),
        held.get("MATRIX_URL"),
        held.get("PROM_URL"),
    ];
    let script = held.release();
    for u in &urls {
        assert_down(u);
    }
    let drill_text = std::fs::read_to_string(&file).unwrap();
    assert_no_secret("the drill file", &drill_text, &secrets);

    let (text, report, printed) = replay(&file, &[]);
    assert!(text.status.success(), "{}\n{script}", all(&text));
    assert_eq!(report["verdict"], "restored_as_before", "{}", all(&text));
    assert_eq!(calls(&report["replay"]), calls(&report["original"]));
    assert_no_secret("the reports and journals", &printed, &secrets);

    // The undo answering 503 three times: three attempts, then "did not restore".
    let (text, _, _) = replay(&file, &["--fault", "undo=503x3"]);
    assert_eq!(text.status.code(), Some(1));
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains("verdict: DID NOT RESTORE: step undo failed"),
        "{t}"
    );
    assert!(t.contains("failed (3 attempts)"), "{t}");

    // A fork at the gate with the opposite decision: rollouts stay paused; the message
    // saying so was never recorded, so it is a divergence naming the closest request.
    let (_, report, _) = replay(
        &file,
        &["--from", "1s", "--decide", "resume-rollouts=reject"],
    );
    let steps = report["replay"]["steps"].as_array().unwrap();
    let get = |id: &str| steps.iter().find(|s| s["id"] == id).unwrap().clone();
    assert_eq!(get("resume")["status"], "skipped");
    assert_eq!(get("resume-rollouts")["decision"], "rejected by oncall");
    let d = &report["divergences"][0];
    assert_eq!(d["step"], "kept-paused", "{report}");
    assert!(
        d["closest"]
            .as_str()
            .unwrap()
            .contains("/send/m.room.message/"),
        "{d}"
    );
}
