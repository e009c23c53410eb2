//! One step attempt: a fresh instance under the step's limits, and every way it can end
//! (done, retry-after, step error, trap, memory limit, timeout, certificate problem) turned
//! into an [`AttemptResult`] with a reason.

use crate::bindings::newest::medic::step::types as wit;
use crate::{MAX_MEMORY_BYTES, Sandbox};
use async_trait::async_trait;
use medic_core::{
    AttemptHost, AttemptRequest, AttemptResult, Failure, FailureKind, Invocation, StepRunner,
};
use medic_model::{IncidentStatus, Phase};
use std::path::Path;
use std::time::{Duration, Instant};

impl Sandbox {
    /// The engine's TLS settings, with the step's own `tls` entries over them when it has
    /// any (read per attempt: they are rare, and a certificate renewed on disk is picked up
    /// by the next attempt).
    fn step_tls(
        &self,
        request: &AttemptRequest,
        host: &AttemptHost,
    ) -> Result<crate::TlsSettings, crate::TlsError> {
        if request.grants.tls.is_empty() {
            return Ok(self.tls.clone());
        }
        let step = &request.invocation.step_id;
        let mut over = Vec::new();
        for (i, t) in request.grants.tls.iter().enumerate() {
            let key = t
                .client_key_secret
                .as_deref()
                .and_then(|n| host.host_secret(n));
            over.push(crate::TlsDestination::from_step(
                t,
                format!("step {step} tls[{i}]"),
                key,
            )?);
        }
        self.tls.with_overrides(over)
    }
}

#[async_trait]
impl StepRunner for Sandbox {
    async fn run(&self, request: AttemptRequest, host: AttemptHost) -> AttemptResult {
        let limits = request.limits;
        if limits.memory_bytes > MAX_MEMORY_BYTES {
            return failed(
                FailureKind::Component,
                false,
                format!(
                    "memory limit {} bytes is over the engine maximum {MAX_MEMORY_BYTES}",
                    limits.memory_bytes
                ),
            );
        }
        let loaded = match self.load(Path::new(&request.component)) {
            Ok(l) => l,
            Err(e) => return failed(FailureKind::Component, false, e.to_string()),
        };
        let timeout = Duration::from_millis(limits.timeout_ms);
        // Deterministic per attempt, so a replay sees the same insecure seed.
        let seed = u128::from_str_radix(&request.invocation.idempotency_key, 16).unwrap_or(0)
            ^ u128::from(request.invocation.attempt);
        let tls = match self.step_tls(&request, &host) {
            Ok(t) => t,
            Err(e) => return failed(FailureKind::StepError, false, e.to_string()),
        };
        let mut store = self.store(
            Some(host),
            tls,
            request.grants.allow.clone(),
            limits.memory_bytes,
            timeout,
            seed,
        );
        let result = tokio::time::timeout(
            timeout,
            loaded.pre.run(&mut store, |store| {
                let left = store
                    .data()
                    .deadline
                    .saturating_duration_since(Instant::now());
                to_wit(&request.invocation, left.as_millis() as u64)
            }),
        )
        .await;
        let timed_out = || {
            failed(
                FailureKind::Timeout,
                true,
                format!(
                    "timed out after {} (the step's timeout)",
                    medic_model::units::format_duration_ms(limits.timeout_ms)
                ),
            )
        };
        // A certificate problem fails the attempt with the host and the reason, whatever
        // the step made of the vague TLS error it was given.
        if let Some(problem) = store.data().tls_problem() {
            return failed(FailureKind::StepError, false, problem);
        }
        match result {
            Err(_) => timed_out(),
            Ok(Err(trap)) => {
                if let Some(bytes) = store.data().limiter.hit {
                    return failed(
                        FailureKind::MemoryLimit,
                        false,
                        format!(
                            "memory limit: the step tried to grow its memory to {bytes} bytes; limit is {} bytes",
                            limits.memory_bytes
                        ),
                    );
                }
                if matches!(
                    trap.downcast_ref::<wasmtime::Trap>(),
                    Some(wasmtime::Trap::Interrupt)
                ) {
                    return timed_out();
                }
                failed(
                    FailureKind::Trap,
                    false,
                    format!("trap: {}", trap_message(&trap)),
                )
            }
            Ok(Ok(Err(e))) => failed(FailureKind::StepError, e.retryable, e.message),
            Ok(Ok(Ok(wit::Outcome::RetryAfter(r)))) => AttemptResult::RetryAfter {
                ms: r.ms,
                reason: r.reason,
            },
            Ok(Ok(Ok(wit::Outcome::Done(json)))) => {
                if json.len() as u64 > limits.output_bytes {
                    return failed(
                        FailureKind::OutputTooLarge,
                        false,
                        format!(
                            "output too large: {} bytes; limit is {} bytes (limits.output)",
                            json.len(),
                            limits.output_bytes
                        ),
                    );
                }
                match serde_json::from_str(&json) {
                    Ok(v) => AttemptResult::Done(v),
                    Err(e) => failed(
                        FailureKind::InvalidOutput,
                        false,
                        format!("output is not JSON: {e}"),
                    ),
                }
            }
        }
    }
}

/// The first line of a trap's chain plus its root cause, without a backtrace.
fn trap_message(e: &wasmtime::Error) -> String {
    let top = e.to_string();
    let root = e.root_cause().to_string();
    if root == top {
        top
    } else {
        format!("{top}: {root}")
    }
}

fn failed(kind: FailureKind, retryable: bool, message: String) -> AttemptResult {
    AttemptResult::Failed(Failure::new(kind, retryable, message))
}

pub(crate) fn to_wit(i: &Invocation, deadline_ms: u64) -> wit::Invocation {
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| wit::Pair {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    };
    wit::Invocation {
        run_id: i.run_id.clone(),
        step_id: i.step_id.clone(),
        attempt: i.attempt,
        idempotency_key: i.idempotency_key.clone(),
        phase: match i.phase {
            Phase::Detect => wit::Phase::Detect,
            Phase::Communicate => wit::Phase::Communicate,
            Phase::Restore => wit::Phase::Restore,
            Phase::Verify => wit::Phase::Verify,
            Phase::FollowUp => wit::Phase::FollowUp,
        },
        incident: wit::Incident {
            id: i.incident.id.clone(),
            title: i.incident.title.clone(),
            severity: i.incident.severity.clone(),
            status: match i.incident.status {
                IncidentStatus::Firing => wit::IncidentStatus::Firing,
                IncidentStatus::Resolved => wit::IncidentStatus::Resolved,
            },
            labels: pairs(&i.incident.labels),
            annotations: pairs(&i.incident.annotations),
            started_at: i.incident.started_at.clone(),
            source: i.incident.source.clone(),
        },
        params: i.params.clone(),
        drill: i.drill,
        deadline_ms,
    }
}
