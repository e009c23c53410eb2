//! The restore examples (examples/bad-flag, examples/bad-deploy) run end to end through their
//! own scripts, with this build's `medic` and step components, against the real services the
//! scripts start. The outcome is checked through those services while the script holds them
//! up (`MEDIC_EXAMPLE_KEEP=1`): the flag as Unleash reports it, the messages as a Matrix user
//! reads them, the deployment as kubectl shows it, the error rate as Prometheus computes it,
//! and the run as `medic runs show` reports it. Then the script is let go, and everything it
//! started must be gone.
//!
//! Needs scripts/deps.d/10-prometheus, 20-unleash, 30-kubectl and 40-synapse; the scripts
//! fail naming the missing installer.

use crate::postmortem::{assert_no_secret, postmortem_cli, record_journals};
use crate::support::{http_get, medic, repo, steps_dir};
use serde_json::Value;
use std::collections::HashMap;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Cold starts of Unleash (database migrations) and Synapse take tens of seconds on an idle
/// machine and much longer on a loaded one; the run itself takes seconds.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(900);

/// One example's script, running, holding its services up until released.
pub(crate) struct Example {
    child: Child,
    stdin: Option<ChildStdin>,
    dir: tempfile::TempDir,
    /// The addresses and handles the script wrote (`NAME=value` lines).
    state: HashMap<String, String>,
}

