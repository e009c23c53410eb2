//! `flags-unleash`: a restore-phase step that enables, disables or reads a
//! feature flag in one environment through the Unleash Admin API, or sets the
//! percentage of its gradual rollout there.
//!
//! It reads the flag first and changes it only when needed, so a retry or a
//! second run is a no-op success; the output and the timeline say exactly
//! what was seen and what changed. The logic lives in [`flag`] and
//! [`strategy`] (pure, unit-tested on the host); `medic_step::http` does the
//! HTTP over wasi:http.

mod flag;
mod strategy;

use std::time::Duration;

use flag::Params;
use medic_step::host::{self, Level};
use medic_step::http::{self, Limits, Method, Reply, Request};
use medic_step::{Failure, Invocation, Outcome, Step};
use serde_json::Value;

/// Per-request limit: Unleash answers in milliseconds; a hung connection
/// should fail the attempt (retryable) well before the step's own timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// [`REQUEST_TIMEOUT`] to connect and for the first byte, and at most 1 MiB of
/// body kept: Unleash answers are small; this bounds guest memory if a wrong
/// URL serves something huge.
const LIMITS: Limits = Limits::body(1024 * 1024).with_timeout(REQUEST_TIMEOUT);

struct FlagsUnleash;

impl Step for FlagsUnleash {
    type Params = flag::Raw;
    const NAME: &'static str = "flags-unleash";
    const SUMMARY: &'static str = "Enable, disable or read an Unleash feature flag in one environment, or set its gradual rollout percentage";
    // Host and secret name both come from params: the workflow grants them.
    const PARAMS_SCHEMA: &'static str = flag::PARAMS_SCHEMA;
    // The timeline already shows the failed attempt with its message.
    const ANNOTATE_FAILURES: bool = false;

    async fn run(raw: flag::Raw, _: &Invocation) -> Result<Outcome, Failure> {
        let params = Params::check(raw)?;
        let token = host::secret(&params.token_secret).ok_or_else(|| {
            Failure::fatal(format!(
                "secret `{}` is not available: list it under the step's `secrets:` and configure it",
                params.token_secret
            ))
        })?;
        let output = match params.action {
            flag::Action::SetRollout => set_rollout(&params, &token).await?,
            _ => apply(&params, &token).await?,
        };
        Ok(Outcome::Done(output))
    }
}

medic_step::export_step!(FlagsUnleash);

/// Reads the flag, changes it if the action asks for another state, and reads
/// it back so `current` is what Unleash says, not what we hoped.
async fn apply(params: &Params, token: &str) -> Result<Value, Failure> {
    let previous = read_state(params, token).await?;
    let current = match params.action.target() {
        Some(target) if target != previous => {
            toggle(params, token, target).await?;
            let now = read_state(params, token).await?;
            if now != target {
                // E.g. a change-request environment: Unleash accepted the call
                // but the flag did not move. Retrying will not help.
                return Err(Failure::fatal(format!(
                    "Unleash accepted the change but {} is still {}",
                    params.describe(),
                    if now { "enabled" } else { "disabled" }
                )));
            }
            now
        }
        _ => previous,
    };
    let line = flag::timeline_line(params, previous, current);
    host::log(Level::Info, &line);
    host::annotate(&line);
    Ok(flag::output(params, previous, current))
}

/// Sets the flexible rollout's percentage (adding the strategy when the environment has
/// none), reads it back, and reports it with the flag's state there.
async fn set_rollout(params: &Params, token: &str) -> Result<Value, Failure> {
    let wanted = params.percentage;
    let list = list_strategies(params, token).await?;
    let (id, previous) = match strategy::pick(params, &list)? {
        Some(found) => {
            let id = found["id"].as_str().unwrap_or_default().to_owned();
            let previous = strategy::percentage(found);
            if previous != Some(wanted) {
                let url = strategy::strategies_url(params, Some(&id));
                let body = strategy::update_body(found, wanted).to_string();
                let reply = call(Method::Put, &url, token, Some(&body)).await?;
                if !(200..300).contains(&reply.status) {
                    let what = "set the rollout of";
                    return Err(flag::refusal(params, what, reply.status, &reply.text()));
                }
            }
            (id, previous)
        }
        None => {
            let url = strategy::strategies_url(params, None);
            let body = strategy::create_body(params, wanted).to_string();
            let reply = call(Method::Post, &url, token, Some(&body)).await?;
            if !(200..300).contains(&reply.status) {
                let what = "add a gradual rollout to";
                return Err(flag::refusal(params, what, reply.status, &reply.text()));
            }
            let created: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
            (created["id"].as_str().unwrap_or_default().to_owned(), None)
        }
    };
    // Read back: the output says what Unleash holds, not what was sent.
    let list = list_strategies(params, token).await?;
    let now = list
        .iter()
        .find(|s| s["id"].as_str() == Some(id.as_str()))
        .and_then(strategy::percentage);
    if now != Some(wanted) {
        return Err(Failure::fatal(format!(
            "Unleash accepted the change but the rollout of {} is {} (wanted {wanted}%)",
            params.describe(),
            now.map_or_else(|| "unset".to_owned(), |p| format!("{p}%"))
        )));
    }
    let enabled = read_state(params, token).await?;
    let line = strategy::timeline_line(params, previous, wanted, enabled);
    host::log(Level::Info, &line);
    host::annotate(&line);
    Ok(strategy::output(params, &id, previous, wanted, enabled))
}

async fn list_strategies(params: &Params, token: &str) -> Result<Vec<Value>, Failure> {
    let url = strategy::strategies_url(params, None);
    let reply = call(Method::Get, &url, token, None).await?;
    if reply.status != 200 {
        return Err(flag::refusal(params, "read", reply.status, &reply.text()));
    }
    strategy::strategies(params, &reply.text())
}

/// One authenticated Admin API request, with a JSON `body` when given (`Some("")`: an empty
/// body with `content-length: 0`).
async fn call(
    method: Method,
    url: &str,
    token: &str,
    body: Option<&str>,
) -> Result<Reply, Failure> {
    let mut headers = vec![("authorization", token), ("accept", "application/json")];
    if body.is_some_and(|b| !b.is_empty()) {
        headers.push(("content-type", "application/json"));
    }
    let request = Request {
        method,
        url,
        headers: &headers,
        body: body.map(str::as_bytes),
    };
    http::send(&request, LIMITS)
        .await
        .map_err(|e| http::send_failure(e, "url", url))
}

async fn read_state(params: &Params, token: &str) -> Result<bool, Failure> {
    let reply = call(Method::Get, &params.feature_url(), token, None).await?;
    if reply.status != 200 {
        return Err(flag::refusal(params, "read", reply.status, &reply.text()));
    }
    flag::enabled_in(params, &reply.text())
}

async fn toggle(params: &Params, token: &str, enabled: bool) -> Result<(), Failure> {
    // An empty body with `content-length: 0`: Unleash refuses a POST without a length.
    let reply = call(Method::Post, &params.toggle_url(enabled), token, Some("")).await?;
    if !(200..300).contains(&reply.status) {
        let what = if enabled { "enable" } else { "disable" };
        return Err(flag::refusal(params, what, reply.status, &reply.text()));
    }
    Ok(())
}
