//! `medic serve` as a process on a free port, with the test token and the workflows a test
//! gives it; killed on drop.

use crate::support::{http_request, medic_in};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The bearer token every harnessed `medic serve` accepts.
pub const TOKEN: &str = "e2e-token";

/// A request to medic serve with the test token: (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let addr = format!("127.0.0.1:{port}");
    let body = body.unwrap_or("").as_bytes();
    let (status, answer) = http_request(&addr, method, path, &headers, body)?;
    Ok((status, String::from_utf8_lossy(&answer).into_owned()))
}

/// A `medic serve` process with one workflow that matches every alert.
pub struct Serve {
    pub child: Child,
    pub port: u16,
}

impl Serve {
    pub fn start(data: &Path, port: u16) -> Serve {
        let note = "apiVersion: medic/v1\nkind: Workflow\nname: note\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: note\n    phase: communicate\n    uses: echo\n    with: { annotate: '{{ incident.title }}' }\n";
        Self::with_workflows(data, port, &[("note.yaml", note.to_string())])
    }

    /// `medic serve` with these workflow files (name, YAML).
    pub fn with_workflows(data: &Path, port: u16, files: &[(&str, String)]) -> Serve {
        let workflows = data.join("workflows");
        std::fs::create_dir_all(&workflows).unwrap();
        for (name, yaml) in files {
            std::fs::write(workflows.join(name), yaml).unwrap();
        }
        let config = data.join("medic.toml");
        std::fs::write(
            &config,
            format!("tokens = [\"{TOKEN}\"]\nconcurrency = 4\n"),
        )
        .unwrap();
        let mut child = medic_in(data)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--workflows")
            .arg(&workflows)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http(port, "GET", "/healthz", None) {
                return Serve { child, port };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("medic serve did not come up on port {port}");
    }

    pub fn get(&self, path: &str) -> Value {
        let (status, body) = http(self.port, "GET", path, None).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
