//! The web view (`/ui`) through the router with `oneshot`, over a real store and the real
//! sandbox: sessions, CSRF, escaping, gate decisions and the event stream. The browser
//! side (live updates, JavaScript) is tested with Chromium in tests/e2e/web.rs.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use medic_server::{LoadedWorkflow, ServeConfig, Service, router};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

mod postmortem;

const USERS: &str = "[users]\nalice = \"alice-token\"\ncarol = \"carol-token\"\n";

fn workflow(yaml: &str) -> LoadedWorkflow {
    let doc = medic_model::parse_workflow("wf.yaml", yaml).unwrap();
    let components: BTreeMap<String, String> = doc
        .workflow
        .steps
        .iter()
        .filter(|s| !s.is_gate())
        .map(|s| {
            let path = medic_test_programs::ALL
                .iter()
                .find(|(n, _)| *n == s.uses)
                .unwrap()
                .1;
            (s.id.clone(), path.to_string())
        })
        .collect();
    LoadedWorkflow {
        workflow: doc.workflow,
        file: "wf.yaml".into(),
        components,
    }
}

/// A gate only alice may decide, then a step that echoes the incident title.
const GATED: &str = "apiVersion: medic/v1\nkind: Workflow\nname: gated\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: ask\n    phase: restore\n    gate:\n      prompt: \"{{ incident.title }}: roll back?\"\n      approvers: [alice]\n      deadline: 1h\n      on-deadline: reject\n  - id: say\n    phase: communicate\n    uses: echo\n    with: { annotate: '{{ incident.title }}', title: '{{ incident.title }}' }\n";

struct Harness {
    svc: Arc<Service>,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let h = harness_with(vec![workflow(GATED)]);
    tokio::spawn(medic_server::process(h.svc.clone()));
    h
}

