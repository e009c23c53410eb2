//! Memory of the real `medic serve` process: resident set (RSS) idle with the examples'
//! workflows loaded, then per 1,000 parked runs (each waiting at a human gate, the usual
//! way a run sits for minutes), and the store's bytes on disk per parked run.
//! Target: <= 4 KiB of RSS per parked run.
//!
//! `cargo bench -p medic-cli --bench memory` (`MEDIC_MEMORY_RUNS=N` parks N runs in all,
//! default 6,000; `MEDIC_MEMORY_REPEAT=K` measures in K fresh processes, default 3, and
//! prints the median). The figure per parked run is the slope of RSS against runs
//! parked, fitted over a reading every 250 runs after the first 1,000. Linux only: it
//! reads /proc.
//!
//! Why 6,000: RSS grows in steps of the allocator's extents and sled's pages, so a slope
//! over 2,000 runs moved with where the steps fell. One binary's median of three at
//! 3,000 runs spread 3.1–4.0 KiB over three measurements in one hour, and at 6,000
//! 3.21–3.33 (docs/performance.md, sixth pass).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "memory-bench-token";

/// One request with this bench's token ([`common::request`]).
fn request(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    common::request(port, TOKEN, method, path, body)
}

fn alert(i: u64) -> String {
    serde_json::json!({"version": "4", "groupKey": format!("park{i}"), "status": "firing",
        "receiver": "medic", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": [{"status": "firing", "labels": {"alertname": "Park", "n": i.to_string()},
            "annotations": {}, "startsAt": "2026-11-22T03:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": format!("{i:016x}")}]})
    .to_string()
}

/// Resident set of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .expect("VmRSS in /proc/<pid>/status")
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

