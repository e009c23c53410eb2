//! Secrets in every encoding: a receiver that echoes a secret back in a binary body (raw,
//! base64, hex, percent-encoded), and one whose error page quotes the credential path
//! of a webhook URL that is itself the secret. Neither may reach the journal, the step
//! error, the timeline or the API, in any form.

use crate::support::{Server, TOKEN, eventually};
use base64::Engine as _;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

const VALUE: &str = "tok-S3cr3t/v4lue+xyz";
const HOOK_PATH: &str = "/services/T0001/B0002/hookSECRETpath42";

/// A receiver on a free port: `/echo` answers 200 with a binary body carrying the request
/// body raw, base64, hex and percent-encoded; anything else answers 404 quoting the path.
fn receiver() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap_or_default();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let (status, content_type, answer) = if path == "/echo" {
                let mut a = vec![0xff, 0x00, 0xfe];
                a.extend_from_slice(&body);
                a.push(b'|');
                a.extend_from_slice(
                    base64::engine::general_purpose::STANDARD
                        .encode(&body)
                        .as_bytes(),
                );
                a.push(b'|');
                a.extend_from_slice(hex::encode(&body).as_bytes());
                a.push(b'|');
                a.extend_from_slice(percent(&body).as_bytes());
                a.push(0x80);
                (200, "application/octet-stream", a)
            } else {
                let page = format!("no_service: no hook at {path}");
                (404, "text/plain", page.into_bytes())
            };
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                answer.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&answer);
        }
    });
    port
}

fn percent(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every way `needle` could hide in `text`: as is, and inside any base64, hex or
/// percent-encoded run, decoded independently of medic's redactor.
fn leaks(text: &str, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let n = needle.as_bytes();
    let contains = |hay: &[u8]| hay.windows(n.len()).any(|w| w == n);
    if text.contains(needle) {
        found.push("as is".to_string());
    }
    let unescaped = text.replace("\\/", "/");
    // Percent-decoding of the whole text.
    let mut decoded = Vec::new();
    let b = unescaped.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&unescaped[i + 1..i + 3], 16)
        {
            decoded.push(v);
            i += 3;
            continue;
        }
        decoded.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    if contains(&decoded) && !text.contains(needle) {
        found.push("percent-encoded".into());
    }
    let runs = |alphabet: &dyn Fn(char) -> bool| -> Vec<String> {
        unescaped
            .split(|c: char| !alphabet(c))
            .filter(|r| r.len() >= 8)
            .map(str::to_string)
            .collect()
    };
    for run in runs(&|c: char| c.is_ascii_alphanumeric() || "+/=-_".contains(c)) {
        let run = run.trim_end_matches('=');
        for start in 0..4 {
            if start >= run.len() {
                break;
            }
            let part = &run[start..];
            let part = &part[..part.len() / 4 * 4];
            for engine in [
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ] {
                if let Ok(bytes) = engine.decode(part)
                    && contains(&bytes)
                {
                    found.push(format!("base64 in {run}"));
                }
            }
        }
    }
    for run in runs(&|c: char| c.is_ascii_hexdigit()) {
        for start in 0..2 {
            let part = &run[start.min(run.len())..];
            let part = &part[..part.len() / 2 * 2];
            if let Ok(bytes) = hex::decode(part)
                && contains(&bytes)
            {
                found.push(format!("hex in {run}"));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_echoed_in_binary_or_quoted_from_a_url_never_reach_any_record() {
    let port = receiver();
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.toml");
    let hook = format!("http://127.0.0.1:{port}{HOOK_PATH}");
    std::fs::write(
        &secrets,
        format!("TOKEN = \"{VALUE}\"\nHOOK = \"{hook}\"\n"),
    )
    .unwrap();
    let leak = format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: leak\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: leak\n    phase: communicate\n    uses: hostile\n    with: {{ mode: leak-secret, secret: TOKEN, url: 'http://127.0.0.1:{port}/echo' }}\n    secrets: [TOKEN]\n    allow: [127.0.0.1]\n"
    );
    let chat = "apiVersion: medic/v1\nkind: Workflow\nname: chat\ntrigger:\n  matchers: ['alertname=~\".+\"']\nsteps:\n  - id: post\n    phase: communicate\n    uses: chat-webhook\n    with: { url_secret: HOOK, text: 'checkout is down' }\n    secrets: [HOOK]\n    allow: [127.0.0.1]\n";
    let s = Server::start(
        &format!(
            "[secrets]\nfrom = \"file\"\npath = \"{}\"\n",
            secrets.display()
        ),
        &[&leak, chat],
    )
    .await;
    let r = s
        .request(
            "POST",
            "/intake/alertmanager",
            &[
                ("authorization", &format!("Bearer {TOKEN}")),
                ("content-type", "application/json"),
            ],
            &crate::support::payload("alertmanager-group.json"),
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    let runs: Vec<Value> = eventually("both runs to finish", async || {
        let runs = s.get("/api/runs").await;
        let runs = runs.as_array().cloned().unwrap_or_default();
        (runs.len() >= 2 && runs.iter().all(|r| r["status"] != "running")).then_some(runs)
    })
    .await;
    let mut records = String::new();
    for run in &runs {
        let id = run["id"].as_str().unwrap();
        let report = s.get(&format!("/api/runs/{id}")).await;
        records.push_str(&report.to_string());
        let entries = s.svc.engine().store().entries(id).unwrap();
        records.push_str(&serde_json::to_string(&entries).unwrap());
    }
    records.push_str(&s.get("/api/incidents").await.to_string());
    // The echo was journalled, and redacted as bytes inside the binary body.
    assert!(records.contains("[redacted:TOKEN]"), "{records}");
    assert!(records.contains("[redacted:HOOK]"), "{records}");
    for needle in [VALUE, HOOK_PATH, "hookSECRETpath42", &hook] {
        let found = leaks(&records, needle);
        assert!(found.is_empty(), "{needle} leaks {found:?} in {records}");
    }
}