/// A service over `workflows` whose runs nobody drives unless the test does.
fn harness_with(workflows: Vec<LoadedWorkflow>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(medic_store::SledStore::open(dir.path().join("store")).unwrap());
    let sandbox =
        Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
    let config = ServeConfig::parse(&format!("tokens = [\"svc\"]\n{USERS}")).unwrap();
    let svc = Service::new(store, sandbox, config, workflows).unwrap();
    Harness { svc, _dir: dir }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Harness {
    async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = router(self.svc.clone())
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Signs in with a personal token; returns (cookie header, CSRF token of the session).
    async fn sign_in(&self, token: &str) -> (String, String) {
        let form = self.send("GET", "/ui/signin", &[], "").await;
        let pre = set_cookie(&form, "medic_signin");
        let csrf = hidden(&form.body, "csrf");
        let body = format!("token={token}&csrf={csrf}&next=%2Fui%2Fapprovals");
        let a = self
            .send(
                "POST",
                "/ui/signin",
                &[FORM, ("cookie", &format!("medic_signin={pre}"))],
                &body,
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        let cookie = format!("medic_session={}", set_cookie(&a, "medic_session"));
        let page = self
            .send("GET", "/ui/approvals", &[("cookie", &cookie)], "")
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        (cookie, hidden(&page.body, "csrf"))
    }

    async fn alert(&self, title: &str) -> String {
        let body = serde_json::json!({"version": "4", "status": "firing", "receiver": "medic",
            "groupKey": "{}:{alertname=\"X\"}", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": {"alertname": "Web", "severity": "critical"},
                "annotations": {"summary": title}, "startsAt": "2026-11-30T03:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom", "fingerprint": "f00d"}]});
        let a = self
            .send(
                "POST",
                "/intake/alertmanager",
                &[
                    ("authorization", "Bearer svc"),
                    ("content-type", "application/json"),
                ],
                &body.to_string(),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
        for _ in 0..200 {
            let runs = self
                .send("GET", "/api/runs", &[("authorization", "Bearer svc")], "")
                .await;
            let v: serde_json::Value = serde_json::from_str(&runs.body).unwrap();
            if let Some(id) = v[0]["id"].as_str() {
                return id.to_string();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no run started");
    }

    /// Waits until the API shows the run's step `step` in `status`.
    async fn step_status(&self, run: &str, step: &str, status: &str) -> serde_json::Value {
        for _ in 0..400 {
            let a = self
                .send(
                    "GET",
                    &format!("/api/runs/{run}"),
                    &[("authorization", "Bearer svc")],
                    "",
                )
                .await;
            let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
            let s = v["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == step)
                .cloned();
            if s.as_ref().is_some_and(|s| s["status"] == status) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("step {step} of {run} never became {status}");
    }
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn set_cookie(a: &Answer, name: &str) -> String {
    a.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", a.headers))
        .to_string()
}

/// The value of the first hidden field `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name} in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_without_a_session_redirects_to_sign_in() {
    let h = harness();
    for (method, path) in [
        ("GET", "/ui/runs"),
        ("GET", "/ui/runs?status=failed"),
        ("GET", "/ui/runs/some-run"),
        ("GET", "/ui/runs/some-run/events"),
        ("GET", "/ui/runs/some-run/steps/s/output"),
        ("GET", "/ui/incidents/f00d"),
        ("GET", "/ui/approvals"),
        ("GET", "/ui/events"),
        ("POST", "/ui/runs/some-run/gates/ask"),
        ("GET", "/ui/runs/some-run/postmortem"),
        ("GET", "/ui/runs/some-run/postmortem.md"),
        ("GET", "/ui/incidents/f00d/postmortem"),
        ("GET", "/ui/incidents/f00d/postmortem.md"),
        ("POST", "/ui/runs/some-run/drill"),
        ("POST", "/ui/runs/some-run/drill/run"),
        ("POST", "/ui/signout"),
    ] {
        let a = h.send(method, path, &[FORM], "").await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{method} {path}");
        let to = a.headers[header::LOCATION].to_str().unwrap();
        assert!(to.starts_with("/ui/signin"), "{method} {path} -> {to}");
    }
    // A stale or forged cookie is no session either.
    let a = h
        .send(
            "GET",
            "/ui/runs",
            &[("cookie", "medic_session=0123abcd")],
            "",
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    // The way back is kept, and only within the web view.
    let a = h.send("GET", "/ui/runs?status=failed", &[], "").await;
    assert_eq!(
        a.headers[header::LOCATION],
        "/ui/signin?next=/ui/runs%3Fstatus%3Dfailed"
    );
    let root = h.send("GET", "/", &[], "").await;
    assert_eq!(root.headers[header::LOCATION], "/ui/runs");
    let signin = h.send("GET", "/ui/signin", &[], "").await;
    assert_eq!(signin.status, StatusCode::OK);
    assert!(signin.body.contains("type=\"password\""), "{}", signin.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_takes_personal_tokens_only_and_sets_a_strict_cookie() {
    let h = harness();
    let form = h.send("GET", "/ui/signin", &[], "").await;
    let pre = format!("medic_signin={}", set_cookie(&form, "medic_signin"));
    let csrf = hidden(&form.body, "csrf");
    let post = |token: &'static str, csrf: String, cookie: String| {
        let h = &h;
        async move {
            let body = format!("token={token}&csrf={csrf}");
            h.send(
                "POST",
                "/ui/signin",
                &[FORM, ("cookie", &cookie), ("x-forwarded-proto", "https")],
                &body,
            )
            .await
        }
    };
    // A service token is not a person.
    let a = post("svc", csrf.clone(), pre.clone()).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("not a personal token"), "{}", a.body);
    // No sign-in form token: refused before the token is even looked at.
    let a = post("alice-token", "forged".into(), pre.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = post("alice-token", csrf, pre).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let cookie = a
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("medic_session="))
        .unwrap();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Max-Age=43200",
        "Path=/ui",
    ] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    // Signed in, the page names the person; signed out, the session is gone.
    let (cookie, csrf) = h.sign_in("alice-token").await;
    let page = h.send("GET", "/ui/runs", &[("cookie", &cookie)], "").await;
    assert!(
        page.body.contains("Signed in as <strong>alice</strong>"),
        "{}",
        page.body
    );
    let out = h
        .send(
            "POST",
            "/ui/signout",
            &[FORM, ("cookie", &cookie)],
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = h.send("GET", "/ui/runs", &[("cookie", &cookie)], "").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_text_and_step_outputs_stay_text() {
    let h = harness();
    let run = h.alert("<script>alert(1)</script> & co").await;
    h.step_status(&run, "ask", "running").await;
    let (cookie, csrf) = h.sign_in("alice-token").await;
    let c = [("cookie", cookie.as_str())];
    for path in [
        format!("/ui/runs/{run}"),
        "/ui/runs".into(),
        "/ui/approvals".into(),
    ] {
        let page = h.send("GET", &path, &c, "").await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path} carries a live script:\n{}",
            page.body
        );
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; co"),
            "{path}:\n{}",
            page.body
        );
    }
    // Decide, then the echoed output (which holds the title) is escaped too.
    let a = h
        .send(
            "POST",
            &format!("/ui/runs/{run}/gates/ask"),
            &[FORM, c[0]],
            &format!("csrf={csrf}&decision=approve"),
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    h.step_status(&run, "say", "succeeded").await;
    let page = h.send("GET", &format!("/ui/runs/{run}"), &c, "").await;
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; co")
    );
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn gate_decisions_need_the_form_token_and_an_approver_and_name_the_person() {
    let h = harness();
    let run = h.alert("checkout errors").await;
    h.step_status(&run, "ask", "running").await;
    let (alice, alice_csrf) = h.sign_in("alice-token").await;
    let (carol, carol_csrf) = h.sign_in("carol-token").await;
    let path = format!("/ui/runs/{run}/gates/ask");
    // Without the session's CSRF token (or with another session's): refused.
    let a = h
        .send(
            "POST",
            &path,
            &[FORM, ("cookie", &alice)],
            "decision=approve",
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = h
        .send(
            "POST",
            &path,
            &[FORM, ("cookie", &alice)],
            &format!("csrf={carol_csrf}&decision=approve"),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // carol is not an approver: the page says so and nothing is posted.
    let page = h
        .send("GET", &format!("/ui/runs/{run}"), &[("cookie", &carol)], "")
        .await;
    assert!(
        page.body.contains("You cannot decide this gate"),
        "{}",
        page.body
    );
    let a = h
        .send(
            "POST",
            &path,
            &[FORM, ("cookie", &carol)],
            &format!("csrf={carol_csrf}&decision=approve"),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.body
            .contains("carol may not decide gate `ask`: its approvers are alice"),
        "{}",
        a.body
    );
    // alice may; the decision is hers, with her comment.
    let a = h
        .send(
            "POST",
            &path,
            &[FORM, ("cookie", &alice)],
            &format!("csrf={alice_csrf}&decision=approve&comment=looks+safe"),
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(
        a.headers[header::LOCATION],
        format!("/ui/runs/{run}?decided=approve")
    );
    // `say` (communicate) ran before the gate (restore): wait for the gate itself.
    let v = h.step_status(&run, "ask", "succeeded").await;
    let timeline = v["timeline"].to_string();
    assert!(
        timeline.contains("GATE approved by alice: \\\"looks safe\\\""),
        "{timeline}"
    );
    // Decided once: a second decision is refused as the API refuses it.
    let a = h
        .send(
            "POST",
            &path,
            &[FORM, ("cookie", &alice)],
            &format!("csrf={alice_csrf}&decision=reject"),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(
        a.body.contains("already decided: approved by alice"),
        "{}",
        a.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_stream_resumes_after_last_event_id_and_is_not_buffered() {
    let h = harness();
    let run = h.alert("stream").await;
    h.step_status(&run, "ask", "running").await;
    let (cookie, _) = h.sign_in("alice-token").await;
    let req = Request::get(format!("/ui/runs/{run}/events"))
        .header("cookie", &cookie)
        .header("last-event-id", "0")
        .body(Body::empty())
        .unwrap();
    let resp = router(h.svc.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    let mut seen = String::new();
    // hello, then the entries after 0: the gate opened at seq 1.
    while !seen.contains("data: gate_opened") {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("the stream sends the backlog at once")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&frame.into_data().unwrap()));
    }
    assert!(seen.starts_with("event: hello\n"), "{seen}");
    assert!(seen.contains("event: append\n"), "{seen}");
    assert!(seen.contains("id: 1\n"), "{seen}");
    assert!(
        !seen.contains("id: 0\n"),
        "entry 0 was before Last-Event-ID: {seen}"
    );
}
