//! `hostile`: a TEST-ONLY step that misbehaves on purpose, so the engine's
//! tests can prove the sandbox holds: CPU and memory limits, the HTTP
//! allow-list, secret grants, traps and output size limits.
//!
//! Never use it in a real workflow.

use medic_step::host::{self, Level};
use medic_step::{Failure, Invocation, Outcome, Step};
use serde::Deserialize;
use serde_json::{Value, json};
use wstd::http::{Body, Client, Request};

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

/// The `with:` parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    mode: String,
    url: Option<String>,
    secret: Option<String>,
}

struct Hostile;

impl Step for Hostile {
    type Params = Params;
    const NAME: &'static str = "hostile";
    const SUMMARY: &'static str = "TEST ONLY: misbehaves on purpose (spin, hog memory, call forbidden hosts, trap) to test the sandbox";
    const PARAMS_SCHEMA: &'static str = PARAMS_SCHEMA;
    // The engine's tests read exactly what the sandbox recorded.
    const ANNOTATE_FAILURES: bool = false;

    async fn run(params: Params, _: &Invocation) -> Result<Outcome, Failure> {
        let secret = params.secret.as_deref().unwrap_or("NOT_GRANTED");
        match params.mode.as_str() {
            "loop" => spin(),
            "alloc" => hog_memory(),
            "forbidden-host" => {
                let url = params
                    .url
                    .as_deref()
                    .ok_or_else(|| Failure::fatal("mode forbidden-host needs param `url`"))?;
                get(url).await
            }
            "forbidden-secret" => {
                let got = host::secret(secret).is_some();
                Ok(Outcome::Done(json!({ "got": got })))
            }
            "trap" => trap(),
            "panic" => panic!("hostile step panicked on purpose"),
            "big-output" => Ok(Outcome::Done(Value::String("x".repeat(BIG_OUTPUT_CHARS)))),
            "leak-secret" => {
                let value = host::secret(secret).unwrap_or_default();
                leak(&value, params.url.as_deref()).await
            }
            "ok" => Ok(Outcome::Done(json!({"ok": true}))),
            other => Err(Failure::fatal(format!(
                "param `mode` must be one of {}, got {other:?}",
                MODES.join(", ")
            ))),
        }
    }
}

medic_step::export_step!(Hostile);

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
async fn get(url: &str) -> Result<Outcome, Failure> {
    let request = Request::get(url)
        .body(Body::empty())
        .map_err(|e| Failure::fatal(format!("param `url`: {e}")))?;
    match Client::new().send(request).await {
        Ok(response) => Ok(Outcome::Done(
            json!({ "status": response.status().as_u16() }),
        )),
        Err(e) => Err(Failure::fatal(format!("GET {url} failed: {e:#}"))),
    }
}

/// Puts a granted secret's value everywhere the host records something: a log line,
/// the timeline, step state, an HTTP header and body, and the output. The host must
/// redact it from all of them.
async fn leak(value: &str, url: Option<&str>) -> Result<Outcome, Failure> {
    host::log(Level::Info, &format!("the token is {value}"));
    host::annotate(&format!("token {value} in a note"));
    host::state_set("token", value);
    if let Some(url) = url {
        let request = Request::post(url)
            .header("Authorization", format!("Bearer {value}"))
            .header("Content-Length", format!("{}", value.len() + 6))
            .body(Body::from(format!("token={value}")))
            .map_err(|e| Failure::fatal(format!("param `url`: {e}")))?;
        if let Err(e) = Client::new().send(request).await {
            return Err(Failure::fatal(format!(
                "POST {url} failed: {e:#} (token {value})"
            )));
        }
    }
    Ok(Outcome::Done(json!({ "token": value })))
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
