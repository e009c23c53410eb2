//! The web view's server side, in process (the router driven with `oneshot`): render time
//! of a run page whose journal has 10,000 entries (target ≤ 50 ms), of a runs page out of
//! 100,000 runs (target ≤ 20 ms), and how soon a connected page hears of a journal append
//! over Server-Sent Events (target ≤ 50 ms).
//!
//! `cargo bench -p medic-server --bench web`

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
// The allocator the `medic` binary runs with (engine/alloc).
use medic_alloc as _;
use medic_core::{Durability, Entry, Event, HostCall, HttpOutcome, Level, NewRun};
use medic_model::{Incident, IncidentStatus};
use medic_server::{LoadedWorkflow, ServeConfig, Service, router};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tower::ServiceExt;

const WORKFLOW: &str = "apiVersion: medic/v1\nkind: Workflow\nname: bench\ntrigger:\n  matchers: ['alertname=\"Bench\"']\nsteps:\n  - id: first\n    phase: detect\n    uses: echo\n    with: { log: 'checking' }\n  - id: second\n    phase: communicate\n    uses: echo\n";

fn service(dir: &std::path::Path) -> (Arc<Service>, LoadedWorkflow) {
    let store = Arc::new(medic_store::SledStore::open(dir.join("store")).unwrap());
    let sandbox =
        Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
    let config =
        ServeConfig::parse("tokens = [\"t\"]\n[users]\nalice = \"alice-token\"\n").unwrap();
    let doc = medic_model::parse_workflow("bench.yaml", WORKFLOW).unwrap();
    let echo = medic_test_programs::ALL
        .iter()
        .find(|(n, _)| *n == "echo")
        .unwrap()
        .1;
    let wf = LoadedWorkflow {
        components: [("first", echo), ("second", echo)]
            .iter()
            .map(|(s, c)| (s.to_string(), c.to_string()))
            .collect(),
        workflow: doc.workflow,
        file: "bench.yaml".into(),
    };
    let svc = Service::new(store, sandbox, config, vec![wf.clone()]).unwrap();
    (svc, wf)
}

fn new_run(wf: &LoadedWorkflow, n: u64) -> NewRun {
    NewRun {
        workflow: wf.workflow.clone(),
        workflow_file: wf.file.clone(),
        incident: Incident {
            id: format!("{n:016x}"),
            title: format!("checkout 5xx above 5% ({n})"),
            severity: "critical".into(),
            status: IncidentStatus::Firing,
            labels: [("alertname".to_string(), "Bench".to_string())].into(),
            annotations: Default::default(),
            started_at: "2026-11-30T03:00:00Z".into(),
            source: "alertmanager".into(),
            notes: Vec::new(),
        },
        components: wf.components.clone(),
        drill: false,
    }
}

