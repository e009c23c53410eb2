//! A headless Chromium session over the W3C WebDriver protocol, through a chromedriver
//! started on a free port (harness for `web`). The protocol is JSON over HTTP, spoken here
//! with the suite's one raw HTTP client: the few commands the web tests use.

use crate::support::free_port;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The key WebDriver names an element reference by (W3C WebDriver, "Elements").
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One HTTP/1.1 request to chromedriver (which refuses HTTP/1.0): (status, body). The
/// answer carries a Content-Length, read exactly.
fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(0);
    let mut length = None;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut answer = Vec::new();
    match length {
        Some(n) => {
            answer.resize(n, 0);
            r.read_exact(&mut answer)?;
        }
        None => {
            r.read_to_end(&mut answer)?;
        }
    }
    Ok((status, answer))
}

pub struct Browser {
    driver: Child,
    addr: String,
    session: String,
    shots: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; screenshots go to
    /// `$CARGO_TARGET_TMPDIR/web/<test>-<name>.png`.
    pub fn start(test: &str) -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run scripts/deps.d/60-chromium (or scripts/install-test-deps)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        // The flags this machine needs: no sandbox as root, and no background networking,
        // whose connections the closed network refuses.
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": CHROMIUM, "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--window-size=1200,1000",
            format!("--user-data-dir={}", profile.path().display()),
        ]}}}});
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let session = loop {
            match http_request(
                &addr,
                "POST",
                "/session",
                &[("Content-Type", "application/json")],
                caps.to_string().as_bytes(),
            ) {
                Ok((200, body)) => {
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    break v["value"]["sessionId"].as_str().unwrap().to_string();
                }
                Ok((status, body)) if Instant::now() > deadline => {
                    panic!("chromedriver: {status} {}", String::from_utf8_lossy(&body))
                }
                Err(e) if Instant::now() > deadline => panic!("chromedriver: {e}"),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            driver,
            addr,
            session,
            shots: shots.join(test),
            _profile: profile,
        }
    }

    /// One WebDriver command: its `value`, or the WebDriver error as `Err`.
    fn command(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let (status, answer) = http_request(
            &self.addr,
            method,
            &path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        if status == 200 {
            Ok(v["value"].clone())
        } else {
            Err(format!("{method} {path}: {status} {}", v["value"]))
        }
    }

    pub fn goto(&self, url: &str) {
        self.command("POST", "/url", json!({"url": url})).unwrap();
    }

    /// The first element matching a CSS selector, if any.
    pub fn find(&self, css: &str) -> Option<String> {
        self.command(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        )
        .ok()
        .and_then(|v| v[ELEMENT].as_str().map(str::to_string))
    }

    /// Waits up to `secs` for an element.
    pub fn wait_for(&self, css: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(e) = self.find(css) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {css} on the page:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the first match; a live update may replace it between find and click, so a
    /// stale element is found again.
    pub fn click(&self, css: &str) {
        for _ in 0..20 {
            let e = self.wait_for(css, 10);
            match self.command("POST", &format!("/element/{e}/click"), json!({})) {
                Ok(_) => return,
                Err(err) if err.contains("stale element") => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(err) => panic!("{err}"),
            }
        }
        panic!("{css} kept being replaced before it could be clicked");
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_for(css, 10);
        self.command(
            "POST",
            &format!("/element/{e}/value"),
            json!({"text": text}),
        )
        .unwrap();
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.wait_for(css, 10);
        self.command("GET", &format!("/element/{e}/text"), json!({}))
            .unwrap()
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Runs `script` (a function body; a returned promise is awaited) and returns its value.
    pub fn execute(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .unwrap()
    }

    pub fn source(&self) -> String {
        self.command("GET", "/source", json!({}))
            .map(|v| v.as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    /// Evaluates `script` until it returns true, or panics naming `what` (with a screenshot).
    pub fn until(&self, what: &str, secs: u64, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self.command(
                "POST",
                "/execute/sync",
                json!({"script": script, "args": []}),
            ) == Ok(Value::Bool(true))
            {
                return;
            }
            if Instant::now() > deadline {
                self.shot("timeout");
                panic!("timed out waiting for {what}; page:\n{}", self.source());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Resizes the window (CSS pixels), e.g. to fit a tall page in a screenshot.
    pub fn resize(&self, width: u32, height: u32) {
        self.command(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .unwrap();
    }

    /// Saves a PNG of the viewport as `<test>-<name>.png`.
    pub fn shot(&self, name: &str) {
        let b64 = self.command("GET", "/screenshot", json!({})).unwrap();
        let png = medic_core::Body::Base64(b64.as_str().unwrap().to_string()).to_bytes();
        std::fs::write(format!("{}-{name}.png", self.shots.display()), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http_request(
            &self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            &[],
            b"",
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
