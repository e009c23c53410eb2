//! "medic crashes at journal write N": a store that refuses the Nth journal write (and
//! every write after it, as a dead process would), so the engine stops exactly as it does
//! when its store fails, and the drill then resumes the run with a fresh engine.

use medic_core::{Durability, Entry, JournalStore, Message, RunMeta, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Wraps the drill's store; counts journal writes (run creation and appends).
pub struct CrashStore {
    inner: Arc<dyn JournalStore>,
    at: Option<u64>,
    writes: AtomicU64,
}

impl CrashStore {
    /// Refuses journal write `at` (1-based) and all later ones; `None`: never.
    pub fn new(inner: Arc<dyn JournalStore>, at: Option<u64>) -> Self {
        CrashStore {
            inner,
            at,
            writes: AtomicU64::new(0),
        }
    }

    /// The write the crash happened at, once it has.
    pub fn crashed(&self) -> Option<u64> {
        self.at
            .filter(|at| self.writes.load(Ordering::SeqCst) >= *at)
    }

    fn write(&self) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        match self.at {
            Some(at) if n >= at => Err(StoreError::Io {
                path: "(drill)".into(),
                message: format!("drill: medic crashed at journal write {at}"),
            }),
            _ => Ok(()),
        }
    }

    fn dead(&self) -> Result<(), StoreError> {
        match self.crashed() {
            Some(at) => Err(StoreError::Io {
                path: "(drill)".into(),
                message: format!("drill: medic crashed at journal write {at}"),
            }),
            None => Ok(()),
        }
    }
}

impl JournalStore for CrashStore {
    fn create_run(&self, meta: &RunMeta, first: &Entry) -> Result<(), StoreError> {
        self.write()?;
        self.inner.create_run(meta, first)
    }

    fn append(
        &self,
        run: &str,
        entry: &Entry,
        meta: Option<&RunMeta>,
        durability: Durability,
    ) -> Result<(), StoreError> {
        self.write()?;
        self.inner.append(run, entry, meta, durability)
    }

    fn entries(&self, run: &str) -> Result<Vec<Entry>, StoreError> {
        self.inner.entries(run)
    }

    fn run(&self, run: &str) -> Result<Option<RunMeta>, StoreError> {
        self.inner.run(run)
    }

    fn runs(&self) -> Result<Vec<RunMeta>, StoreError> {
        self.inner.runs()
    }

    fn post(&self, run: &str, message: &Message) -> Result<(), StoreError> {
        self.dead()?;
        self.inner.post(run, message)
    }

    fn mailbox(&self, run: &str) -> Result<Vec<(u64, Message)>, StoreError> {
        self.dead()?;
        self.inner.mailbox(run)
    }

    fn ack(&self, run: &str, id: u64) -> Result<(), StoreError> {
        self.dead()?;
        self.inner.ack(run, id)
    }
}
