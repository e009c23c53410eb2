//! The append side of a run's journal: dense sequence numbers, the meta rewritten when the
//! status changes, and the entries handed back to the driver to fold.

use super::{Entry, Event, RunStatus};
use crate::Clock;
use crate::run::NewRun;
use crate::store::{Durability, JournalStore, RunMeta, StoreError};
use std::sync::{Arc, Mutex};

/// Called after each entry is appended (live progress output, metrics), with the run's
/// meta as of that entry: its id, workflow and incident title without a store read (one
/// per attempt was a twentieth of a run driver's time under load, issue 16).
pub type Observer = Arc<dyn Fn(&RunMeta, &Entry) + Send + Sync>;

/// The append side of one run's journal. One per run being driven; appends are
/// serialised so sequence numbers stay dense.
pub struct RunJournal {
    store: Arc<dyn JournalStore>,
    clock: Arc<dyn Clock>,
    observer: Option<Observer>,
    inner: Mutex<JournalInner>,
}

struct JournalInner {
    next_seq: u64,
    /// Shared with observers, so telling them of an append copies nothing.
    meta: Arc<RunMeta>,
    /// Appended but not yet folded into the driver's `RunState`.
    unapplied: Vec<Entry>,
}

impl RunJournal {
    /// The append side of an existing run's journal; `next_seq` follows its last entry,
    /// `observer` is told of every append.
    pub fn new(
        store: Arc<dyn JournalStore>,
        clock: Arc<dyn Clock>,
        observer: Option<Observer>,
        meta: RunMeta,
        next_seq: u64,
    ) -> Self {
        RunJournal {
            store,
            clock,
            observer,
            inner: Mutex::new(JournalInner {
                next_seq,
                meta: Arc::new(meta),
                unapplied: Vec::new(),
            }),
        }
    }

    /// Creates run `run_id` from `new` (its `run_created` entry, durably) and returns the
    /// append side of its journal: for attempting a step outside the executor (benchmarks,
    /// tests that drive the sandbox directly) with a journal that is a run's journal.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot write the run (`run_id` taken, I/O).
    pub fn create(
        store: Arc<dyn JournalStore>,
        clock: Arc<dyn Clock>,
        run_id: &str,
        new: NewRun,
    ) -> Result<Arc<RunJournal>, StoreError> {
        let (meta, first) = new.first_entry(run_id, clock.now_ms());
        store.create_run(&meta, &first)?;
        Ok(Arc::new(RunJournal::new(store, clock, None, meta, 1)))
    }

    /// The id of the run this journal belongs to.
    pub fn run_id(&self) -> String {
        self.inner.lock().expect("journal lock").meta.id.clone()
    }

    /// Append an event; returns once it is on disk.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write or its flush fails: the run must stop.
    pub fn append(&self, event: Event) -> Result<Entry, StoreError> {
        self.append_with(event, Durability::Flush)
    }

    /// [`RunJournal::append`] for the run's driver: the entry is applied in order at once,
    /// and the wait for the disk does not block the thread ([`JournalStore::append_durable`]).
    /// Returns once it is on disk.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write or its flush fails: the run must stop.
    pub async fn append_async(&self, event: Event) -> Result<Entry, StoreError> {
        let (meta, entry, pending) = self.write(event, |store, run, entry, meta| {
            store.append_durable(run, entry, meta)
        })?;
        pending.await?;
        if let Some(observer) = &self.observer {
            observer(&meta, &entry);
        }
        Ok(entry)
    }

    /// Append an event with the given durability (see [`Durability`]); the entry gets the
    /// next sequence number and the clock's time.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write (or, for [`Durability::Flush`], its flush) fails.
    pub fn append_with(&self, event: Event, durability: Durability) -> Result<Entry, StoreError> {
        let (meta, entry, ()) = self.write(event, |store, run, entry, meta| {
            store.append(run, entry, meta, durability)
        })?;
        if let Some(observer) = &self.observer {
            observer(&meta, &entry);
        }
        Ok(entry)
    }

    /// Numbers and stamps `event`, and writes it with `write` under the journal's lock
    /// (so entries reach the store in sequence order); returns the run's meta after the
    /// entry, the entry and what `write` returned.
    fn write<T>(
        &self,
        event: Event,
        write: impl FnOnce(&dyn JournalStore, &str, &Entry, Option<&RunMeta>) -> Result<T, StoreError>,
    ) -> Result<(Arc<RunMeta>, Entry, T), StoreError> {
        let mut inner = self.inner.lock().expect("journal lock");
        let at_ms = self.clock.now_ms();
        let entry = Entry {
            seq: inner.next_seq,
            at_ms,
            event,
        };
        // The meta is rewritten only when the run's status changes, which keeps the
        // common append a single small write.
        let meta = match &entry.event {
            Event::RunFinished { status, .. } => {
                let mut m = RunMeta::clone(&inner.meta);
                m.status = *status;
                m.updated_ms = at_ms;
                Some(m)
            }
            _ => None,
        };
        let written = write(self.store.as_ref(), &inner.meta.id, &entry, meta.as_ref())?;
        inner.next_seq += 1;
        inner.unapplied.push(entry.clone());
        if let Some(m) = meta {
            inner.meta = Arc::new(m);
        }
        Ok((inner.meta.clone(), entry, written))
    }

    /// Entries appended since the last call, in order: the driver folds them into its
    /// state, whoever appended them (the executor or a step's host calls).
    pub(crate) fn take_unapplied(&self) -> Vec<Entry> {
        std::mem::take(&mut self.inner.lock().expect("journal lock").unapplied)
    }

    pub(crate) fn status(&self) -> RunStatus {
        self.inner.lock().expect("journal lock").meta.status
    }
}
