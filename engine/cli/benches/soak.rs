//! Soak: the real `medic serve` process under mixed load for a long time — alerts in
//! (new incidents, re-sends, resolutions, duplicate PagerDuty-style deliveries), human
//! gates opened and decided through the API, slow clients that never finish their
//! request, and a `kill -9` and restart every so often — printing the process's resident
//! memory and open file descriptors over time. Both must stay flat: a leak per request,
//! per run or per connection shows as a climb over the rows.
//!
//! ```sh
//! cargo bench -p medic-cli --bench soak                          # 30 minutes
//! MEDIC_SOAK_SECS=120 MEDIC_SOAK_KILL_EVERY_SECS=30 cargo bench -p medic-cli --bench soak
//! ```
//!
//! Not a test: it prints figures (Linux: read from /proc) and fails only if medic stops
//! answering or an acknowledged alert is missing at the end.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "soak-token";

fn secs(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// One request with this bench's token ([`common::request`]).
fn request(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    common::request(port, TOKEN, method, path, body)
}

fn alert(fingerprint: &str, status: &str) -> String {
    serde_json::json!({"version": "4", "groupKey": "soak", "status": status, "receiver": "medic",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": [{"status": status, "labels": {"alertname": "Soak", "fp": fingerprint},
            "annotations": {}, "startsAt": "2026-11-22T03:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fingerprint}]})
    .to_string()
}

struct Medic {
    child: Child,
    port: u16,
}

fn start(data: &Path, steps: &Path, port: u16) -> Medic {
    let child = Command::new(env!("CARGO_BIN_EXE_medic"))
        .arg("--data")
        .arg(data)
        .arg("--steps")
        .arg(steps)
        .arg("serve")
        .arg("--config")
        .arg(data.join("medic.toml"))
        .arg("--workflows")
        .arg(data.join("workflows"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start medic serve");
    let mut medic = Medic { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok((200, _)) = request(port, "GET", "/readyz", "") {
            return medic;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = medic.child.kill();
    let _ = medic.child.wait();
    panic!("medic serve did not become ready");
}

/// (resident set in KiB, open file descriptors) of `pid`, from /proc.
fn sample(pid: u32) -> (u64, usize) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let data = tempfile::tempdir().unwrap();
    let steps = data.path().join("steps");
    std::fs::create_dir_all(&steps).unwrap();
    for (name, path) in medic_test_programs::ALL {
        if *name == "echo" {
            std::fs::copy(path, steps.join("echo.wasm")).unwrap();
        }
    }
    let workflows = data.path().join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(
        workflows.join("soak.yaml"),
        "apiVersion: medic/v1\nkind: Workflow\nname: soak\ntrigger:\n  matchers: ['alertname=\"Soak\"']\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: { annotate: '{{ incident.title }}' }\n  - id: go-on\n    phase: restore\n    gate:\n      prompt: roll back?\n      deadline: 10m\n      on-deadline: reject\n  - id: done\n    phase: follow-up\n    uses: echo\n    with: { annotate: done }\n",
    )
    .unwrap();
    std::fs::write(
        data.path().join("medic.toml"),
        format!(
            "tokens = [\"{TOKEN}\"]\nconcurrency = 4\nshutdown_grace = \"2s\"\nheader_read_timeout = \"2s\"\nbody_read_timeout = \"2s\"\n"
        ),
    )
    .unwrap();
    (data, steps)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means "not me".
    if std::env::args().skip(1).any(|a| !a.starts_with("--")) {
        return;
    }
    let duration = secs("MEDIC_SOAK_SECS", 30 * 60);
    let kill_every = secs("MEDIC_SOAK_KILL_EVERY_SECS", 120);
    let report_every = secs("MEDIC_SOAK_REPORT_SECS", (duration.as_secs() / 20).max(5));
    let (data, steps) = setup();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut medic = start(data.path(), &steps, port);
    println!(
        "soak: {} s of mixed intake, gates, slow clients and kill -9 every {} s",
        duration.as_secs(),
        kill_every.as_secs()
    );
    println!(
        "{:>7} {:>9} {:>6} {:>8} {:>8} {:>6} {:>6} {:>6}",
        "t (s)", "RSS KiB", "fds", "alerts", "503s", "gates", "kills", "runs"
    );
    let started = Instant::now();
    let mut last_kill = Instant::now();
    let mut last_report = Instant::now() - report_every;
    let (mut sent, mut unavailable, mut decided, mut kills) = (0u64, 0u64, 0u64, 0u64);
    let mut acked: Vec<String> = Vec::new();
    let mut i = 0u64;
    let mut slow = Vec::new();
    while started.elapsed() < duration {
        i += 1;
        // New incidents, re-sends of the last one, resolutions of an older one.
        let fp = format!("soak-{i}");
        let mut send =
            |body: String| match request(medic.port, "POST", "/intake/alertmanager", &body) {
                Ok((202, _)) => true,
                Ok((503, _)) | Err(_) => {
                    unavailable += 1;
                    false
                }
                Ok((s, b)) => panic!("intake answered {s}: {b}"),
            };
        if send(alert(&fp, "firing")) {
            acked.push(fp.clone());
        }
        send(alert(&fp, "firing"));
        if i > 10 {
            send(alert(&format!("soak-{}", i - 10), "resolved"));
        }
        sent += 3;
        // A slow client every so often: half its headers, then nothing.
        if i.is_multiple_of(20)
            && let Ok(mut s) = TcpStream::connect(("127.0.0.1", medic.port))
        {
            let _ = s.write_all(b"POST /intake/alertmanager HTTP/1.1\r\nhost: x\r\n");
            slow.push(s);
            if slow.len() > 50 {
                slow.remove(0);
            }
        }
        // Decide the open gates.
        if i.is_multiple_of(10)
            && let Ok((200, body)) = request(medic.port, "GET", "/api/runs", "")
        {
            let runs: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            for run in runs.as_array().into_iter().flatten() {
                if run["status"] != "running" {
                    continue;
                }
                let id = run["id"].as_str().unwrap_or_default();
                let path = format!("/api/runs/{id}/gates/go-on");
                if let Ok((202, _)) = request(
                    medic.port,
                    "POST",
                    &path,
                    r#"{"decision":"approve","by":"soak"}"#,
                ) {
                    decided += 1;
                }
            }
        }
        if last_kill.elapsed() >= kill_every {
            let _ = medic.child.kill();
            let _ = medic.child.wait();
            kills += 1;
            slow.clear();
            medic = start(data.path(), &steps, port);
            last_kill = Instant::now();
        }
        if last_report.elapsed() >= report_every {
            let (rss, fds) = sample(medic.child.id());
            let runs = request(medic.port, "GET", "/api/runs", "")
                .ok()
                .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0);
            println!(
                "{:>7} {:>9} {:>6} {:>8} {:>8} {:>6} {:>6} {:>6}",
                started.elapsed().as_secs(),
                rss,
                fds,
                sent,
                unavailable,
                decided,
                kills,
                runs
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every acknowledged alert becomes an incident (the inbox may still be draining).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (missing, incidents) = loop {
        let (_, body) = request(medic.port, "GET", "/api/incidents", "").expect("incidents");
        let incidents: serde_json::Value = serde_json::from_str(&body).unwrap();
        let ids: std::collections::HashSet<String> = incidents
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["id"].as_str().map(str::to_string))
            .collect();
        let missing = acked.iter().filter(|a| !ids.contains(*a)).count();
        if missing == 0 || Instant::now() > deadline {
            break (missing, ids.len());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "soak: {} alerts acknowledged, {missing} missing, {} incidents",
        acked.len(),
        incidents
    );
    let _ = medic.child.kill();
    let _ = medic.child.wait();
    assert_eq!(missing, 0, "acknowledged alerts lost");
}
