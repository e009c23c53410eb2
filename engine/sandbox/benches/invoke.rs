//! Step-invocation cost, printed as figures (no criterion):
//!
//! 1. Warm invocation of a trivial Rust step: instantiate from the cached `InstancePre`,
//!    call `run`, drop the instance — `echo-v2` with `{}`, no host calls. Target on the 2-core
//!    reference machine: median <= 25 us, p99 <= 60 us. Printed beside wasmtime's own
//!    floor for the same component (bare instantiate + call, no WASI) and the ratio.
//! 2. The same real job side by side in Rust, Python and JavaScript: one HTTP exchange with
//!    a local server, journalled, plus the step's own host calls — `http-probe` (Rust) and
//!    `json-health` (Python) check a JSON health field, `statuspage-update` (JS) posts an
//!    update (reads a secret, sets state).
//! 3. Loading the Python and JS components: cold (compile, ~10 s) versus cached (the
//!    on-disk precompiled artifact).
//!
//! The Python and JS components come from `scripts/build-polyglot`
//! (`$MEDIC_POLYGLOT_OUT`, default `target/polyglot`).
//!
//! `cargo bench -p medic-sandbox --bench invoke`

use medic_core::{
    AttemptHost, AttemptRequest, AttemptResult, Grants, Invocation, MemoryStore, NewRun,
    ResolvedLimits, RunJournal, StaticSecrets, StepRunner, SystemClock,
};
use medic_model::{Incident, IncidentStatus, Phase};
use medic_sandbox::{BareStep, Sandbox, SandboxConfig};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn request(component: &str, params: &str, grants: Grants) -> AttemptRequest {
    AttemptRequest {
        component: component.to_string(),
        invocation: Invocation {
            run_id: "bench".into(),
            step_id: "step".into(),
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
                notes: Vec::new(),
            },
            params: params.into(),
            drill: false,
        },
        grants,
        limits: ResolvedLimits::default(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs `req` `warmup + iterations` times; returns the sorted timings of the last
/// `iterations`. Every run must succeed.
fn measure(
    rt: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    req: &AttemptRequest,
    secrets: &[(&str, &str)],
    warmup: usize,
    iterations: usize,
) -> Vec<Duration> {
    measure_beside(rt, sandbox, req, secrets, None, warmup, iterations).0
}

/// As [`measure`], and when `floor` is given, one bare call of it right before each
/// medic call, timed apart: the two sample sets share every moment of the machine's
/// noise, so their ratio holds where measuring one after the other did not (a run of
/// the floor first, then medic, measured medic *below* its own floor).
fn measure_beside(
    rt: &tokio::runtime::Runtime,
    sandbox: &Sandbox,
    req: &AttemptRequest,
    secrets: &[(&str, &str)],
    floor: Option<&BareStep>,
    warmup: usize,
    iterations: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let store = Arc::new(MemoryStore::new());
    let step = medic_core::attempt::standalone_step("step", req.invocation.phase, &req.component);
    let new = NewRun::standalone(step, req.component.clone(), req.invocation.incident.clone());
    let journal = RunJournal::create(store, Arc::new(SystemClock), "bench", new).unwrap();
    let host = AttemptHost::standalone(
        journal,
        "step",
        req.grants.secrets.clone(),
        Arc::new(StaticSecrets(
            secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )),
    );
    let mut samples = Vec::with_capacity(iterations);
    let mut floor_samples = Vec::with_capacity(iterations);
    rt.block_on(async {
        for i in 0..warmup + iterations {
            if let Some(bare) = floor {
                let t = Instant::now();
                bare.run(&req.invocation).await.unwrap();
                if i >= warmup {
                    floor_samples.push(t.elapsed());
                }
            }
            let r = req.clone();
            let h = host.clone();
            let t = Instant::now();
            let out = sandbox.run(r, h).await;
            let dt = t.elapsed();
            assert!(matches!(out, AttemptResult::Done(_)), "{out:?}");
            if i >= warmup {
                samples.push(dt);
            }
        }
    });
    samples.sort();
    floor_samples.sort();
    (samples, floor_samples)
}

/// Answers every request with 200 and a small JSON document, on a free 127.0.0.1 port.
fn start_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end().to_ascii_lowercase();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = r#"{"status": "ok", "id": "upd-1"}"#;
            let mut out = conn;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    port
}

fn polyglot_dir() -> PathBuf {
    // As in scripts/build-polyglot: a relative directory is from the repository root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(
        std::env::var_os("MEDIC_POLYGLOT_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| "target/polyglot".into()),
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. The trivial Rust step, with and without the pooling allocator, beside
    //    wasmtime's own floor for the same component in the same engine (bare
    //    instantiate + call, no WASI context, no journal): the ratio is medic's overhead,
    //    and it holds on a machine busy with other work where the absolute figures do not.
    for pooling in [true, false] {
        let sandbox = Sandbox::new(SandboxConfig {
            pooling,
            ..SandboxConfig::default()
        })
        .unwrap();
        // echo-v2: the trivial step on the newest contract, the one bare calls link.
        let req = request(medic_test_programs::ECHO_V2, "{}", Grants::default());
        let iterations = 20_000;
        let bare = sandbox.bare(medic_test_programs::ECHO_V2).unwrap();
        let (samples, floor) =
            measure_beside(&rt, &sandbox, &req, &[], Some(&bare), 500, iterations);
        let (median, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
        let (floor_median, floor_p99) = (percentile(&floor, 0.5), percentile(&floor, 0.99));
        println!(
            "invoke echo-v2 (trivial Rust step), pooling={pooling}: median {:.1} us, p99 {:.1} us over {iterations} runs; \
             wasmtime floor (bare instantiate + call) median {:.1} us, p99 {:.1} us; ratio {:.2}x median, {:.2}x p99",
            us(median),
            us(p99),
            us(floor_median),
            us(floor_p99),
            median.as_secs_f64() / floor_median.as_secs_f64(),
            p99.as_secs_f64() / floor_p99.as_secs_f64(),
        );
    }

    let dir = polyglot_dir();
    let python = dir.join("json-health.wasm");
    let js = dir.join("statuspage-update.wasm");
    if !python.is_file() || !js.is_file() {
        println!(
            "Python/JS steps not found in {}: build them with scripts/build-polyglot, then run this bench again",
            dir.display()
        );
        return;
    }

    // 3 first: it also leaves the compiled artifacts in a cache the next part uses.
    let cache = tempfile::tempdir().unwrap();
    let with_cache = || {
        Sandbox::new(SandboxConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..SandboxConfig::default()
        })
        .unwrap()
    };
    println!(
        "load (Sandbox::warm), cold = compile and write the cache, cached = a new sandbox reading it:"
    );
    for (lang, path) in [("python", &python), ("js", &js)] {
        let t = Instant::now();
        with_cache().warm(path).unwrap();
        let cold = t.elapsed();
        let mut cached = Vec::new();
        for _ in 0..5 {
            let sandbox = with_cache();
            let t = Instant::now();
            sandbox.warm(path).unwrap();
            cached.push(t.elapsed());
        }
        cached.sort();
        let size = std::fs::metadata(path).unwrap().len();
        println!(
            "  {lang:<6} {:<22} {:>5.1} MB: cold {:.2} s, cached {:.1} ms (median of 5)",
            path.file_name().unwrap().to_string_lossy(),
            size as f64 / 1e6,
            cold.as_secs_f64(),
            cached[2].as_secs_f64() * 1e3,
        );
    }

    // 2. One real HTTP job per invocation, side by side.
    let port = start_server();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let grants = || Grants {
        secrets: vec!["TOKEN".into()],
        allow: vec!["127.0.0.1".into()],
        tls: Vec::new(),
    };
    let sandbox = with_cache();
    let jobs = [
        (
            "rust",
            "http-probe",
            medic_test_programs::HTTP_PROBE.to_string(),
            format!(r#"{{"url": "{url}", "json_pointer": "/status", "json_equals": "ok"}}"#),
        ),
        (
            "python",
            "json-health",
            python.display().to_string(),
            format!(
                r#"{{"url": "{url}", "field": "status", "expect": "ok", "token_secret": "TOKEN"}}"#
            ),
        ),
        (
            "js",
            "statuspage-update",
            js.display().to_string(),
            format!(r#"{{"url": "{url}", "status": "investigating", "token_secret": "TOKEN"}}"#),
        ),
    ];
    let iterations = 500;
    println!(
        "invoke with one HTTP exchange (local server, journalled), pooling=true, over {iterations} runs:"
    );
    for (lang, name, component, params) in jobs {
        let req = request(&component, &params, grants());
        let samples = measure(&rt, &sandbox, &req, &[("TOKEN", "t0k")], 50, iterations);
        println!(
            "  {lang:<6} {name:<18} median {:>8.1} us, p99 {:>8.1} us",
            us(percentile(&samples, 0.5)),
            us(percentile(&samples, 0.99)),
        );
    }
}
