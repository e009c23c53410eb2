//! `k8s-rollout`: a restore-phase step for Kubernetes Deployments, doing what `kubectl
//! rollout history|undo|pause|resume|status` do, against the API server directly.
//!
//! [`params`] and [`rollout`] are pure and unit-tested on the host; [`guest_http`] does the
//! HTTP over wasi:http; [`actions`] runs each action against the API.

mod actions;
mod params;
mod rollout;

use params::Params;
use rollout::Failure;

wit_bindgen::generate!({
    path: "../../../wit/0.1.0",
    world: "medic:step/step-component",
    // The `wasip2` crate (also used by `wstd`) carries wasi:http bindings for the same WASI
    // 0.2.12: point ours at them instead of generating a copy.
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
use medic::step::types::{Capabilities, RetryAfter};

struct K8sRollout;

impl Guest for K8sRollout {
    fn describe() -> Manifest {
        Manifest {
            name: "k8s-rollout".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Kubernetes Deployment rollouts: history, undo (roll back), pause, resume, wait for status".into(),
            params_schema: params::PARAMS_SCHEMA.into(),
            // The API server comes from the `server` param and the token's secret name from
            // `token_secret`: the workflow grants both.
            capabilities: Capabilities {
                hosts: Vec::new(),
                secrets: Vec::new(),
            },
        }
    }

    fn run(invocation: Invocation) -> Result<Outcome, StepError> {
        let result = Params::parse(&invocation.params)
            .and_then(|params| wstd::runtime::block_on(actions::run(&params)));
        match result {
            Ok(actions::Finished::Done(output)) => Ok(Outcome::Done(output.to_string())),
            Ok(actions::Finished::NotYet { ms, reason }) => {
                Ok(Outcome::RetryAfter(RetryAfter { ms, reason }))
            }
            Err(failure) => {
                host::annotate(&format!("k8s-rollout failed: {}", failure.message));
                Err(into_step_error(failure))
            }
        }
    }
}

fn into_step_error(failure: Failure) -> StepError {
    StepError {
        message: failure.message,
        retryable: failure.retryable,
    }
}

export!(K8sRollout);
