//! The postmortem page, its Markdown download, and drills from a run's page: recorded as
//! a download, replayed in virtual time without the network, kept apart as a drill.

use super::*;
use medic_core::{NewRun, RunStatus};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Decides the gate and waits for the run to finish; returns (run, cookie, csrf).
async fn finished_run(h: &Harness, title: &str) -> (String, String, String) {
    let run = h.alert(title).await;
    h.step_status(&run, "ask", "running").await;
    let (cookie, csrf) = h.sign_in("alice-token").await;
    let a = h
        .send(
            "POST",
            &format!("/ui/runs/{run}/gates/ask"),
            &[FORM, ("cookie", &cookie)],
            &format!("csrf={csrf}&decision=approve"),
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    wait_finished(h, &run).await;
    (run, cookie, csrf)
}

async fn wait_finished(h: &Harness, run: &str) {
    for _ in 0..400 {
        let meta = h.svc.engine().store().run(run).unwrap().unwrap();
        if meta.status != RunStatus::Running {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("run {run} did not finish");
}

/// The inline picture of a page: from `<svg` to `</svg>`.
fn svg_of(page: &str) -> &str {
    let start = page
        .find("<svg")
        .unwrap_or_else(|| panic!("no picture in {page}"));
    let end = page[start..].find("</svg>").unwrap() + start + 6;
    &page[start..end]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_postmortem_page_shows_the_picture_escaped_and_offers_the_markdown() {
    let h = harness();
    let title = "<script>alert(1)</script> & co";
    let (run, cookie, _) = finished_run(&h, title).await;
    let c = [("cookie", cookie.as_str())];

    let run_page = h.send("GET", &format!("/ui/runs/{run}"), &c, "").await;
    assert!(
        run_page
            .body
            .contains(&format!("href=\"/ui/runs/{run}/postmortem\"")),
        "{}",
        run_page.body
    );
    let pm = h
        .send("GET", &format!("/ui/runs/{run}/postmortem"), &c, "")
        .await;
    assert_eq!(pm.status, StatusCode::OK, "{}", pm.body);
    // The facts, escaped; the picture inline with its phase lanes, its text escaped too.
    assert!(!pm.body.contains("<script>alert"), "{}", pm.body);
    assert!(
        pm.body
            .contains("Postmortem draft: Web — &#60;script&#62;alert(1)&#60;/script&#62; &#38; co"),
        "{}",
        pm.body
    );
    let svg = svg_of(&pm.body);
    assert!(
        svg.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"),
        "{svg}"
    );
    for lane in ["detect", "communicate", "restore"] {
        assert!(
            svg.contains(&format!("\n{lane}\n</text>")),
            "no {lane} lane in {svg}"
        );
    }
    // The run page shows the same picture.
    assert_eq!(svg_of(&run_page.body), svg);
    assert!(pm.body.contains("Time to mitigate"), "{}", pm.body);
    assert!(pm.body.contains("approved by alice"), "{}", pm.body);

    // The Markdown is a download, the same draft the API gives.
    let md = h
        .send("GET", &format!("/ui/runs/{run}/postmortem.md"), &c, "")
        .await;
    assert_eq!(md.status, StatusCode::OK);
    assert_eq!(
        md.headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"postmortem-{run}.md\"").as_str()
    );
    assert_eq!(
        md.headers[header::CONTENT_TYPE],
        "text/markdown; charset=utf-8"
    );
    let api = h
        .send(
            "GET",
            &format!("/api/runs/{run}/postmortem"),
            &[("authorization", "Bearer svc")],
            "",
        )
        .await;
    assert_eq!(md.body, api.body);

    // The incident's draft, linked from its page; unknown ones are a plain 404.
    let incident = h.send("GET", "/ui/incidents/f00d", &c, "").await;
    assert!(
        incident
            .body
            .contains("href=\"/ui/incidents/f00d/postmortem\""),
        "{}",
        incident.body
    );
    let ipm = h.send("GET", "/ui/incidents/f00d/postmortem", &c, "").await;
    assert_eq!(ipm.status, StatusCode::OK, "{}", ipm.body);
    assert!(ipm.body.contains(&run), "{}", ipm.body);
    let imd = h
        .send("GET", "/ui/incidents/f00d/postmortem.md", &c, "")
        .await;
    assert_eq!(
        imd.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"postmortem-f00d.md\""
    );
    for path in ["/ui/runs/nope/postmortem", "/ui/incidents/nope/postmortem"] {
        let a = h.send("GET", path, &c, "").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn drill_forms_need_the_sessions_token() {
    let h = harness();
    let (run, alice, _) = finished_run(&h, "checkout errors").await;
    let (_, carol_csrf) = h.sign_in("carol-token").await;
    for action in ["drill", "drill/run"] {
        let path = format!("/ui/runs/{run}/{action}");
        for body in [String::new(), format!("csrf={carol_csrf}")] {
            let a = h
                .send("POST", &path, &[FORM, ("cookie", &alice)], &body)
                .await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{path} {body}");
            assert!(a.body.contains("Nothing was changed"), "{}", a.body);
        }
    }
    // Nothing was replayed, so no drill run was kept.
    assert_eq!(h.svc.engine().store().runs().unwrap().len(), 1);
}

/// An HTTP server that answers 200 `ok` to anything and counts the requests.
fn health_server() -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, hits)
}

/// A restore step, then a probe of `path` on the health server.
fn probed(port: u16, path: &str) -> LoadedWorkflow {
    workflow(&format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: probed\ntrigger:\n  matchers: ['alertname=\"Never\"']\nsteps:\n  - id: fix\n    phase: restore\n    uses: echo\n    with: {{ log: 'rolled back' }}\n  - id: check\n    phase: verify\n    uses: http-probe\n    with: {{ url: 'http://127.0.0.1:{port}{path}', expect_status: 200 }}\n    allow: [127.0.0.1]\n"
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_records_as_a_download_and_replays_today_without_the_network() {
    let (port, hits) = health_server();
    // Recorded with /health; medic serves a workflow that now probes /healthz.
    let then = probed(port, "/health");
    // No processor: this test drives the recorded run itself (one driver per run).
    let h = harness_with(vec![probed(port, "/healthz")]);
    let incident = medic_model::Incident {
        id: "probe-incident".into(),
        title: "Checkout <b>down</b>".into(),
        severity: "critical".into(),
        status: medic_model::IncidentStatus::Firing,
        labels: Default::default(),
        annotations: Default::default(),
        started_at: "2026-11-30T03:00:00Z".into(),
        source: "test".into(),
        notes: Vec::new(),
    };
    let run = h
        .svc
        .engine()
        .create_run(NewRun {
            workflow: then.workflow.clone(),
            workflow_file: then.file.clone(),
            incident,
            components: then.components.clone(),
            drill: false,
        })
        .unwrap();
    h.svc.engine().drive(&run).await.unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the recorded run probed once"
    );
    let (cookie, csrf) = h.sign_in("alice-token").await;
    let c = ("cookie", cookie.as_str());
    // The runs list has been read (and its index filled) before the drill exists.
    let before = h.send("GET", "/ui/runs", &[c], "").await;
    assert!(before.body.contains(&run));

    // Record: the drill file as a download, which medic-drill reads back.
    let file = h
        .send(
            "POST",
            &format!("/ui/runs/{run}/drill"),
            &[FORM, c],
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(file.status, StatusCode::OK, "{}", file.body);
    assert_eq!(
        file.headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"drill-{run}.yaml\"").as_str()
    );
    let drill = medic_drill::parse("drill.yaml", &file.body).unwrap();
    assert_eq!(drill.recorded_from.as_deref(), Some(run.as_str()));
    assert_eq!(drill.exchanges.len(), 1, "{}", file.body);

    // Replay against today's workflow: the new request diverges and is not sent.
    let report = h
        .send(
            "POST",
            &format!("/ui/runs/{run}/drill/run"),
            &[FORM, c],
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the replay reached the network"
    );
    let b = &report.body;
    assert!(b.contains("id=\"verdict\">restored differently<"), "{b}");
    assert!(
        b.contains(&format!(
            "<strong>step check</strong> attempt 1: <code>GET http://127.0.0.1:{port}/healthz</code>"
        )),
        "{b}"
    );
    assert!(
        b.contains(&format!(
            "closest recorded: <code>GET http://127.0.0.1:{port}/health"
        )),
        "{b}"
    );
    assert!(b.contains("<tr class=\"changed\"><td><strong title=\"changed\">* </strong>check</td><td>verify</td><td>succeeded (1 attempt)</td>"), "{b}");

    // The drill run is kept, and listed with the drills only.
    let kept = h
        .svc
        .engine()
        .store()
        .runs()
        .unwrap()
        .into_iter()
        .find(|m| m.id != run)
        .expect("the drill run is kept");
    assert!(kept.incident_title.starts_with("[drill] "), "{kept:?}");
    assert!(b.contains(&format!("href=\"/ui/runs/{}\"", kept.id)), "{b}");
    let real = h.send("GET", "/ui/runs", &[c], "").await;
    assert!(real.body.contains(&run) && !real.body.contains(&kept.id));
    let drills = h.send("GET", "/ui/runs?drills=only", &[c], "").await;
    assert!(drills.body.contains(&kept.id) && !drills.body.contains(&format!("/ui/runs/{run}\"")));
}
