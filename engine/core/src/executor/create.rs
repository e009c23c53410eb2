//! Creating runs: an id, the run's meta and `run_created`, written now, lazily, or by the
//! caller with other records (the service's inbox batches).

use super::{Executor, ExecutorError};
use crate::journal::Entry;
use crate::run::NewRun;
use crate::store::{Durability, RunMeta};
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;

impl Executor {
    /// Creates a run (durably) and returns its id. Does not start it: call [`Executor::drive`].
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Store`] when `run_created` cannot be written.
    pub fn create_run(&self, new: NewRun) -> Result<String, ExecutorError> {
        let now = self.clock.now_ms();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let digest = Sha256::digest(format!(
            "{now}/{n}/{}/{}/{}",
            std::process::id(),
            new.workflow.name,
            new.incident.id
        ));
        // Time-prefixed so ids sort by creation; the hash part keeps them unique.
        let id = format!("{now:012x}-{}", &hex::encode(digest)[..8]);
        self.create_run_as(id, new)
    }

    /// Creates a run under a caller-chosen id (the service derives it from the incident,
    /// so processing the same alert twice cannot start two runs).
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Store`] when `run_created` cannot be written.
    pub fn create_run_as(&self, id: String, new: NewRun) -> Result<String, ExecutorError> {
        self.create(id, new, Durability::Flush)
    }

    /// [`Executor::create_run_as`] without waiting for the disk: the run becomes durable
    /// with the caller's next flushing write, and must not be driven before it: for
    /// callers creating many runs with one flush (benchmarks; the service writes a batch's
    /// runs with its records, [`Executor::run_records`]).
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Store`] when `run_created` cannot be written.
    pub fn create_run_as_lazy(&self, id: String, new: NewRun) -> Result<String, ExecutorError> {
        self.create(id, new, Durability::Lazy)
    }

    /// The records that create run `id` from `new` (its meta and `run_created` entry),
    /// for a caller that writes them itself, together with other records in one write
    /// (the service's inbox batches: `SledStore::write_creating`). Call
    /// [`Executor::created`] once they are written; drive the run only once durable.
    pub fn run_records(&self, id: &str, new: NewRun) -> (RunMeta, Entry) {
        new.first_entry(id, self.clock.now_ms())
    }

    /// Tells the observer (live views, metrics) of a run whose records from
    /// [`Executor::run_records`] were written.
    pub fn created(&self, meta: &RunMeta, first: &Entry) {
        if let Some(o) = &self.observer {
            o(meta, first);
        }
    }

    fn create(
        &self,
        id: String,
        new: NewRun,
        durability: Durability,
    ) -> Result<String, ExecutorError> {
        let (meta, first) = new.first_entry(&id, self.clock.now_ms());
        match durability {
            Durability::Flush => self.store.create_run(&meta, &first)?,
            Durability::Lazy => self.store.create_run_lazy(&meta, &first)?,
        }
        self.created(&meta, &first);
        Ok(id)
    }
}
