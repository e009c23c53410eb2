//! Creating runs: an id, the run's meta and `run_created`, written now, lazily, or by the
//! caller with other records (the service's inbox batches), whose first driver can then
//! start from those records instead of reading them back.

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

    /// [`Executor::drive_or_park`] for a run whose records from [`Executor::run_records`]
    /// the caller wrote and made durable, starting from them: no read of the meta and
    /// journal it holds (in the loopback bench that read was 7–8 % of medic's CPU per
    /// one-step run, issue 16).
    ///
    /// Only for the run's first driver, before anything else appended to its journal:
    /// the caller makes sure no other driver can start between the write and this call
    /// (`medic serve` claims the run before writing it). Were one to have appended, this
    /// driver's first append fails with [`StoreError::OutOfOrder`](crate::StoreError)
    /// and writes nothing.
    ///
    /// # Errors
    ///
    /// As [`Executor::drive`]; [`ExecutorError::State`] when `first` is not `run_created`.
    pub async fn drive_created_or_park(
        &self,
        meta: RunMeta,
        first: Entry,
    ) -> Result<crate::Driven, ExecutorError> {
        let state = crate::state::RunState::fold(&meta.id, std::slice::from_ref(&first))?;
        // The fold shares the workflow with the other runs of it (`shared.rs`); `first`'s
        // own copy would otherwise live as long as this driver.
        drop(first);
        let journal = self.journal(meta, state.next_seq);
        self.drive_inner((state, journal), true).await
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
