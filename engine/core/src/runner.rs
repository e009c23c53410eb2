//! The boundary between the executor and whatever runs a step (the wasmtime sandbox).

use crate::Failure;
use async_trait::async_trait;
use medic_model::{Incident, Phase};

pub use crate::instance::AttemptHost;

/// Everything a runner needs for one attempt.
#[derive(Debug, Clone)]
pub struct AttemptRequest {
    /// Resolved component location (a path to a `.wasm` file).
    pub component: String,
    /// What the step is told.
    pub invocation: Invocation,
    /// What it may use.
    pub grants: Grants,
    /// Its limits.
    pub limits: ResolvedLimits,
}

/// Mirrors the WIT `invocation` record.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The run's id.
    pub run_id: String,
    /// The step's id.
    pub step_id: String,
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// The same for every attempt of the step in the run.
    pub idempotency_key: String,
    /// The step's phase.
    pub phase: Phase,
    /// The incident.
    pub incident: Incident,
    /// The rendered params, as JSON text.
    pub params: String,
    /// A drill: the step must not change production.
    pub drill: bool,
}

/// What the workflow grants the step.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Secret names the step may read.
    pub secrets: Vec<String>,
    /// Hosts it may call: `host`, `host:port` or `*.domain`.
    pub allow: Vec<String>,
    /// The step's own TLS settings per host (paths absolute once loaded), over the
    /// engine's `[[tls]]`.
    pub tls: Vec<medic_model::StepTls>,
}

/// Limits with engine defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedLimits {
    /// Linear memory, bytes.
    pub memory_bytes: u64,
    /// Wall time of the attempt, milliseconds.
    pub timeout_ms: u64,
    /// Largest output document, bytes.
    pub output_bytes: u64,
}

impl Default for ResolvedLimits {
    fn default() -> Self {
        ResolvedLimits {
            memory_bytes: 64 << 20,
            timeout_ms: 30_000,
            output_bytes: 1 << 20,
        }
    }
}

/// How an attempt ended, as the runner saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    /// The step returned `done` with this output.
    Done(serde_json::Value),
    /// The step asked to be tried again later.
    RetryAfter {
        /// After this many milliseconds.
        ms: u64,
        /// Why, in words.
        reason: String,
    },
    /// The attempt failed.
    Failed(Failure),
}

/// Runs one attempt of one step. Implementations must never panic or hang past
/// `limits.timeout_ms` because of what a guest does: every guest misbehaviour becomes
/// an [`AttemptResult::Failed`].
#[async_trait]
pub trait StepRunner: Send + Sync {
    /// Runs the attempt `request`, every host call through `host`.
    async fn run(&self, request: AttemptRequest, host: AttemptHost) -> AttemptResult;
}

/// True if `host[:port]` is covered by one of the `allow` entries
/// (`host`, `host:port`, or `*.domain`). Case-insensitive.
pub fn host_allowed(allow: &[String], host: &str, port: Option<u16>) -> bool {
    let host = host.to_ascii_lowercase();
    allow.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        let (pattern, want_port) = match entry.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                (h.to_string(), p.parse::<u16>().ok())
            }
            _ => (entry.clone(), None),
        };
        if want_port.is_some() && want_port != port {
            return false;
        }
        match pattern.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => pattern == host,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn allow_list_matching() {
        let allow = vec![
            "127.0.0.1".to_string(),
            "flags.internal:4242".to_string(),
            "*.example.com".to_string(),
        ];
        assert!(host_allowed(&allow, "127.0.0.1", Some(8080)));
        assert!(host_allowed(&allow, "flags.internal", Some(4242)));
        assert!(!host_allowed(&allow, "flags.internal", Some(80)));
        assert!(host_allowed(&allow, "API.example.com", Some(443)));
        assert!(!host_allowed(&allow, "example.com", Some(443)));
        assert!(!host_allowed(&allow, "evil.com", None));
        assert!(!host_allowed(&allow, "127.0.0.2", None));
    }
}
