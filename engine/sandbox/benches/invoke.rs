//! Warm step-invocation cost: instantiate from the cached `InstancePre`, call `run`, drop
//! the instance — for a trivial Rust step (`echo` with `{}`: no host calls).
//! Prints median and p99 (target on the 2-core reference machine: median <= 25 us).
//!
//! `cargo bench -p medic-sandbox --bench invoke`

use medic_core::{
    AttemptHost, AttemptRequest, AttemptResult, Grants, Invocation, MemoryStore, ResolvedLimits,
    RunJournal, StaticSecrets, StepRunner, SystemClock,
};
use medic_model::{Incident, IncidentStatus, Phase};
use medic_sandbox::{Sandbox, SandboxConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn request(component: &str) -> AttemptRequest {
    AttemptRequest {
        component: component.to_string(),
        invocation: Invocation {
            run_id: "bench".into(),
            step_id: "echo".into(),
            attempt: 1,
            idempotency_key: "k".into(),
            phase: Phase::Verify,
            incident: Incident {
                id: "i".into(),
                title: "bench".into(),
                severity: "info".into(),
                status: IncidentStatus::Firing,
                labels: Default::default(),
                annotations: Default::default(),
                started_at: "2026-01-01T00:00:00Z".into(),
                source: "bench".into(),
            },
            params: "{}".into(),
            drill: false,
        },
        grants: Grants::default(),
        limits: ResolvedLimits::default(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for pooling in [true, false] {
        let sandbox = Sandbox::new(SandboxConfig {
            pooling,
            ..SandboxConfig::default()
        })
        .unwrap();
        let store = Arc::new(MemoryStore::new());
        let journal = RunJournal::scratch(store, Arc::new(SystemClock), "bench").unwrap();
        let host = AttemptHost::standalone(
            journal,
            "echo",
            Vec::new(),
            Arc::new(StaticSecrets::default()),
        );
        let req = request(medic_test_programs::ECHO);
        let iterations = 5_000;
        let mut samples = Vec::with_capacity(iterations);
        rt.block_on(async {
            for i in 0..iterations + 500 {
                let r = req.clone();
                let h = host.clone();
                let t = Instant::now();
                let out = sandbox.run(r, h).await;
                let dt = t.elapsed();
                assert!(matches!(out, AttemptResult::Done(_)), "{out:?}");
                if i >= 500 {
                    samples.push(dt);
                }
            }
        });
        samples.sort();
        let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
        println!(
            "invoke echo (trivial Rust step), pooling={pooling}: median {:.1} us, p99 {:.1} us, mean {:.1} us over {iterations} runs",
            percentile(&samples, 0.5).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6,
            mean.as_secs_f64() * 1e6,
        );
    }
}
