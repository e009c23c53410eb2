//! The web view in a real headless Chromium (Debian's, installed by
//! scripts/deps.d/60-chromium), driven over WebDriver through a chromedriver each test
//! starts on a free port (`webdriver`), against a real `medic serve` process.
//!
//! Each test saves screenshots under `$CARGO_TARGET_TMPDIR/web/`; docs/web.md shows some.

use crate::harness::serve::{TOKEN, http};
use crate::harness::webdriver::Browser;
use crate::support::{free_port, medic, steps_dir};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A warm-up step that is not ready on its first attempt (so the page can watch the run
/// advance), a gate only alice may decide, and a step after it.
const WORKFLOW: &str = "apiVersion: medic/v1\nkind: Workflow\nname: checkout-rollback\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: look\n    phase: detect\n    uses: echo\n    with: { log: 'error ratio 7.5% on checkout', retry_after_ms: 1500, retry_until_attempt: 2 }\n    retry: { attempts: 2, backoff: 1s }\n  - id: roll-back\n    phase: restore\n    gate:\n      prompt: \"{{ incident.title }}: roll checkout back to the previous release?\"\n      approvers: [alice]\n      deadline: 30m\n      on-deadline: reject\n  - id: tell\n    phase: verify\n    uses: echo\n    with: { annotate: 'rolled back: {{ incident.title }}' }\n";

/// `medic serve` with people in `[users]` and the workflow above.
struct WebServe {
    child: Option<Child>,
    port: u16,
    data: PathBuf,
}

impl WebServe {
    fn start(data: &Path) -> WebServe {
        let workflows = data.join("workflows");
        std::fs::create_dir_all(&workflows).unwrap();
        std::fs::write(workflows.join("checkout.yaml"), WORKFLOW).unwrap();
        std::fs::write(
            data.join("medic.toml"),
            format!("tokens = [\"{TOKEN}\"]\n[users]\nalice = \"alice-token\"\ncarol = \"carol-token\"\n"),
        )
        .unwrap();
        let mut s = WebServe {
            child: None,
            port: free_port(),
            data: data.to_path_buf(),
        };
        s.up();
        s
    }

    /// Starts (again) on the same port and store.
    fn up(&mut self) {
        let child = medic()
            .arg("--data")
            .arg(&self.data)
            .arg("--cache")
            .arg(std::env::temp_dir().join("medic-e2e-cli-cache"))
            .arg("--steps")
            .arg(steps_dir())
            .arg("serve")
            .arg("--config")
            .arg(self.data.join("medic.toml"))
            .arg("--workflows")
            .arg(self.data.join("workflows"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http(self.port, "GET", "/healthz", None) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("medic serve did not come up on port {}", self.port);
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Posts a firing Alertmanager alert titled `title`.
    fn alert(&self, title: &str) {
        let body = json!({"version": "4", "status": "firing", "receiver": "medic",
            "groupKey": "{}:{alertname=\"CheckoutErrors\"}", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": {"alertname": "CheckoutErrors", "severity": "critical"},
                "annotations": {"summary": title}, "startsAt": "2026-11-30T03:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://127.0.0.1:9090",
                "fingerprint": "c0ffee"}]});
        let (status, answer) = http(
            self.port,
            "POST",
            "/intake/alertmanager",
            Some(&body.to_string()),
        )
        .unwrap();
        assert_eq!(status, 202, "{answer}");
    }

    fn api(&self, path: &str) -> Value {
        let (status, body) = http(self.port, "GET", path, None).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for WebServe {
    fn drop(&mut self) {
        self.down();
    }
}

/// Signs in through the form, as a person would.
fn sign_in(b: &Browser, serve: &WebServe, token: &str) {
    b.goto(&serve.url("/ui/runs"));
    b.type_into("#token", token);
    b.click("form button[type=submit]");
    b.wait_for("header .who", 10);
}

fn sign_out(b: &Browser) {
    b.click("form[action='/ui/signout'] button");
    b.wait_for("#token", 10);
}

/// Marks the document so a later check can tell that the page was never reloaded.
const MARK: &str = "window.__medic_not_reloaded = true; return true;";
const STILL_MARKED: &str = "return window.__medic_not_reloaded === true;";

#[test]
fn signs_in_and_watches_an_alerts_run_appear_and_advance_without_reloading() {
    let dir = tempfile::tempdir().unwrap();
    let serve = WebServe::start(dir.path());
    let b = Browser::start("live-run");
    sign_in(&b, &serve, "alice-token");
    assert!(b.text("header .who").contains("alice"));
    b.until(
        "the runs page to be live",
        10,
        "return document.getElementById('live-status').dataset.state === 'live';",
    );
    b.execute(MARK);
    serve.alert("Checkout 5xx above 5%");
    b.until(
        "the new run in the list",
        15,
        "return !!document.querySelector('table.runs a[href^=\"/ui/runs/\"]');",
    );
    b.until("no reload", 1, STILL_MARKED);
    b.shot("runs");

    b.click("table.runs a[href^='/ui/runs/']");
    b.until(
        "the run page to be live",
        10,
        "return document.getElementById('live-status').dataset.state === 'live';",
    );
    b.execute(MARK);
    // The warm-up step retries after 1.5 s; then the gate opens: both arrive live.
    b.until("the first step to succeed", 20, "const s = document.getElementById('step-look'); return !!s && s.dataset.status === 'succeeded';");
    b.until(
        "the gate to show",
        10,
        "return !!document.querySelector('section.gate form.decide');",
    );
    b.until("no reload", 1, STILL_MARKED);
    let prompt = b.text("section.gate .prompt");
    assert!(
        prompt.ends_with("Checkout 5xx above 5%: roll checkout back to the previous release?"),
        "{prompt}"
    );
    b.shot("run");
}

#[test]
fn gates_are_decided_by_approvers_only_with_the_forms_token_and_credited_to_them() {
    let dir = tempfile::tempdir().unwrap();
    let serve = WebServe::start(dir.path());
    serve.alert("Checkout 5xx above 5%");
    let b = Browser::start("gate");

    // carol is signed in but not an approver: no form, and a hand-made POST is refused.
    sign_in(&b, &serve, "carol-token");
    b.goto(&serve.url("/ui/approvals"));
    b.until(
        "the waiting gate",
        20,
        "return !!document.querySelector('section.gate');",
    );
    assert!(b.text("section.gate").contains("Only alice may decide"));
    assert!(b.find("section.gate form.decide").is_none());
    let run = serve.api("/api/runs")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = format!(
            "const csrf = document.querySelector('form[action=\"/ui/signout\"] input[name=csrf]').value;
             const r = await fetch('/ui/runs/{run}/gates/roll-back', {{method: 'POST',
               headers: {{'content-type': 'application/x-www-form-urlencoded'}},
               body: 'csrf=' + csrf + '&decision=approve'}});
             return r.status;"
        );
    let status = b.execute(&format!("return (async () => {{ {forged} }})();"));
    assert_eq!(status, json!(403));
    sign_out(&b);

    // alice: a form without the CSRF token is refused and changes nothing.
    sign_in(&b, &serve, "alice-token");
    b.goto(&serve.url("/ui/approvals"));
    b.until(
        "the decision form",
        10,
        "return !!document.querySelector('section.gate form.decide');",
    );
    b.shot("approvals");
    b.execute("document.querySelectorAll('form.decide input[name=csrf]').forEach(e => e.remove()); return true;");
    b.click("form.decide button.approve");
    b.until(
        "the refusal",
        10,
        "return document.title.startsWith('Form refused');",
    );
    b.shot("csrf-refused");
    let steps = serve.api(&format!("/api/runs/{run}"))["steps"].clone();
    assert_eq!(
        steps[1]["status"], "running",
        "the gate is still open: {steps}"
    );

    // With the form as served: approved, with a comment, credited to alice.
    b.goto(&serve.url("/ui/approvals"));
    b.type_into(
        "form.decide textarea",
        "error ratio confirmed on the dashboard",
    );
    b.click("form.decide button.approve");
    b.until("the recorded notice", 10, "const n = document.querySelector('.notice'); return !!n && n.textContent.includes('alice');");
    b.until(
        "the run to finish",
        20,
        "return document.getElementById('run-status').textContent === 'succeeded';",
    );
    b.shot("approved");
    let report = serve.api(&format!("/api/runs/{run}"));
    let timeline = report["timeline"].to_string();
    assert!(
        timeline.contains("GATE approved by alice: \\\"error ratio confirmed on the dashboard\\\""),
        "{timeline}"
    );
    assert_eq!(report["steps"][2]["status"], "succeeded");
}

#[test]
fn says_not_live_when_medic_stops_and_recovers_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = WebServe::start(dir.path());
    serve.alert("Checkout 5xx above 5%");
    let b = Browser::start("not-live");
    sign_in(&b, &serve, "alice-token");
    let run = serve.api("/api/runs")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.goto(&serve.url(&format!("/ui/runs/{run}")));
    b.until(
        "live",
        10,
        "return document.getElementById('live-status').dataset.state === 'live';",
    );
    serve.down();
    b.until("not live", 15, "const s = document.getElementById('live-status'); return s.dataset.state === 'down' && s.textContent.startsWith('Not live');");
    b.shot("down");
    // Back on the same port and store: the session survives, the page reconnects.
    serve.up();
    b.until(
        "live again",
        30,
        "return document.getElementById('live-status').dataset.state === 'live';",
    );
    b.shot("recovered");
}

#[test]
fn shows_a_finished_runs_postmortem_with_its_timeline_picture() {
    let dir = tempfile::tempdir().unwrap();
    let serve = WebServe::start(dir.path());
    serve.alert("Checkout 5xx above 5%");
    // Through the API (the browser side of gates is tested above): alice approves.
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let runs = serve.api("/api/runs");
        if let Some(id) = runs[0]["id"].as_str() {
            let (status, _) = http(
                serve.port,
                "POST",
                &format!("/api/runs/{id}/gates/roll-back"),
                Some(
                    r#"{"decision": "approve", "by": "alice", "comment": "error ratio confirmed"}"#,
                ),
            )
            .unwrap();
            if status == 202 {
                break id.to_string();
            }
        }
        assert!(Instant::now() < deadline, "the gate never opened");
        std::thread::sleep(Duration::from_millis(200));
    };
    while serve.api(&format!("/api/runs/{run}"))["steps"][2]["status"] != "succeeded" {
        assert!(Instant::now() < deadline, "the run never finished");
        std::thread::sleep(Duration::from_millis(200));
    }

    let b = Browser::start("postmortem");
    sign_in(&b, &serve, "alice-token");
    b.goto(&serve.url(&format!("/ui/runs/{run}")));
    b.wait_for("#timeline-picture svg", 10);
    b.click(&format!("a[href='/ui/runs/{run}/postmortem']"));
    b.until(
        "the postmortem page",
        10,
        "return document.title.startsWith('Postmortem draft:');",
    );
    // The picture is drawn (it has a size) and names its phase lanes.
    b.until(
        "the picture with its phase lanes",
        10,
        "const svg = document.querySelector('#timeline-picture svg');
         if (!svg || svg.getBoundingClientRect().width < 600) return false;
         const texts = [...svg.querySelectorAll('text')].map(t => t.textContent.trim());
         return ['detect', 'restore', 'verify'].every(p => texts.includes(p));",
    );
    let link = b.execute(
        "const a = document.querySelector('a[download]'); return a ? a.getAttribute('href') : null;",
    );
    assert_eq!(link, json!(format!("/ui/runs/{run}/postmortem.md")));
    assert!(b.text("main").contains("approved by alice"));
    // Tall enough for the summary and the whole picture (docs/web-postmortem.png).
    b.resize(1200, 1300);
    b.shot("page");
}
