//! Write a [medic](https://github.com/) step in Rust.
//!
//! A step is a WebAssembly component that medic runs, one sandboxed instance per attempt,
//! to do one thing during an incident: toggle a flag, roll back a deployment, post to chat,
//! check a metric. This crate is everything a step needs besides its own logic:
//!
//! - [`bindings`]: the `medic:step@0.2.0` WIT, generated once with wit-bindgen (its
//!   `wasi:http` imports mapped onto the `wasip2` crate), and [`export_step!`], which
//!   exports a [`Step`] as the component's `describe` and `run`;
//! - [`params`]: the `with:` params as a typed struct (`serde`), with errors that name the
//!   unknown, missing or mistyped param;
//! - [`http`]: a wasi:http client with body and time limits whose errors tell a denied host
//!   from a network failure; [`url`]: the checks every service URL param needs;
//! - [`Failure`]: what an attempt reports when it fails, retryable or not, with the
//!   remote's `Retry-After`;
//! - [`host`]: log, secrets, timeline annotations and durable step state, and
//!   [`testing`], a fake of them for unit tests on the build machine.
//!
//! # Example
//!
//! A step that puts its `message` on the incident timeline (the project `medic step new
//! my-step --lang rust` creates starts from this):
//!
//! ```
//! use medic_step::{Failure, Invocation, Outcome, Step, host, params};
//! use serde::Deserialize;
//!
//! /// The `with:` params; an unknown key is an error naming it.
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Params {
//!     message: String,
//! }
//!
//! struct Note;
//!
//! impl Step for Note {
//!     type Params = Params;
//!     const NAME: &'static str = "note";
//!     const SUMMARY: &'static str = "Put a message on the incident timeline";
//!     const PARAMS_SCHEMA: &'static str = r#"{
//!         "$schema": "https://json-schema.org/draft/2020-12/schema",
//!         "type": "object",
//!         "properties": {"message": {"type": "string", "minLength": 1}},
//!         "required": ["message"],
//!         "additionalProperties": false
//!     }"#;
//!
//!     async fn run(params: Params, invocation: &Invocation) -> Result<Outcome, Failure> {
//!         params::non_empty("message", &params.message)?;
//!         host::annotate(&format!("{}: {}", invocation.incident.title, params.message));
//!         Ok(Outcome::Done(serde_json::json!({"noted": params.message})))
//!     }
//! }
//!
//! // In the step's crate (a `cdylib` built for wasm32-wasip2):
//! // medic_step::export_step!(Note);
//!
//! // And its unit test, on the build machine:
//! medic_step::testing::reset();
//! let done = medic_step::testing::run::<Note>(r#"{"message": "rolled back"}"#).unwrap();
//! assert!(matches!(done, Outcome::Done(_)));
//! assert_eq!(medic_step::testing::host().annotations, ["CheckoutErrorRate: rolled back"]);
//! let refused = medic_step::testing::run::<Note>(r#"{"mesage": "x"}"#).unwrap_err();
//! assert!(refused.message.starts_with("unknown param `mesage`"));
//! assert!(!refused.retryable);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; try it with `medic step test
//! target/wasm32-wasip2/release/<name>.wasm --params '{...}'`. The rules a step lives by
//! (granted hosts and secrets, limits, the idempotency key, retry-after, deadline-ms) are in
//! medic's docs/writing-steps.md.
//!
//! # Where it comes from
//!
//! The crate lives in medic's repository (`guests/lib/medic-step`), where every Rust step
//! medic ships uses it by path. `medic step new --lang rust` copies it into the new project
//! (`medic-step/`, next to the vendored `wit/`), so a step builds offline and outside the
//! repository against exactly the crate the medic that created it was built with.

#![warn(missing_docs)]
#![deny(clippy::allow_attributes)]

mod failure;
pub mod host;
pub mod http;
pub mod params;
pub mod testing;
pub mod url;

pub use failure::{Failure, retry_after_ms, retryable_status};
/// Re-exported so a step and this crate agree on one serde_json.
pub use serde_json;

/// The `medic:step@0.2.0` bindings, generated once for every step (with wit-bindgen 0.61).
///
/// A step rarely needs them directly: [`Step`], [`export_step!`] and [`host`] cover the
/// world. The `wasi:http`, `wasi:io` and `wasi:clocks` imports are the `wasip2` crate's (the
/// same WASI 0.2.12), so `wstd` and [`http`] use them as they are.
#[expect(
    missing_docs,
    reason = "generated code; the WIT's own docs are on its items"
)]
pub mod bindings {
    wit_bindgen::generate!({
        // The vendored copy made by `medic step new` points at the project's `wit/`.
        path: "../../../wit/0.2.0",
        world: "medic:step/step-component",
        with: {
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        },
        pub_export_macro: true,
        export_macro_name: "__export_step_component",
    });
}

/// One attempt: run and step ids, attempt number, idempotency key, phase, incident, the
/// params JSON, whether it is a drill, and `deadline_ms` left in the attempt.
pub use bindings::medic::step::types::Invocation;
pub use bindings::medic::step::types::{Capabilities, Incident, IncidentStatus, Pair, Phase};

