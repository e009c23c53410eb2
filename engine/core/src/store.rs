//! The durable store the executor writes through. `medic-store` implements it on sled.

use crate::{Entry, RunStatus};
use medic_model::{Decision, IncidentStatus};
use serde::{Deserialize, Serialize};

/// The index record of a run: enough to list runs and find unfinished ones without
/// reading journals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// The run's id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The incident's title.
    pub incident_title: String,
    /// Where the run is.
    pub status: RunStatus,
    /// When it was created: wall-clock ms since the Unix epoch.
    pub created_ms: u64,
    /// When its status last changed: wall-clock ms since the Unix epoch.
    pub updated_ms: u64,
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be read or written. Never retried silently: the caller must
    /// stop, because the journal no longer describes what happened.
    #[error("store at {path}: {message}")]
    Io {
        /// The store's directory.
        path: String,
        /// The cause, from the OS or sled.
        message: String,
    },
    /// A record that does not decode.
    #[error("store at {path}: corrupt record {key}: {source}")]
    Corrupt {
        /// The store's directory.
        path: String,
        /// The record's key, printable.
        key: String,
        /// Why it does not decode.
        source: crate::codec::CodecError,
    },
    /// No run has this id.
    #[error("no run with id {0}")]
    NoSuchRun(String),
    /// An append whose sequence number does not follow the journal's last one: two
    /// writers, or a bug. Refused so the journal never forks.
    #[error("run {run}: journal append out of order (expected seq {expected}, got {got})")]
    OutOfOrder {
        /// The run's id.
        run: String,
        /// The sequence number that follows the journal's last.
        expected: u64,
        /// The one appended.
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
    /// A person decided a gate.
    GateDecision {
        /// The gate's step id.
        step: String,
        /// Approved or rejected.
        decision: Decision,
        /// Who decided.
        by: String,
        /// What they said, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// The run's incident resolved or fired again.
    IncidentUpdate {
        /// Its new status.
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

/// A write applied but maybe not yet on disk: resolves once it is (or with the error
/// that kept it from getting there). See [`JournalStore::append_durable`].
pub type PendingFlush =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send>>;

/// Durable storage of run journals.
///
/// Contract: appends are applied in call order. An append's meta update is never
/// visible before the append itself, and a store that writes them apart (the sled store
/// writes a `run_finished` entry, then its meta) brings the meta up to the journal when
/// it is opened, before anything reads it (docs/durability.md §1).
/// When an append with [`Durability::Flush`] (or `create_run`) returns `Ok`, it and every
/// earlier append are on disk.
pub trait JournalStore: Send + Sync {
    /// Create a run: its meta and its first journal entry, atomically.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write or its flush fails.
    fn create_run(&self, meta: &RunMeta, first: &Entry) -> Result<(), StoreError>;
    /// [`JournalStore::create_run`], but made durable by the next flushing write rather than
    /// before returning: for callers creating many runs and flushing once (benchmarks; the
    /// service's inbox writes its runs with its other records, `SledStore::write_creating`).
    /// Such a run must not be driven before that flush. By default it flushes.
    fn create_run_lazy(&self, meta: &RunMeta, first: &Entry) -> Result<(), StoreError> {
        self.create_run(meta, first)
    }
    /// Append one entry (seq must be the next one) and, if given, replace the run's meta.
    ///
    /// # Errors
    ///
    /// [`StoreError::OutOfOrder`] when `entry.seq` does not follow the journal's last;
    /// [`StoreError::Io`] when the write (or, for [`Durability::Flush`], its flush) fails.
    fn append(
        &self,
        run: &str,
        entry: &Entry,
        meta: Option<&RunMeta>,
        durability: Durability,
    ) -> Result<(), StoreError>;
    /// [`JournalStore::append`] with [`Durability::Flush`] for async callers (run
    /// drivers): the append is checked and applied, in call order, before this returns;
    /// the returned future resolves once it is on disk. A store that can wait for the
    /// disk without blocking the caller's thread does so (the sled store: one thread
    /// flushes for every waiting driver at once); by default this flushes before
    /// returning and the future is ready.
    ///
    /// # Errors
    ///
    /// As [`JournalStore::append`]: here for the write, from the future for its flush.
    fn append_durable(
        &self,
        run: &str,
        entry: &Entry,
        meta: Option<&RunMeta>,
    ) -> Result<PendingFlush, StoreError> {
        self.append(run, entry, meta, Durability::Flush)?;
        Ok(Box::pin(std::future::ready(Ok(()))))
    }
    /// The whole journal of a run, in order.
    ///
    /// # Errors
    ///
    /// [`StoreError::NoSuchRun`], or a read or decode failure.
    fn entries(&self, run: &str) -> Result<Vec<Entry>, StoreError>;
    /// A run's index record, or `None` when there is no such run.
    ///
    /// # Errors
    ///
    /// A read or decode failure.
    fn run(&self, run: &str) -> Result<Option<RunMeta>, StoreError>;
    /// All runs, oldest first.
    ///
    /// # Errors
    ///
    /// A read or decode failure.
    fn runs(&self) -> Result<Vec<RunMeta>, StoreError>;
    /// Posts a message to a run's mailbox, durably (flushed before it returns).
    ///
    /// # Errors
    ///
    /// A write or flush failure.
    fn post(&self, run: &str, message: &Message) -> Result<(), StoreError>;
    /// A run's pending messages, oldest first, with the ids [`JournalStore::ack`] takes.
    ///
    /// # Errors
    ///
    /// A read or decode failure.
    fn mailbox(&self, run: &str) -> Result<Vec<(u64, Message)>, StoreError>;
    /// Removes a handled message. Lazy: a message seen again after a crash is handled
    /// idempotently.
    ///
    /// # Errors
    ///
    /// A write failure.
    fn ack(&self, run: &str, id: u64) -> Result<(), StoreError>;
}
