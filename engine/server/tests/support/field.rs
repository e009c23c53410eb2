//! The router over a real sled store and the real sandbox running test components, for
//! tests that need several workflows and to know when intake has handled what they sent.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use medic_server::{LoadedWorkflow, ServeConfig, Service, router};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

pub const TOKEN: &str = "t0ken";

fn component(name: &str) -> String {
    medic_test_programs::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no test component {name}"))
        .1
        .to_string()
}

/// A workflow named `name` whose `trigger:` block is `trigger` (YAML, indented two spaces
/// under `trigger:`), with one `echo` step.
pub fn workflow(name: &str, trigger: &str) -> LoadedWorkflow {
    let yaml = format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: {name}\ntrigger:\n{trigger}\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: {{ annotate: '{{{{ incident.title }}}}' }}\n"
    );
    let doc =
        medic_model::parse_workflow("wf.yaml", &yaml).unwrap_or_else(|e| panic!("{yaml}\n{e:?}"));
    let components: BTreeMap<String, String> = doc
        .workflow
        .steps
        .iter()
        .map(|s| (s.id.clone(), component(&s.uses)))
        .collect();
    LoadedWorkflow {
        workflow: doc.workflow,
        file: format!("{name}.yaml"),
        components,
    }
}

pub struct Harness {
    pub svc: Arc<Service>,
    _dir: tempfile::TempDir,
}

pub fn harness(extra_config: &str, workflows: Vec<LoadedWorkflow>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(medic_store::SledStore::open(dir.path().join("store")).unwrap());
    let sandbox =
        Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
    let config = ServeConfig::parse(&format!(
        "tokens = [\"{TOKEN}\"]\nconcurrency = 2\n{extra_config}"
    ))
    .unwrap();
    let svc = Service::new(store, sandbox, config, workflows).unwrap();
    tokio::spawn(medic_server::process(svc.clone()));
    Harness { svc, _dir: dir }
}

impl Harness {
    /// One request; the body as JSON (or as a JSON string when it is not JSON).
    pub async fn send(&self, method: &str, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {TOKEN}"));
        let resp = router(self.svc.clone())
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }

    /// POSTs `body` to `/intake/{source}`, expecting 202; the answer.
    pub async fn post(&self, source: &str, body: &Value) -> Value {
        let (s, v) = self
            .send(
                "POST",
                &format!("/intake/{source}"),
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        v
    }

    pub async fn get(&self, uri: &str) -> Value {
        let (s, v) = self.send("GET", uri, Vec::new()).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        v
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        match self.send("GET", "/metrics", Vec::new()).await {
            (StatusCode::OK, Value::String(s)) => s,
            other => panic!("/metrics: {other:?}"),
        }
    }

    /// Waits until intake has handled `n` inbox items in all and the inbox is empty, as a
    /// sender would learn it: from `/metrics`.
    pub async fn handled(&self, n: u64) {
        let want = format!("medic_inbox_items_total{{state=\"handled\"}} {n}\n");
        for _ in 0..400 {
            let m = self.metrics().await;
            if m.contains(&want) && m.contains("medic_queue_depth{queue=\"inbox\"} 0\n") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("intake did not handle {n} items:\n{}", self.metrics().await);
    }

    /// Polls `/api/runs` until `f` holds (runs finish asynchronously).
    pub async fn runs_until(&self, what: &str, f: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..400 {
            let runs = self.get("/api/runs").await;
            let runs = runs.as_array().unwrap().clone();
            if f(&runs) {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// The incidents, by id.
    pub async fn incidents(&self) -> BTreeMap<String, Value> {
        let all = self.get("/api/incidents").await;
        all.as_array()
            .unwrap()
            .iter()
            .map(|i| (i["id"].as_str().unwrap().to_string(), i.clone()))
            .collect()
    }
}
