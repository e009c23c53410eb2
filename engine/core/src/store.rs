//! The durable store the executor writes through. `medic-store` implements it on sled.

use crate::{Entry, RunStatus};
use medic_model::{Decision, IncidentStatus};
use serde::{Deserialize, Serialize};

/// The index record of a run: enough to list runs and find unfinished ones without
/// reading journals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub id: String,
    pub workflow: String,
    pub incident_title: String,
    pub status: RunStatus,
    pub created_ms: u64,
    pub updated_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be read or written. Never retried silently: the caller must
    /// stop, because the journal no longer describes what happened.
    #[error("store at {path}: {message}")]
    Io { path: String, message: String },
    #[error("store at {path}: corrupt record {key}: {source}")]
    Corrupt {
        path: String,
        key: String,
        source: crate::codec::CodecError,
    },
    #[error("no run with id {0}")]
    NoSuchRun(String),
    /// An append whose sequence number does not follow the journal's last one: two
    /// writers, or a bug. Refused so the journal never forks.
    #[error("run {run}: journal append out of order (expected seq {expected}, got {got})")]
    OutOfOrder {
        run: String,
        expected: u64,
        got: u64,
    },
}

/// Input for a run from outside its driver (the API, the intake processor, the CLI).
///
/// Anyone may post to a run's mailbox; only the run's own driver turns messages into
/// journal entries and then acknowledges them, so a journal always has exactly one writer.
/// Handling is idempotent (a decision for a gate already decided, or an incident status the
/// run already has, is dropped), so a crash between journalling and acknowledging is
/// harmless.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    GateDecision {
        step: String,
        decision: Decision,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    IncidentUpdate {
        status: IncidentStatus,
    },
}

/// Whether an append must be on disk before `append` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Flushed before returning: transitions, state, and every record an outside effect
    /// depends on (HTTP requests before they are sent, responses before the guest sees them).
    Flush,
    /// Written in order but flushed later (by the next `Flush` append, of any run):
    /// records whose loss in a crash is harmless because a replay regenerates them
    /// (logs, clock reads, random bytes) — see docs/durability.md.
    Lazy,
}

/// Durable storage of run journals.
///
/// Contract: appends are applied in call order, each atomically with its meta update.
/// When an append with [`Durability::Flush`] (or `create_run`) returns `Ok`, it and every
/// earlier append are on disk.
pub trait Store: Send + Sync {
    /// Create a run: its meta and its first journal entry, atomically.
    fn create_run(&self, meta: &RunMeta, first: &Entry) -> Result<(), StoreError>;
    /// [`Store::create_run`], but made durable by the next flushing write rather than
    /// before returning: for callers creating many runs and flushing once (the service's
    /// inbox). Such a run must not be driven before that flush. By default it flushes.
    fn create_run_lazy(&self, meta: &RunMeta, first: &Entry) -> Result<(), StoreError> {
        self.create_run(meta, first)
    }
    /// Append one entry (seq must be the next one) and, if given, replace the run's meta.
    fn append(
        &self,
        run: &str,
        entry: &Entry,
        meta: Option<&RunMeta>,
        durability: Durability,
    ) -> Result<(), StoreError>;
    /// The whole journal of a run, in order.
    fn entries(&self, run: &str) -> Result<Vec<Entry>, StoreError>;
    fn run(&self, run: &str) -> Result<Option<RunMeta>, StoreError>;
    /// All runs, oldest first.
    fn runs(&self) -> Result<Vec<RunMeta>, StoreError>;
    /// Posts a message to a run's mailbox, durably (flushed before it returns).
    fn post(&self, run: &str, message: &Message) -> Result<(), StoreError>;
    /// A run's pending messages, oldest first, with the ids [`Store::ack`] takes.
    fn mailbox(&self, run: &str) -> Result<Vec<(u64, Message)>, StoreError>;
    /// Removes a handled message. Lazy: a message seen again after a crash is handled
    /// idempotently.
    fn ack(&self, run: &str, id: u64) -> Result<(), StoreError>;
}