use bindings::exports::medic::step::step as wit;
use bindings::medic::step::types;

/// How an attempt ended without failing.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The step is done; later steps read this JSON as `steps.<id>.output`.
    Done(serde_json::Value),
    /// Not done yet (a rollout still progressing): medic runs another attempt after `ms`
    /// milliseconds, counted against the step's attempts. `reason` goes on the timeline.
    RetryAfter {
        /// Milliseconds to wait before the next attempt.
        ms: u64,
        /// Why, for the timeline.
        reason: String,
    },
}

/// A step: its manifest and what one attempt does. [`export_step!`] makes a type that
/// implements it the component's `describe` and `run`.
pub trait Step {
    /// The `with:` params. Derive `serde::Deserialize` with `#[serde(deny_unknown_fields)]`
    /// so a misspelt key is an error naming it ([`params::parse`]).
    type Params: serde::de::DeserializeOwned;
    /// Short name, e.g. `http-probe`.
    const NAME: &'static str;
    /// One line: what the step does.
    const SUMMARY: &'static str;
    /// JSON Schema (draft 2020-12) of the params, as JSON text; `medic validate` checks
    /// workflows against it.
    const PARAMS_SCHEMA: &'static str;
    /// Hosts (`host` or `host:port`) the step always calls. Hosts that come from params are
    /// granted by the workflow's `allow:` instead.
    const HOSTS: &'static [&'static str] = &[];
    /// Secrets the step always reads. Secret names that come from params are granted by the
    /// workflow's `secrets:` instead.
    const SECRETS: &'static [&'static str] = &[];
    /// Whether a failed attempt also adds `<name> failed: <message>` to the timeline. Turn
    /// it off for a check retried many times, where every attempt would repeat it.
    const ANNOTATE_FAILURES: bool = true;

    /// Runs one attempt with the parsed params.
    ///
    /// # Errors
    ///
    /// A [`Failure`]: medic retries it when it is retryable and the step has attempts left.
    fn run(
        params: Self::Params,
        invocation: &Invocation,
    ) -> impl Future<Output = Result<Outcome, Failure>>;
}

/// The manifest of step `S`, at `version` (the step crate's own). Called by [`export_step!`].
#[doc(hidden)]
pub fn __describe<S: Step>(version: &str) -> wit::Manifest {
    let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    wit::Manifest {
        name: S::NAME.into(),
        version: version.into(),
        summary: S::SUMMARY.into(),
        params_schema: S::PARAMS_SCHEMA.into(),
        capabilities: Capabilities {
            hosts: list(S::HOSTS),
            secrets: list(S::SECRETS),
        },
    }
}

/// One attempt of step `S`: params parsed, `run` driven to completion on wstd's runtime,
/// and the result in WIT terms. Called by [`export_step!`].
#[doc(hidden)]
pub fn __run<S: Step>(invocation: Invocation) -> Result<wit::Outcome, wit::StepError> {
    let result = params::parse::<S::Params>(&invocation.params)
        .and_then(|params| wstd::runtime::block_on(S::run(params, &invocation)));
    match result {
        Ok(Outcome::Done(output)) => Ok(wit::Outcome::Done(output.to_string())),
        Ok(Outcome::RetryAfter { ms, reason }) => {
            Ok(wit::Outcome::RetryAfter(types::RetryAfter { ms, reason }))
        }
        Err(failure) => {
            if S::ANNOTATE_FAILURES {
                host::annotate(&format!("{} failed: {}", S::NAME, failure.message));
            }
            match failure.retry_after_ms {
                // The remote said when to come back: wait exactly that, rather than the
                // workflow's backoff, which may be shorter and hit the limit again.
                Some(ms) if failure.retryable => Ok(wit::Outcome::RetryAfter(types::RetryAfter {
                    ms,
                    reason: failure.message,
                })),
                _ => Err(wit::StepError {
                    message: failure.message,
                    retryable: failure.retryable,
                }),
            }
        }
    }
}

/// Exports step type `$step` (a [`Step`]) as the component's `medic:step/step@0.2.0`
/// interface: `describe` gives its manifest with the step crate's own version, `run` parses
/// the params and runs one attempt. Use it once, in the step's `lib.rs`.
#[macro_export]
macro_rules! export_step {
    ($step:ty) => {
        #[doc(hidden)]
        struct __MedicStepExport;

        impl $crate::bindings::exports::medic::step::step::Guest for __MedicStepExport {
            fn describe() -> $crate::bindings::exports::medic::step::step::Manifest {
                $crate::__describe::<$step>(env!("CARGO_PKG_VERSION"))
            }

            fn run(
                invocation: $crate::Invocation,
            ) -> Result<
                $crate::bindings::exports::medic::step::step::Outcome,
                $crate::bindings::exports::medic::step::step::StepError,
            > {
                $crate::__run::<$step>(invocation)
            }
        }

        $crate::bindings::__export_step_component!(__MedicStepExport with_types_in $crate::bindings);
    };
}
