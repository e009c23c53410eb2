//! Helpers for unit tests of a step on the build machine (`cargo test`, not in medic): a
//! fake host that [`crate::host`] uses outside a component, a sample [`Invocation`], and
//! [`run`], which runs a step's `run` as medic would, params parsing included.
//!
//! ```
//! use medic_step::{Failure, Invocation, Outcome, Step, host, testing};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Params { message: String }
//!
//! struct Note;
//! impl Step for Note {
//!     type Params = Params;
//!     const NAME: &'static str = "note";
//!     const SUMMARY: &'static str = "Put a message on the timeline";
//!     const PARAMS_SCHEMA: &'static str = r#"{"type": "object"}"#;
//!     async fn run(params: Params, _: &Invocation) -> Result<Outcome, Failure> {
//!         host::annotate(&params.message);
//!         Ok(Outcome::Done(serde_json::json!({"ok": true})))
//!     }
//! }
//!
//! testing::reset();
//! let out = testing::run::<Note>(r#"{"message": "hi"}"#).unwrap();
//! assert!(matches!(out, Outcome::Done(_)));
//! assert_eq!(testing::host().annotations, ["hi"]);
//! ```
//!
//! HTTP is not faked: a step's calls to services are tested end to end against the real
//! service (medic's e2e tests), and its pure logic (parsing answers, building requests) by
//! plain unit tests.

use std::collections::BTreeMap;

use crate::bindings::medic::step::types::{Incident, IncidentStatus, Pair, Phase};
use crate::host::Level;
use crate::{Failure, Invocation, Outcome, Step};

/// What the fake host holds and saw, per thread (each test runs on its own thread).
#[derive(Debug, Clone, Default)]
pub struct FakeHost {
    /// Secrets the step may read, by name.
    pub secrets: BTreeMap<String, String>,
    /// Durable step state, by key.
    pub state: BTreeMap<String, String>,
    /// Log lines, in order.
    pub logs: Vec<(Level, String)>,
    /// Timeline annotations, in order.
    pub annotations: Vec<String>,
    /// Names of the secrets the step asked for, granted or not.
    pub secrets_read: Vec<String>,
}

thread_local! {
    static HOST: std::cell::RefCell<FakeHost> = std::cell::RefCell::new(FakeHost::default());
}

/// Empties the fake host of this thread.
pub fn reset() {
    HOST.with(|h| *h.borrow_mut() = FakeHost::default());
}

/// Grants a secret to steps run on this thread.
pub fn set_secret(name: &str, value: &str) {
    HOST.with(|h| {
        h.borrow_mut()
            .secrets
            .insert(name.to_owned(), value.to_owned())
    });
}

/// Stores step state as an earlier attempt would have.
pub fn set_state(key: &str, value: &str) {
    HOST.with(|h| {
        h.borrow_mut()
            .state
            .insert(key.to_owned(), value.to_owned())
    });
}

/// A copy of what the fake host of this thread holds and saw.
pub fn host() -> FakeHost {
    HOST.with(|h| h.borrow().clone())
}

/// A sample invocation: attempt 1 of step `s` in run `test-run`, restore phase, a firing
/// `CheckoutErrorRate` incident, `deadline_ms` 30 000, with these params.
pub fn invocation(params: &str) -> Invocation {
    Invocation {
        run_id: "test-run".into(),
        step_id: "s".into(),
        attempt: 1,
        idempotency_key: "test-run/s".into(),
        phase: Phase::Restore,
        incident: Incident {
            id: "inc-1".into(),
            title: "CheckoutErrorRate".into(),
            severity: "critical".into(),
            status: IncidentStatus::Firing,
            labels: vec![Pair {
                key: "service".into(),
                value: "checkout".into(),
            }],
            annotations: Vec::new(),
            started_at: "2026-01-01T00:00:00Z".into(),
            source: "cli".into(),
        },
        params: params.into(),
        drill: false,
        deadline_ms: 30_000,
    }
}

/// Runs step `S` on [`invocation`]`(params)` as medic would: params parsed into
/// `S::Params`, then `S::run`, which must finish without awaiting I/O.
///
/// # Panics
///
/// When the step awaits HTTP or a timer: there is none outside a component.
///
/// # Errors
///
/// The [`Failure`] the params or the step gave.
pub fn run<S: Step>(params: &str) -> Result<Outcome, Failure> {
    let invocation = invocation(params);
    let parsed = crate::params::parse::<S::Params>(params)?;
    let mut future = std::pin::pin!(S::run(parsed, &invocation));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(result) => result,
        // Outside a component there is no wasi:http or timer to wait for.
        std::task::Poll::Pending => panic!(
            "step `{}` awaited I/O (HTTP, a timer), which the fake host cannot do: test that part against the real service",
            S::NAME
        ),
    }
}

/// The param names `P` accepts, sorted: what serde lists when it refuses an unknown key
/// (so `P` must use `#[serde(deny_unknown_fields)]`). Compare with [`schema_params`] so the
/// manifest's schema and the parser cannot drift apart.
///
/// # Panics
///
/// When `P` accepts an unknown key.
pub fn known_params<P: serde::de::DeserializeOwned>() -> Vec<String> {
    const PROBE: &str = "__medic_step_probe__";
    let refused = crate::params::parse::<P>(&format!(r#"{{"{PROBE}": 0}}"#))
        .err()
        .map(|f| f.message)
        .unwrap_or_default();
    let prefix = format!("unknown param `{PROBE}` (expected one of: ");
    let list = refused
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("an unknown key was not refused by its name: {refused:?}"));
    let mut names: Vec<String> = list.split(", ").map(str::to_owned).collect();
    names.sort();
    names
}

/// The top-level property names of a params JSON Schema, sorted.
///
/// # Panics
///
/// When `schema` is not JSON with a `properties` object.
pub fn schema_params(schema: &str) -> Vec<String> {
    let schema: serde_json::Value = serde_json::from_str(schema).expect("the schema is JSON");
    let mut names: Vec<String> = schema["properties"]
        .as_object()
        .expect("the schema has `properties`")
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

/// The fake host functions [`crate::host`] calls outside a component.
#[cfg_attr(
    target_family = "wasm",
    expect(dead_code, reason = "a component calls the real host")
)]
pub(crate) mod fake {
    use super::HOST;
    use crate::host::Level;

    pub fn log(level: Level, message: &str) {
        HOST.with(|h| h.borrow_mut().logs.push((level, message.to_owned())));
    }

    pub fn secret(name: &str) -> Option<String> {
        HOST.with(|h| {
            let mut h = h.borrow_mut();
            h.secrets_read.push(name.to_owned());
            h.secrets.get(name).cloned()
        })
    }

    pub fn annotate(message: &str) {
        HOST.with(|h| h.borrow_mut().annotations.push(message.to_owned()));
    }

    pub fn state_get(key: &str) -> Option<String> {
        HOST.with(|h| h.borrow().state.get(key).cloned())
    }

    pub fn state_set(key: &str, value: &str) {
        HOST.with(|h| {
            h.borrow_mut()
                .state
                .insert(key.to_owned(), value.to_owned())
        });
    }
}