impl Example {
    /// Runs `examples/<name>/run.sh` with `env` until it has written its state file (the run
    /// is over, the services still up). Panics with the script's output if it exits first.
    pub(crate) fn start(name: &str, env: &[(&str, &str)]) -> Example {
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
            .expect("bash runs the example's script");
        let stdin = child.stdin.take();
        let mut example = Example {
            child,
            stdin,
            dir,
            state: HashMap::new(),
        };
        let deadline = Instant::now() + SCENARIO_TIMEOUT;
        while !state_file.exists() {
            if let Ok(Some(status)) = example.child.try_wait() {
                panic!(
                    "examples/{name}/run.sh exited ({status}) before the run was over:\n{}",
                    example.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "examples/{name}/run.sh did not finish within {SCENARIO_TIMEOUT:?}:\n{}",
                example.output()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let text = std::fs::read_to_string(&state_file).unwrap();
        example.state = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        example
    }

    pub(crate) fn get(&self, key: &str) -> &str {
        self.state
            .get(key)
            .unwrap_or_else(|| panic!("the script wrote no {key}: {:?}", self.state.keys()))
    }

    /// What the script printed so far.
    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output")).unwrap_or_default()
    }

    /// `medic runs show RUN --json` (or the only run) on the example's store.
    pub(crate) fn run_report(&self) -> Value {
        let data = Path::new(self.get("MEDIC_DATA"));
        let list = medic()
            .arg("--data")
            .arg(data)
            .args(["runs", "--json"])
            .output()
            .unwrap();
        let runs: Value = serde_json::from_slice(&list.stdout)
            .unwrap_or_else(|e| panic!("medic runs --json: {e}\n{}", self.output()));
        assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
        let id = runs[0]["id"].as_str().unwrap();
        let show = medic()
            .arg("--data")
            .arg(data)
            .args(["runs", "show", id, "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&show.stdout).unwrap()
    }

    /// Closes the script's stdin so it stops its services, and returns its exit status and
    /// output.
    pub(crate) fn finish(mut self) -> (bool, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the script did not stop its services within 2 minutes:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        (status.success(), self.output())
    }
}

impl Drop for Example {
    /// A failed assertion still stops the services: SIGTERM runs the script's exit trap.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

/// One request to `http://host:port`: (status, JSON body or null).
pub(crate) fn request(base: &str, method: &str, path: &str, auth: Option<&str>) -> (u16, Value) {
    let host = base.trim_start_matches("http://");
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    let (status, body) = crate::support::http_request(host, method, path, &headers, &[])
        .unwrap_or_else(|e| panic!("{method} {base}{path}: {e}"));
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The `m.room.message` bodies of a room, oldest first, with their senders, as `token`'s
/// user reads them.
fn room_messages(matrix: &str, token: &str, room: &str) -> Vec<(String, String)> {
    let path = format!(
        "/_matrix/client/v3/rooms/{}/messages?dir=f&limit=1000",
        crate::synapse::encode(room)
    );
    let (status, page) = request(matrix, "GET", &path, Some(&format!("Bearer {token}")));
    assert_eq!(status, 200, "reading room {room}: {page}");
    page["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| {
            let body = e["content"]["body"].as_str().unwrap_or_default();
            (e["sender"].as_str().unwrap().to_string(), body.to_string())
        })
        .collect()
}

/// The checkout error ratio as Prometheus computes it now.
pub(crate) fn error_ratio(prometheus: &str) -> f64 {
    let query = "sum(rate(http_requests_total%7Bjob%3D%22checkout%22%2Ccode%3D~%225..%22%7D%5B5s%5D))\
                 %20%2F%20sum(rate(http_requests_total%7Bjob%3D%22checkout%22%7D%5B5s%5D))";
    let (status, body) = http_get(&format!("{prometheus}/api/v1/query?query={query}")).unwrap();
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    let value = &doc["data"]["result"][0]["value"][1];
    value
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .parse()
        .unwrap()
}

/// Nothing answers at `base` any more: the script's exit trap stopped the service.
pub(crate) fn assert_stopped(base: &str, what: &str) {
    let host = base.trim_start_matches("http://");
    assert!(
        TcpStream::connect(host).is_err(),
        "{what} at {base} still answers after the script exited"
    );
}

/// The run's postmortem in every format from `medic postmortem`, checked free of the
/// example's secrets (journal too), its journal recorded for the goldens (MEDIC_BLESS=1);
/// returns the JSON facts.
fn postmortem(example: &Example, run: &str, name: &str, secrets: &[&str]) -> Value {
    let data = Path::new(example.get("MEDIC_DATA"));
    let outputs: Vec<(&str, String)> = ["md", "json", "html", "svg"]
        .into_iter()
        .map(|f| (f, postmortem_cli(data, run, f, &[])))
        .collect();
    let named: Vec<(&str, &str)> = secrets.iter().map(|s| (*s, example.get(s))).collect();
    let journal = record_journals(data, &[run.to_string()], name, &named).to_string();
    let mut all: Vec<(&str, &str)> = outputs.iter().map(|(f, t)| (*f, t.as_str())).collect();
    all.push(("journal", &journal));
    let secrets: Vec<&str> = named.iter().map(|(_, v)| *v).collect();
    assert_no_secret(&all, &secrets);
    serde_json::from_str(&outputs[1].1).unwrap()
}

pub(crate) fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    let steps = report["steps"].as_array().unwrap();
    steps
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {report:#}"))
}

#[test]
fn bad_flag_example_turns_the_flag_off_and_posts_the_all_clear() {
    let example = Example::start("bad-flag", &[]);
    let unleash = example.get("UNLEASH_URL").to_string();
    let matrix = example.get("MATRIX_URL").to_string();

    // Unleash itself says the flag is off in production.
    let (status, feature) = request(
        &unleash,
        "GET",
        "/api/admin/projects/default/features/new-checkout",
        Some(example.get("UNLEASH_TOKEN")),
    );
    assert_eq!(status, 200, "{feature}");
    let production = feature["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "production")
        .expect("a production environment");
    assert_eq!(production["enabled"], false, "{feature}");

    // The on-call reads the announcement, then the all-clear, both from the bot.
    let messages = room_messages(
        &matrix,
        example.get("MATRIX_ONCALL_TOKEN"),
        example.get("MATRIX_ROOM_ID"),
    );
    assert_eq!(messages.len(), 2, "{messages:?}\n{}", example.output());
    assert!(
        messages
            .iter()
            .all(|(sender, _)| sender == "@medic:medic.test")
    );
    assert!(
        messages[0].1.starts_with("CheckoutErrorRate")
            && messages[0].1.contains("new-checkout is enabled=true"),
        "{messages:?}"
    );
    assert!(
        messages[1].1.starts_with("Recovered: new-checkout is off")
            && messages[1].1.contains("changed: true"),
        "{messages:?}"
    );

    // Prometheus sees checkout healthy again.
    assert!(error_ratio(example.get("PROM_URL")) < 0.01);

    // The run: the flag was on when looked at, turned off by the retoggle, verified.
    let report = example.run_report();
    assert_eq!(report["status"], "succeeded", "{report:#}");
    assert_eq!(step(&report, "flag")["output"]["current"], true);
    assert_eq!(step(&report, "retoggle")["output"]["changed"], true);
    assert_eq!(step(&report, "error-rate")["output"]["satisfied"], true);

    // The postmortem: a retoggle, verified after retries, measured from the alert's start.
    let run = report["id"].as_str().unwrap();
    let secrets = ["UNLEASH_TOKEN", "MATRIX_BOT_TOKEN", "MATRIX_ONCALL_TOKEN"];
    let pm = postmortem(&example, run, "bad-flag", &secrets);
    assert_eq!(pm["restore"][0]["kind"], "retoggle", "{pm:#}");
    for m in [
        "time_to_detect",
        "time_to_communicate",
        "time_to_mitigate",
        "time_to_verified",
    ] {
        assert!(pm["metrics"][m]["seconds"].is_number(), "{m}: {pm:#}");
    }

    let (ok, output) = example.finish();
    assert!(ok, "the script failed:\n{output}");
    assert!(output.contains("run succeeded"), "{output}");
    assert_stopped(&unleash, "Unleash");
    assert_stopped(&matrix, "Synapse");
}

#[test]
fn bad_deploy_example_rolls_back_freezes_and_resumes_when_approved() {
    // The API server refuses the rollback once: the journal (and the postmortem golden
    // files recorded from it) has a retry.
    let example = Example::start(
        "bad-deploy",
        &[
            ("MEDIC_EXAMPLE_DECIDE", "approve"),
            ("MEDIC_EXAMPLE_HICCUP", "1"),
        ],
    );
    let k8s = example.get("K8S_URL").to_string();
    let matrix = example.get("MATRIX_URL").to_string();

    // kubectl: back on the good image as a new revision, and not paused after the resume.
    let kubectl = |args: &[&str]| {
        let out = Command::new("kubectl")
            .env("KUBECONFIG", example.get("KUBECONFIG"))
            .arg("--request-timeout=20s")
            .args(args)
            .output()
            .expect("kubectl (scripts/deps.d/30-kubectl)");
        assert!(out.status.success(), "kubectl {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let deployment: Value =
        serde_json::from_str(&kubectl(&["get", "deployment", "checkout", "-o", "json"])).unwrap();
    let image = &deployment["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image, "shop/checkout:1.41", "{deployment:#}");
    assert_ne!(deployment["spec"]["paused"], true, "{deployment:#}");
    let annotations = &deployment["metadata"]["annotations"];
    assert_eq!(annotations["deployment.kubernetes.io/revision"], "3");
    let history = kubectl(&["rollout", "history", "deployment/checkout"]);
    let rows: Vec<Vec<&str>> = history
        .lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [vec!["2", "release", "1.42"], vec!["3", "release", "1.41"]],
        "{history}"
    );

    // The freeze happened and was lifted: the API server saw pause, then resume, after the
    // rollback (kubectl refuses to roll back a paused deployment, and so does the step).
    let (_, seen) = request(&k8s, "GET", "/_test/requests", None);
    let patches: Vec<&Value> = seen["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "PATCH" && r["path"].as_str().unwrap().ends_with("/checkout"))
        .map(|r| &r["body"])
        .collect();
    let paused: Vec<Value> = patches
        .iter()
        .filter_map(|b| b["spec"].get("paused").cloned())
        .collect();
    assert_eq!(
        paused,
        [Value::Bool(true), Value::Bool(false)],
        "{patches:#?}"
    );
    let rollback = patches.iter().position(|b| b.is_array());
    let pause = patches.iter().position(|b| b["spec"]["paused"] == true);
    assert!(rollback < pause && rollback.is_some(), "{patches:#?}");

    // The war room: opened for the incident with the on-call invited, and it tells the story.
    let messages = room_messages(
        &matrix,
        example.get("MATRIX_ONCALL_TOKEN"),
        example.get("WAR_ROOM"),
    );
    let bodies: Vec<&str> = messages.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(bodies.len(), 3, "{bodies:#?}\n{}", example.output());
    assert!(bodies[0].contains("checkout runs shop/checkout:1.42 (revision 2); rolling back"));
    assert!(bodies[1].starts_with("Recovered: checkout is back on shop/checkout:1.41"));
    assert!(bodies[1].contains("PAUSED"));
    // ... with the time to mitigate and the postmortem link, from the run itself.
    let run = example.get("RUN_ID").to_string();
    let link = format!(
        "Postmortem draft: {}/api/runs/{run}/postmortem",
        example.get("MEDIC_SERVER")
    );
    assert!(bodies[1].ends_with(&link), "{}", bodies[1]);
    assert_eq!(
        bodies[2],
        "Rollouts of checkout resumed (oncall approved). Postmortem owner: on-call."
    );

    assert!(error_ratio(example.get("PROM_URL")) < 0.01);

    // The run: approved by the on-call through `medic approve`, not by the deadline.
    let report = example.run_report();
    assert_eq!(report["status"], "succeeded", "{report:#}");
    let gate = &step(&report, "resume-rollouts")["output"];
    assert_eq!(gate["approved"], true, "{gate}");
    assert_eq!(gate["by"], "oncall", "{gate}");
    assert_eq!(gate["by_deadline"], false, "{gate}");
    assert_eq!(step(&report, "undo")["output"]["to_revision"], 1);
    assert_eq!(step(&report, "undo")["attempts"], 2, "the 503 was retried");
    assert_eq!(step(&report, "kept-paused")["status"], "skipped");

    // The postmortem: a rollback, the on-call's decision with its comment, the incident
    // resolved by Alertmanager while the gate waited; the time to mitigate is what the
    // follow-up step posted.
    let secrets = [
        "MATRIX_BOT_TOKEN",
        "MATRIX_ONCALL_TOKEN",
        "INTAKE_TOKEN",
        "ONCALL_TOKEN",
    ];
    let pm = postmortem(&example, &run, "bad-deploy", &secrets);
    assert!(
        pm["restore"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "rollback")
    );
    assert_eq!(pm["gates"][0]["by"], "oncall", "{pm:#}");
    assert_eq!(
        pm["gates"][0]["comment"],
        "decided by examples/bad-deploy/run.sh"
    );
    assert_eq!(pm["incident"]["status"], "resolved", "{pm:#}");
    let mitigated = pm["metrics"]["time_to_mitigate"]["text"].as_str().unwrap();
    assert!(
        bodies[1].contains(&format!("Time to mitigate: {mitigated} from impact start")),
        "{}",
        bodies[1]
    );

    let (ok, output) = example.finish();
    assert!(ok, "the script failed:\n{output}");
    assert!(output.contains("medic approve"), "{output}");
    assert_stopped(&k8s, "the Kubernetes API test server");
    assert_stopped(&matrix, "Synapse");
}

/// Where a missing tool leads: the script names the installer instead of failing obscurely.
#[test]
fn an_example_without_its_services_names_the_installer() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo().join("examples/bad-deploy/run.sh"))
        .env("MEDIC", env!("CARGO_BIN_EXE_medic"))
        .env("MEDIC_STEPS", steps_dir())
        // The installers put Synapse (and Unleash) under MEDIC_DEPS_DIR: here, nothing.
        .env("MEDIC_DEPS_DIR", empty.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("Synapse is not installed") && stderr.contains("scripts/deps.d/40-synapse"),
        "{stderr}"
    );
}