/// `medic_gates_waiting` from /metrics.
fn gates_waiting(port: u16) -> u64 {
    let (_, body) = request(port, "GET", "/metrics", "").unwrap_or_default();
    body.lines()
        .find_map(|l| l.strip_prefix("medic_gates_waiting "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs parked between two RSS readings, after the first 1,000.
const CHECKPOINT: u64 = 250;

/// The least-squares slope of `readings` (runs parked, RSS in KiB): KiB per run. Zero
/// with fewer than two distinct run counts.
fn fitted_slope(readings: &[(u64, u64)]) -> f64 {
    let n = readings.len() as f64;
    let mean_x = readings.iter().map(|r| r.0 as f64).sum::<f64>() / n;
    let mean_y = readings.iter().map(|r| r.1 as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(x, y) in readings {
        let dx = x as f64 - mean_x;
        sxy += dx * (y as f64 - mean_y);
        sxx += dx * dx;
    }
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

struct Medic(Child);

impl Drop for Medic {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends alerts `from..to`, each starting one run that parks at its gate, and waits until
/// all of them wait there.
fn park(port: u16, from: u64, to: u64) {
    for i in from..to {
        let (status, body) = request(port, "POST", "/intake/alertmanager", &alert(i)).unwrap();
        assert_eq!(status, 202, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while gates_waiting(port) < to {
        assert!(Instant::now() < deadline, "runs did not park in 5 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means "not me".
    if std::env::args().skip(1).any(|a| !a.starts_with("--")) {
        return;
    }
    let runs: u64 = std::env::var("MEDIC_MEMORY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6_000)
        .max(1_000 + 2 * CHECKPOINT);
    let repeat: usize = std::env::var("MEDIC_MEMORY_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    // The fitted slope still moves between processes of one binary (by up to a KiB at
    // 3,000 runs, up to about two tenths at 6,000): each repeat is a fresh `medic serve`
    // on a fresh store.
    let mut slopes: Vec<f64> = (0..repeat).map(|_| measure(runs)).collect();
    slopes.sort_by(f64::total_cmp);
    let n = slopes.len();
    let median = (slopes[(n - 1) / 2] + slopes[n / 2]) / 2.0;
    println!(
        "RSS per parked run over {repeat} processes: median {median:.2} KiB (min {:.2}, max {:.2}); target <= 4 KiB",
        slopes[0],
        slopes[n - 1],
    );
}

/// Starts `medic serve` on a fresh store, parks `runs` runs, prints what it measured and
/// returns the fitted RSS slope, KiB per parked run.
fn measure(runs: u64) -> f64 {
    let data = tempfile::tempdir().unwrap();
    let steps = data.path().join("steps");
    let workflows = data.path().join("workflows");
    std::fs::create_dir_all(&steps).unwrap();
    std::fs::create_dir_all(&workflows).unwrap();
    for (name, path) in medic_test_programs::ALL {
        std::fs::copy(path, steps.join(format!("{name}.wasm"))).unwrap();
    }
    // The examples' workflows, as a team would load them, plus one that parks its runs.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut loaded = 0;
    for e in std::fs::read_dir(&examples).unwrap().flatten() {
        let file = e.path().join("workflow.yaml");
        if file.is_file() {
            let name = format!("{}.yaml", e.file_name().to_string_lossy());
            std::fs::copy(&file, workflows.join(name)).unwrap();
            loaded += 1;
        }
    }
    std::fs::write(
        workflows.join("park.yaml"),
        "apiVersion: medic/v1\nkind: Workflow\nname: park\ntrigger:\n  matchers: ['alertname=\"Park\"']\nsteps:\n  - id: go-on\n    phase: restore\n    gate:\n      prompt: roll back?\n      deadline: 1h\n      on-deadline: reject\n",
    )
    .unwrap();
    std::fs::write(
        data.path().join("medic.toml"),
        format!("tokens = [\"{TOKEN}\"]\nconcurrency = 8\nshutdown_grace = \"2s\"\n"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(data.path().join("serve.log")).unwrap();
    let medic = Medic(
        Command::new(env!("CARGO_BIN_EXE_medic"))
            .arg("--data")
            .arg(data.path())
            .arg("--steps")
            .arg(&steps)
            .arg("serve")
            .arg("--config")
            .arg(data.path().join("medic.toml"))
            .arg("--workflows")
            .arg(&workflows)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start medic serve"),
    );
    let pid = medic.0.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !matches!(request(port, "GET", "/readyz", ""), Ok((200, _))) {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(data.path().join("serve.log")).unwrap_or_default();
            panic!("medic serve did not become ready:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let start-up settle (component loads, first allocations) before the idle figure.
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_kib(pid);
    let store = data.path().join("store");
    let store_idle = dir_bytes(&store);
    println!(
        "medic serve idle, {} workflows loaded ({loaded} examples + park): RSS {:.1} MiB, store {:.1} MiB",
        loaded + 1,
        idle as f64 / 1024.0,
        store_idle as f64 / 1048576.0
    );
    // The first 1,000 warm the allocator and the store's cache; the slope after is what a
    // parked run costs. RSS grows in steps (the allocator maps extents, sled's cache
    // grows by pages), so two readings alone move with where the last step fell: the
    // slope is fitted over a reading every `CHECKPOINT` runs.
    park(port, 0, 1_000);
    std::thread::sleep(Duration::from_secs(1));
    let (first, first_store) = (rss_kib(pid), dir_bytes(&store));
    let mut readings = vec![(1_000u64, first)];
    while let Some(&(done, _)) = readings.last().filter(|(done, _)| *done < runs) {
        let next = (done + CHECKPOINT).min(runs);
        park(port, done, next);
        std::thread::sleep(Duration::from_secs(1));
        readings.push((next, rss_kib(pid)));
    }
    let last = readings.last().map_or(first, |r| r.1);
    let last_store = dir_bytes(&store);
    let (slope, ends) = (
        fitted_slope(&readings),
        (last.saturating_sub(first)) as f64 / (runs - 1_000) as f64,
    );
    println!(
        "{runs} parked runs: RSS {:.1} MiB; per 1,000 parked runs {:.0} KiB ({slope:.2} KiB per run, fitted over {} readings; {ends:.2} from the first and last alone; first 1,000 from idle: {:.2} KiB per run)",
        last as f64 / 1024.0,
        slope * 1000.0,
        readings.len(),
        (first.saturating_sub(idle)) as f64 / 1000.0,
    );
    println!(
        "store: {:.0} bytes per parked run on disk ({:.1} MiB for {runs}; sled preallocates segments, so the slope after the first 1,000 is {:.0} bytes per run)",
        (last_store.saturating_sub(store_idle)) as f64 / runs as f64,
        last_store as f64 / 1048576.0,
        (last_store.saturating_sub(first_store)) as f64 / (runs - 1_000) as f64,
    );
    slope
}
