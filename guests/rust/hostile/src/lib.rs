//! `hostile`: a TEST-ONLY step that misbehaves on purpose, so the engine's
//! tests can prove the sandbox holds: CPU and memory limits, the HTTP
//! allow-list, secret grants, traps and output size limits.
//!
//! Never use it in a real workflow.

use serde_json::Value;
use wstd::http::{Body, Client, Request};

wit_bindgen::generate!({
    path: "../../../wit/0.1.0",
    world: "medic:step/step-component",
    // Reuse the wasi:http bindings `wstd` already carries (wasip2, WASI 0.2.12).
    with: {
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
});

use exports::medic::step::step::{Guest, Invocation, Manifest, Outcome, StepError};
use medic::step::host;
use medic::step::types::Capabilities;

const MODES: [&str; 9] = [
    "loop",
    "alloc",
    "forbidden-host",
    "forbidden-secret",
    "trap",
    "panic",
    "big-output",
    "leak-secret",
    "ok",
];

const PARAMS_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "hostile params (TEST ONLY)",
  "type": "object",
  "properties": {
    "mode": {
      "type": "string",
      "enum": ["loop", "alloc", "forbidden-host", "forbidden-secret", "trap", "panic", "big-output", "leak-secret", "ok"]
    },
    "url": {"type": "string", "description": "URL for modes forbidden-host and leak-secret"},
    "secret": {"type": "string", "default": "NOT_GRANTED", "description": "Secret name for mode forbidden-secret"}
  },
  "required": ["mode"],
  "additionalProperties": false
}"#;

/// Size of the `big-output` JSON string: well past any sane output limit.
const BIG_OUTPUT_CHARS: usize = 10 * 1024 * 1024;

struct Hostile;

impl Guest for Hostile {
    fn describe() -> Manifest {
        Manifest {
            name: "hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "TEST ONLY: misbehaves on purpose (spin, hog memory, call forbidden hosts, trap) to test the sandbox".into(),
            params_schema: PARAMS_SCHEMA.into(),
            capabilities: Capabilities { hosts: Vec::new(), secrets: Vec::new() },
        }
    }

    fn run(invocation: Invocation) -> Result<Outcome, StepError> {
        let params: Value = serde_json::from_str(&invocation.params)
            .map_err(|e| bad_params(format!("params are not valid JSON: {e}")))?;
        let text = |name: &str| params.get(name).and_then(Value::as_str);
        match text("mode") {
            Some("loop") => spin(),
            Some("alloc") => hog_memory(),
            Some("forbidden-host") => {
                let url = text("url")
                    .ok_or_else(|| bad_params("mode forbidden-host needs param `url`"))?;
                wstd::runtime::block_on(get(url))
            }
            Some("forbidden-secret") => {
                let got = host::secret(text("secret").unwrap_or("NOT_GRANTED")).is_some();
                Ok(Outcome::Done(serde_json::json!({ "got": got }).to_string()))
            }
            Some("trap") => trap(),
            Some("panic") => panic!("hostile step panicked on purpose"),
            Some("big-output") => Ok(Outcome::Done(format!(
                "\"{}\"",
                "x".repeat(BIG_OUTPUT_CHARS)
            ))),
            Some("leak-secret") => {
                let name = text("secret").unwrap_or("NOT_GRANTED");
                let value = host::secret(name).unwrap_or_default();
                wstd::runtime::block_on(leak(&value, text("url")))
            }
            Some("ok") => Ok(Outcome::Done(r#"{"ok":true}"#.into())),
            Some(other) => Err(bad_params(format!(
                "param `mode` must be one of {}, got {other:?}",
                MODES.join(", ")
            ))),
            None => Err(bad_params("missing required param `mode` (a string)")),
        }
    }
}

fn bad_params(message: impl Into<String>) -> StepError {
    StepError {
        message: message.into(),
        retryable: false,
    }
}

/// Burns CPU forever without calling the host: only epoch interruption (or
/// fuel) can stop it.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        // black_box keeps the optimiser from proving the loop useless.
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

/// Allocates and touches 1 MiB blocks until the memory limit stops it (as a
/// trap when `memory.grow` is refused and the allocator aborts).
fn hog_memory() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        // A non-zero fill writes every page, so the memory is really used
        // rather than left as untouched (lazily zeroed) pages.
        blocks.push(vec![0xA5; 1024 * 1024]);
        std::hint::black_box(&mut blocks);
    }
}

/// A GET to a host the workflow did not grant: the host must refuse it. The
/// client's error is passed through unchanged so tests see what a guest sees.
async fn get(url: &str) -> Result<Outcome, StepError> {
    let request = Request::get(url)
        .body(Body::empty())
        .map_err(|e| bad_params(format!("param `url`: {e}")))?;
    match Client::new().send(request).await {
        Ok(response) => Ok(Outcome::Done(
            serde_json::json!({ "status": response.status().as_u16() }).to_string(),
        )),
        Err(e) => Err(StepError {
            message: format!("GET {url} failed: {e:#}"),
            retryable: false,
        }),
    }
}

/// Puts a granted secret's value everywhere the host records something: a log line,
/// the timeline, step state, an HTTP header and body, and the output. The host must
/// redact it from all of them.
async fn leak(value: &str, url: Option<&str>) -> Result<Outcome, StepError> {
    host::log(
        medic::step::types::Level::Info,
        &format!("the token is {value}"),
    );
    host::annotate(&format!("token {value} in a note"));
    host::state_set("token", value);
    if let Some(url) = url {
        let request = Request::post(url)
            .header("Authorization", format!("Bearer {value}"))
            .header("Content-Length", format!("{}", value.len() + 6))
            .body(Body::from(format!("token={value}")))
            .map_err(|e| bad_params(format!("param `url`: {e}")))?;
        if let Err(e) = Client::new().send(request).await {
            return Err(StepError {
                message: format!("POST {url} failed: {e:#} (token {value})"),
                retryable: false,
            });
        }
    }
    Ok(Outcome::Done(
        serde_json::json!({ "token": value }).to_string(),
    ))
}

/// Executes the wasm `unreachable` instruction: a trap with no panic message.
#[cfg(target_arch = "wasm32")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

/// Off wasm (host `cargo check`) there is no `unreachable` instruction.
#[cfg(not(target_arch = "wasm32"))]
fn trap() -> ! {
    std::process::abort()
}

export!(Hostile);
