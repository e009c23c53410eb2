//! `medic approve RUN STEP` and `medic reject RUN STEP`: decide a human gate.
//!
//! With `--server` (or `MEDIC_SERVER`) the decision goes through a running `medic serve`'s
//! API, which wakes the run at once. Without it, medic writes the decision into the local
//! store's mailbox for the run: that needs the store to be free (no `medic serve` or
//! `medic run` holding it), and the run picks the decision up when it resumes. A paced
//! drill (`medic drill run --speed`) running on the store gets the decision at once through
//! its folder under the data dir (medic-drill's `live`).

use crate::app::Ctx;
use anyhow::{Context, Result, bail};
use medic_core::{JournalStore, Message, RunState, gates};
use medic_model::Decision;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub struct DecideArgs {
    pub run: String,
    pub step: String,
    pub comment: Option<String>,
    /// Who decides; default: the token's user (API) or $USER (local store).
    pub by: Option<String>,
    pub server: Option<String>,
    pub token: Option<String>,
}

pub fn decide(ctx: &Ctx, decision: Decision, args: DecideArgs) -> Result<ExitCode> {
    // A paced drill on this data dir (`medic drill run --speed`) takes its decisions
    // through its own folder, even with MEDIC_SERVER set: drills are not on the API.
    if let Some(dir) = medic_drill::live::find(&ctx.data, &args.run) {
        let by = match args.by {
            Some(b) => b,
            None => std::env::var("USER").context("say who decides with --as NAME")?,
        };
        let said = medic_drill::live::decide(&dir, &args.step, decision, &by, args.comment)?;
        println!("{said}");
        return Ok(ExitCode::SUCCESS);
    }
    match args.server.clone() {
        Some(server) => through_api(&server, decision, args),
        None => in_store(ctx, decision, args),
    }
}

fn in_store(ctx: &Ctx, decision: Decision, args: DecideArgs) -> Result<ExitCode> {
    let by = match args.by {
        Some(b) => b,
        None => std::env::var("USER").context("say who decides with --as NAME")?,
    };
    let store = ctx.store().context(
        "cannot open the store: if medic serve is running, decide through its API with \
         --server http://HOST:PORT --token TOKEN (or MEDIC_SERVER and MEDIC_TOKEN)",
    )?;
    let state = RunState::load(store.as_ref(), &args.run)?;
    gates::check_decision(&state, &args.step, &by)?;
    store.post(
        &args.run,
        &Message::GateDecision {
            step: args.step.clone(),
            decision,
            by: by.clone(),
            comment: args.comment,
        },
    )?;
    println!(
        "{} gate {} of run {} as {by}; the run goes on when it resumes (medic resume, or medic serve at start-up)",
        decision.past(),
        args.step,
        args.run
    );
    Ok(ExitCode::SUCCESS)
}

fn through_api(server: &str, decision: Decision, args: DecideArgs) -> Result<ExitCode> {
    let token = args
        .token
        .context("--token (or MEDIC_TOKEN) is required with --server")?;
    let path = format!("/api/runs/{}/gates/{}", args.run, args.step);
    let mut body = json!({"decision": decision.as_str()});
    if let Some(by) = &args.by {
        body["by"] = by.clone().into();
    }
    if let Some(c) = &args.comment {
        body["comment"] = c.clone().into();
    }
    let (status, answer) = http(server, "POST", &path, &token, Some(&body))?;
    if status != 202 {
        let why = answer["error"].as_str().unwrap_or("no reason given");
        bail!("{server} refused the decision ({status}): {why}");
    }
    let by = answer["by"].as_str().unwrap_or("?").to_string();
    // The run's driver journals the decision a moment later: show it landed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (status, run) = http(
            server,
            "GET",
            &format!("/api/runs/{}", args.run),
            &token,
            None,
        )?;
        let step = run["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == args.step.as_str()).cloned());
        if status == 200
            && let Some(step) = step
            && !step["output"].is_null()
        {
            println!(
                "{} gate {} of run {} as {by}; the run goes on",
                decision.past(),
                args.step,
                args.run
            );
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "decision accepted by {server} ({} as {by}); the run has not recorded it yet",
        decision.past()
    );
    Ok(ExitCode::SUCCESS)
}

/// A minimal HTTP/1.1 exchange with a `medic serve` (plain HTTP, as it serves): enough
/// for two JSON calls without pulling an HTTP client into the CLI.
fn http(
    server: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let Some(authority) = server.strip_prefix("http://") else {
        bail!(
            "--server must be an http:// URL (medic serve speaks plain HTTP; put TLS in front of it for remote use), got {server}"
        );
    };
    let authority = authority.trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)
        .with_context(|| format!("cannot connect to medic serve at {server}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the answer of {server}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("{server} sent a malformed HTTP answer"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{server} sent no HTTP status"))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
