//! Applying writes and making them durable: the writer lock and sequence checks, one
//! write applied atomically ([`Write`]), a finishing append as its entry and then its
//! meta, and the wait for the disk, blocking ([`SledStore::durable`], group commit) or
//! async ([`SledStore::durable_later`], the flusher thread).

use crate::SledStore;
use crate::flusher::{self, Flusher};
use crate::keys::{self, entry_key, entry_prefix, meta_key};
use medic_core::codec::{encode_entry, encode_meta};
use medic_core::{Entry, PendingFlush, RunMeta, RunStatus, StoreError};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, PoisonError};

impl SledStore {
    pub(crate) fn writer(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        // The map is only updated after a batch was applied, so it stays truthful even
        // if a holder panicked.
        self.next_seq.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sequence number the run's next entry must have; `None` if the run has no
    /// journal. Served from the cache when possible: a reverse prefix scan per append
    /// is the slow part of a write.
    pub(crate) fn expected_seq(
        &self,
        cache: &HashMap<String, u64>,
        run: &str,
    ) -> Result<Option<u64>, StoreError> {
        if let Some(&next) = cache.get(run) {
            return Ok(Some(next));
        }
        let prefix = entry_prefix(run);
        // One statement: the handle is dropped before `apply` asks for one again.
        let last = self.db()?.0.scan_prefix(&prefix).next_back();
        match last {
            None => Ok(None),
            Some(Err(e)) => Err(self.io(e)),
            Some(Ok((k, _))) => match keys::seq_of(&k[prefix.len()..]) {
                Some(last) => Ok(Some(last + 1)),
                None => Err(self.io(format!("malformed journal key {}", keys::display(&k)))),
            },
        }
    }

    /// Whether `run` has a journal: its first entry (seq 0, written with its meta and
    /// removed only with the whole run) is there. A point lookup, for creating runs.
    pub(crate) fn has_journal(
        &self,
        cache: &HashMap<String, u64>,
        run: &str,
    ) -> Result<bool, StoreError> {
        if cache.contains_key(run) {
            return Ok(true);
        }
        let (db, _) = self.db()?;
        db.contains_key(entry_key(run, 0)).map_err(|e| self.io(e))
    }

    /// Applies `write` (a journal entry; `meta` is the one that entry implies, if any)
    /// and updates the cache; returns the write's group-commit ticket. Called with the
    /// writer lock held.
    pub(crate) fn apply(
        &self,
        cache: &mut HashMap<String, u64>,
        run: &str,
        seq: u64,
        meta: Option<&RunMeta>,
        write: Write,
    ) -> Result<Written, StoreError> {
        let ticket = self.apply_write(write)?;
        // A finished run gets no more appends: drop it so the cache holds live runs only.
        if meta.is_some_and(|m| m.status != RunStatus::Running) {
            cache.remove(run);
        } else {
            cache.insert(run.to_string(), seq + 1);
        }
        Ok(ticket)
    }

    /// Writes a new run's meta and first entry in one batch; returns the ticket to flush.
    pub(crate) fn create(&self, meta: &RunMeta, first: &Entry) -> Result<Written, StoreError> {
        self.apply_creating(&[(meta.clone(), first.clone())], Vec::new())
    }

    /// Applies a batch to the open database; returns its ticket for [`Self::durable`].
    pub(crate) fn apply_batch(&self, batch: sled::Batch) -> Result<Written, StoreError> {
        self.apply_write(Write::Batch(batch))
    }

    /// Applies one write to the open database; returns its ticket for [`Self::durable`].
    pub(crate) fn apply_write(&self, write: Write) -> Result<Written, StoreError> {
        let (db, epoch) = self.db()?;
        match write {
            Write::Put(k, v) => db.insert(k, v).map(drop),
            Write::Remove(k) => db.remove(k).map(drop),
            Write::Batch(batch) => db.apply_batch(batch),
        }
        .map_err(|e| self.io(e))?;
        Ok(Written {
            ticket: self.commits.wrote(),
            epoch,
        })
    }

    /// Returns once `written` (and every write before it) is on disk.
    pub(crate) fn durable(&self, written: Written) -> Result<(), StoreError> {
        if !self.commits.covered(written.ticket) {
            waiting_on_disk(|| {
                self.commits
                    .flush_through(written.ticket, || flusher::flush_db(&self.db))
            })
            .map_err(|e| self.io(e))?;
        }
        self.same_epoch(written.epoch)
    }

    /// [`Self::durable`] as a future that blocks no thread: the flusher flushes.
    pub(crate) fn durable_later(&self, written: Written) -> Result<PendingFlush, StoreError> {
        if self.commits.covered(written.ticket) {
            self.same_epoch(written.epoch)?;
            return Ok(Box::pin(std::future::ready(Ok(()))));
        }
        // Started once, by the first waiter; racing first waiters wait for that one.
        let started = self.flusher.get_or_init(|| {
            Flusher::start(self.commits.clone(), self.db.clone()).map_err(|e| e.to_string())
        });
        let flusher = started
            .as_ref()
            .map_err(|e| self.io(format!("cannot start the flusher thread: {e}")))?;
        let (commits, thread, db) = (
            self.commits.clone(),
            flusher.thread().clone(),
            self.db.clone(),
        );
        // The path is named only in an error: no string built per append.
        let (path, Written { ticket, epoch }) = (self.path.clone(), written);
        Ok(Box::pin(async move {
            let io = |message: String| StoreError::Io {
                path: path.display().to_string(),
                message,
            };
            commits.wait(ticket, &thread).await.map_err(io)?;
            if reopened_since(&db, epoch) {
                return Err(io(REOPENED.into()));
            }
            Ok(())
        }))
    }

    /// Checks and applies one journal append and, for an append that changes the run's
    /// status (`run_finished`), the meta it implies; returns the ticket to make durable.
    ///
    /// The entry and its meta are two inserts, in that order, not one sled batch: a batch
    /// costs two log writes of its own (see [`Write`]), once per finished run. sled
    /// recovers a prefix of its log after a crash, so the meta never says finished
    /// without the entry; the other gap, the entry without its meta, is closed when the
    /// store is next opened ([`crate::repair`]) or, when the meta's insert failed here, by
    /// the next journal write. Readers may see the entry a moment before the meta.
    pub(crate) fn applied(
        &self,
        run: &str,
        entry: &Entry,
        meta: Option<&RunMeta>,
    ) -> Result<Written, StoreError> {
        self.failpoint.before_write();
        let mut cache = self.writer();
        if self.metas_behind.load(Ordering::Relaxed) {
            self.repair_metas()?;
        }
        let Some(expected) = self.expected_seq(&cache, run)? else {
            return Err(StoreError::NoSuchRun(run.to_string()));
        };
        if entry.seq != expected {
            return Err(StoreError::OutOfOrder {
                run: run.to_string(),
                expected,
                got: entry.seq,
            });
        }
        let write = Write::Put(entry_key(run, entry.seq), encode_entry(entry));
        // With a meta, `apply` drops the run from the cache now, before the meta's insert
        // can fail: a later append then reads the journal's true end (this entry) and
        // cannot overwrite it.
        let written = self.apply(&mut cache, run, entry.seq, meta, write)?;
        let Some(m) = meta else {
            return Ok(written);
        };
        // The meta counts as a write of its own for the failpoint, which then crashes
        // with the entry on disk and the meta not: the gap `repair` closes.
        self.failpoint
            .before_write_flushed(|| drop(self.db().map(|(db, _)| db.flush())));
        self.apply_write(Write::Put(meta_key(run), encode_meta(m)))
            .inspect_err(|_| self.metas_behind.store(true, Ordering::Relaxed))
    }

    /// Brings every finished run's meta up to its journal ([`crate::repair`]) and, once
    /// that worked, forgets that any was behind. Called with the writer lock held.
    fn repair_metas(&self) -> Result<(), StoreError> {
        let (db, _) = self.db()?;
        // It may flush: tell tokio first, as for any wait on the disk.
        waiting_on_disk(|| crate::repair::finished_metas(&db)).map_err(|e| self.io(e))?;
        self.metas_behind.store(false, Ordering::Relaxed);
        Ok(())
    }
}

/// One write, applied atomically. A single key is written alone, not as a sled batch:
/// sled seals and writes its current log buffer twice for every batch (to mark where the
/// batch begins, `pin_log`), a `pwrite` and a `sync_file_range` each, so a batch of one
/// cost two disk writes where an insert costs none until the next flush. In the loopback
/// bench's profile that was about nine disk writes per one-step run.
pub(crate) enum Write {
    /// Set one key.
    Put(Vec<u8>, Vec<u8>),
    /// Remove one key (no error when it is missing).
    Remove(Vec<u8>),
    /// Several keys together.
    Batch(sled::Batch),
}

/// Why an operation fails while the database is closed (after a failed reopen).
pub(crate) const CLOSED: &str = "closed after a failure; reopening (see /healthz)";
/// Why a write fails that was applied to a database since reopened.
pub(crate) const REOPENED: &str = "reopened before this write was durable; not written";

/// Runs `f`, which waits for the disk (an fsync, or the flush lock while another writer's
/// fsync runs). Called on a worker of tokio's multi-thread runtime (a step's host call
/// that must be on disk before it is answered, a gate decision its driver journals), it
/// tells tokio first, so the worker's other tasks (intake
/// requests, other runs) move to another thread instead of queueing behind the fsync;
/// on a blocking thread, outside tokio or on a current-thread runtime it just runs `f`.
fn waiting_on_disk<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A write applied, to make durable: its group-commit ticket and the epoch it was
/// applied in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    pub(crate) ticket: u64,
    pub(crate) epoch: u64,
}

/// Whether the database in `db` was reopened since `epoch`: a write applied in `epoch`
/// was then applied to a database that is gone, and no later flush covers it.
pub(crate) fn reopened_since(db: &crate::flusher::DbSlot, epoch: u64) -> bool {
    db.read().unwrap_or_else(PoisonError::into_inner).1 != epoch
}