/// Signs alice in; returns the session cookie.
async fn sign_in(app: &axum::Router) -> String {
    let form = app
        .clone()
        .oneshot(Request::get("/ui/signin").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let pre = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = pre.trim_start_matches("medic_signin=").to_string();
    let resp = app
        .clone()
        .oneshot(
            Request::post("/ui/signin")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", &pre)
                .body(Body::from(format!("token=alice-token&csrf={csrf}")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("medic_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// Renders `uri` `n` times; prints median, p90 and max in ms and the page size.
async fn time_page(
    app: &axum::Router,
    cookie: &str,
    uri: &str,
    n: usize,
    what: &str,
    target_ms: f64,
) {
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let (ms, len) = render(app, cookie, uri).await;
        times.push(ms);
        bytes = len;
    }
    times.sort_by(f64::total_cmp);
    let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: median {:.2} ms, p90 {:.2} ms, max {:.2} ms ({} KiB page; target ≤ {target_ms} ms)",
        p(0.5),
        p(0.9),
        p(1.0),
        bytes / 1024
    );
}

/// One render of `uri`: ms, and the page's bytes.
async fn render(app: &axum::Router, cookie: &str, uri: &str) -> (f64, usize) {
    let req = Request::get(uri)
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap();
    let t = Instant::now();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{uri}");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes().len();
    (t.elapsed().as_secs_f64() * 1000.0, bytes)
}

fn entry(seq: u64, event: Event) -> Entry {
    Entry {
        seq,
        at_ms: 1_796_000_000_000 + seq,
        event,
    }
}

/// A run whose journal holds 10,000 entries: logs and HTTP exchanges of its first step.
fn long_run(svc: &Arc<Service>, wf: &LoadedWorkflow) -> String {
    let id = svc.engine().create_run(new_run(wf, 1)).unwrap();
    let store = svc.engine().store().clone();
    let step = "first".to_string();
    store
        .append(
            &id,
            &entry(
                1,
                Event::AttemptStarted {
                    step: step.clone(),
                    attempt: 1,
                    idempotency_key: "k".into(),
                    params: serde_json::json!({}),
                },
            ),
            None,
            Durability::Lazy,
        )
        .unwrap();
    for seq in 2..9_999u64 {
        let call = match seq % 3 {
            0 => HostCall::Log { level: Level::Info, message: format!("checked shard {seq}: error ratio 7.{seq}%") },
            1 => HostCall::HttpRequest { id: seq as u32, method: "GET".into(), url: format!("http://prometheus:9090/api/v1/query?q=shard{seq}"), headers: vec![], body: Default::default() },
            _ => HostCall::HttpResponse { id: seq as u32 - 1, duration_ms: 12, outcome: HttpOutcome::Response { status: 200, headers: vec![], body: medic_core::Body::Text("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}".repeat(4)) } },
        };
        store
            .append(
                &id,
                &entry(
                    seq,
                    Event::HostCall {
                        step: step.clone(),
                        attempt: 1,
                        call,
                    },
                ),
                None,
                Durability::Lazy,
            )
            .unwrap();
    }
    store
        .append(
            &id,
            &entry(
                9_999,
                Event::AttemptSucceeded {
                    step,
                    attempt: 1,
                    output: serde_json::json!({"ratio": 0.075, "note": "x".repeat(5_000)}),
                    duration_ms: 9_000,
                },
            ),
            None,
            Durability::Flush,
        )
        .unwrap();
    assert_eq!(store.entries(&id).unwrap().len(), 10_000);
    id
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // 1. A run page over a 10,000-entry journal.
        let dir = tempfile::tempdir().unwrap();
        let (svc, wf) = service(dir.path());
        let runs: Vec<String> = (0..3).map(|_| long_run(&svc, &wf)).collect();
        let run = runs[0].clone();
        let app = router(svc.clone());
        let cookie = sign_in(&app).await;
        // The page keeps the last runs shown (web/cache.rs): the first render reads and
        // folds the whole journal, later ones read only what was appended since.
        let mut cold = Vec::new();
        for r in &runs {
            cold.push(render(&app, &cookie, &format!("/ui/runs/{r}")).await.0);
        }
        cold.sort_by(f64::total_cmp);
        println!(
            "run page, first render of a 10,000-entry journal (read whole, folded, drawn): median {:.2} ms of {} runs, max {:.2} ms",
            cold[cold.len() / 2],
            cold.len(),
            cold[cold.len() - 1]
        );
        time_page(&app, &cookie, &format!("/ui/runs/{run}"), 30, "run page, 10,000-entry journal, shown again", 50.0).await;
        // A live page: one entry appended before each render, as an open page refetches.
        let store = svc.engine().store().clone();
        let mut live = Vec::new();
        for seq in 10_000..10_030u64 {
            let status = if seq % 2 == 0 { IncidentStatus::Resolved } else { IncidentStatus::Firing };
            store.append(&run, &entry(seq, Event::IncidentUpdated { status }), None, Durability::Lazy).unwrap();
            live.push(render(&app, &cookie, &format!("/ui/runs/{run}")).await.0);
        }
        live.sort_by(f64::total_cmp);
        println!(
            "run page, 10,000-entry journal, rendered after each append (a live page): median {:.2} ms, p90 {:.2} ms, max {:.2} ms (target ≤ 50 ms)",
            live[live.len() / 2],
            live[live.len() * 9 / 10],
            live[live.len() - 1]
        );
        // Baseline in the same run (the machine may be busy): reading that journal alone.
        let mut reads: Vec<f64> = (0..30)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(svc.engine().store().entries(&runs[1]).unwrap().len(), 10_000);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        reads.sort_by(f64::total_cmp);
        println!("  baseline: reading the 10,000 entries alone, median {:.2} ms", reads[15]);
        // Where the rest of a first render goes: folding the journal and drawing its picture.
        let entries = svc.engine().store().entries(&runs[1]).unwrap();
        let median = |mut t: Vec<f64>| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        };
        let fold = median((0..30).map(|_| {
            let t = Instant::now();
            medic_core::RunState::fold(&runs[1], &entries).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        }).collect());
        let picture = median((0..30).map(|_| {
            let t = Instant::now();
            medic_postmortem::Postmortem::picture([(runs[1].as_str(), &entries[..])]).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        }).collect());
        println!("  of a first render: folding those entries {fold:.2} ms, drawing their picture {picture:.2} ms (medians)");
        drop((app, svc));

        // 2. The runs list out of 100,000 runs. Created here through the engine, not the
        //    inbox (which indexes a run in the batch that creates it), so the index check
        //    at start finds every one missing: it times the backfill, the worst case.
        let dir = tempfile::tempdir().unwrap();
        let (svc, wf) = service(dir.path());
        let t = Instant::now();
        for n in 0..100_000u64 {
            svc.engine().create_run_as_lazy(format!("bench-{:012x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16), new_run(&wf, n)).unwrap();
        }
        println!("(created 100,000 runs in {:.1} s)", t.elapsed().as_secs_f64());
        let t = Instant::now();
        svc.index_runs().unwrap();
        println!("(the runs list's index backfilled at start, in the background, all 100,000 runs missing: {:.0} ms)", t.elapsed().as_secs_f64() * 1000.0);
        let app = router(svc.clone());
        let cookie = sign_in(&app).await;
        time_page(&app, &cookie, "/ui/runs", 50, "runs page 1 of 100,000 runs", 20.0).await;
        time_page(&app, &cookie, "/ui/runs?workflow=bench&status=running&incident=critical", 50, "runs page, 3 filters, of 100,000", 20.0).await;
        time_page(&app, &cookie, &format!("/ui/runs?before={:016x}", 1u64 << 62), 50, "runs page from a cursor, of 100,000", 20.0).await;
        drop((app, svc));

        // 3. SSE: from a journal append (its entry's timestamp) to the page receiving its
        // event, for appends made by real runs driven by the engine.
        let dir = tempfile::tempdir().unwrap();
        let (svc, wf) = service(dir.path());
        let app = router(svc.clone());
        let cookie = sign_in(&app).await;
        let resp = app
            .clone()
            .oneshot(Request::get("/ui/events").header("cookie", &cookie).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let mut body = resp.into_body();
        let received = tokio::spawn(async move {
            let mut got: Vec<(String, u64, u64)> = Vec::new();
            let mut buf = String::new();
            while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_secs(3), body.frame()).await {
                let at = now_ms();
                if let Ok(data) = frame.into_data() {
                    buf.push_str(&String::from_utf8_lossy(&data));
                }
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    if let Some(id) = event.lines().find_map(|l| l.strip_prefix("id: "))
                        && let Some((run, seq)) = id.rsplit_once('/')
                    {
                        got.push((run.to_string(), seq.parse().unwrap(), at));
                    }
                }
            }
            got
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        for n in 0..50 {
            let id = svc.engine().create_run(new_run(&wf, n)).unwrap();
            svc.engine().drive(&id).await.unwrap();
        }
        let got = received.await.unwrap();
        let mut lat: Vec<u64> = Vec::new();
        for (run, seq, at) in &got {
            let entries = svc.engine().store().entries(run).unwrap();
            lat.push(at.saturating_sub(entries[*seq as usize].at_ms));
        }
        lat.sort();
        let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
        println!(
            "SSE append → page: {} appends, median {} ms, p99 {} ms, max {} ms (ms clock; target ≤ 50 ms)",
            lat.len(),
            p(0.5),
            p(0.99),
            p(1.0)
        );
    });
}
