//! Compaction by rewrite. sled 0.34 has no compaction call: space freed by removals is
//! reused for later writes, but the files do not shrink (measured in
//! `medic-server`'s `retention` bench). Copying every record into a fresh database and
//! swapping the directories (`swap.rs`) gives the space back.
//!
//! Two ways in, one copy routine ([`Fresh`]):
//! - [`SledStore::compact`]: offline, the store closed (`medic compact`).
//! - [`SledStore::compact_online`]: while the store serves. The copy is made while
//!   serving, noting the keys written meanwhile (`dirty.rs`); then every operation waits
//!   while those are copied again and the copy is swapped in: a pause that grows with
//!   what was written during the copy and with the old database sled closes, so call it
//!   when the size on disk is far above the live data, and before it gets huge.

use crate::SledStore;
use crate::dirty::Dirty;
use crate::swap::{self, io};
use medic_core::StoreError;
use sled::IVec;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

/// Sizes on disk before and after a compaction, bytes, and how long operations waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// The store's size before.
    pub before: u64,
    /// Its size after the rewrite.
    pub after: u64,
    /// Records copied.
    pub records: u64,
    /// Online: records written while the copy was made, copied again in the pause.
    pub recopied: u64,
    /// How long every store operation waited: online, from taking the locks to the new
    /// database open; offline, the whole rewrite (nothing could use the store).
    pub pause: Duration,
}

/// How long [`SledStore::compact_online`] waits for operations already under way to
/// finish before it gives up (and leaves the store as it was).
pub const QUIESCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Records copied per sled batch.
const COPY_BATCH: usize = 1024;

/// The fresh database a compaction copies into, at `<path>.compacting`.
struct Fresh {
    db: sled::Db,
    path: PathBuf,
}

impl Fresh {
    /// Opens an empty database beside the store at `store` (a leftover from an earlier
    /// attempt is removed first).
    fn create(store: &Path) -> Result<Fresh, StoreError> {
        let path = swap::compacting(store);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| io(&path, e))?;
        }
        let db = crate::open_sled(&path)?;
        Ok(Fresh { db, path })
    }

    /// Raises the id counter to at least `next`, so ids handed out by the copy keep
    /// growing ([`SledStore::next_id`]). sled only counts up, one id at a time.
    fn ids_from(&self, next: u64) -> Result<(), StoreError> {
        while self.db.generate_id().map_err(|e| io(&self.path, e))? < next {}
        Ok(())
    }

    /// Copies every record of `src` and raises the id counter past `src`'s; returns the
    /// records copied.
    fn copy_from(&self, src: &sled::Db, src_path: &Path) -> Result<u64, StoreError> {
        let n = self.write_batched(
            src.iter()
                .map(|kv| kv.map(|(k, v)| (k, Some(v))).map_err(|e| io(src_path, e))),
        )?;
        self.ids_from(src.generate_id().map_err(|e| io(src_path, e))?)?;
        Ok(n)
    }

    /// Copies `keys` of `src` again, as they are now (removed ones removed), and raises
    /// the id counter past `src`'s; returns how many.
    fn recopy(
        &self,
        src: &sled::Db,
        src_path: &Path,
        keys: HashSet<IVec>,
    ) -> Result<u64, StoreError> {
        let n = self.write_batched(keys.into_iter().map(|k| {
            let v = src.get(&k).map_err(|e| io(src_path, e))?;
            Ok((k, v))
        }))?;
        self.ids_from(src.generate_id().map_err(|e| io(src_path, e))?)?;
        Ok(n)
    }

    /// Writes `records` into the copy (`None`: remove the key) in batches of
    /// `COPY_BATCH`, so a large store is not one batch in memory; returns how many.
    fn write_batched(
        &self,
        records: impl Iterator<Item = Result<(IVec, Option<IVec>), StoreError>>,
    ) -> Result<u64, StoreError> {
        let mut batch = sled::Batch::default();
        let mut n = 0u64;
        for record in records {
            match record? {
                (k, Some(v)) => batch.insert(k, v),
                (k, None) => batch.remove(k),
            }
            n += 1;
            if n.is_multiple_of(COPY_BATCH as u64) {
                self.db
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(|e| io(&self.path, e))?;
            }
        }
        self.db.apply_batch(batch).map_err(|e| io(&self.path, e))?;
        Ok(n)
    }

    /// Flushes and closes the copy, then marks it complete: from here an interruption
    /// keeps it (`swap.rs`).
    fn finish(self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| io(&self.path, e))?;
        // sled writes snapshot files by its configured path: closed before any rename.
        drop(self.db);
        swap::mark_complete(&self.path)
    }

    /// Gives up: the copy is removed, the store is as it was.
    fn abandon(self) {
        drop(self.db);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl SledStore {
    /// Rewrites the store at `path` into a fresh database and puts it in its place; the
    /// store must not be open (stop `medic serve` first, or use
    /// [`SledStore::compact_online`]). Every record and the id counter are copied and
    /// flushed before the old directory is touched; an interruption at any point leaves
    /// directories [`SledStore::open`] recovers (docs/durability.md).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] naming the path when a store cannot be opened (in use by
    /// another process), read, written or renamed.
    pub fn compact(path: &Path) -> Result<Compacted, StoreError> {
        let started = Instant::now();
        let (before, records) = {
            let src = SledStore::open(path)?;
            let size = src.size_on_disk()?;
            let fresh = Fresh::create(path)?;
            let db = src.db()?.0;
            match fresh.copy_from(&db, path) {
                Ok(n) => {
                    fresh.finish()?;
                    (size, n)
                }
                Err(e) => {
                    fresh.abandon();
                    return Err(e);
                }
            }
        };
        swap::swap_in(path)?;
        swap::tidy(path)?;
        let after = SledStore::open(path)?.size_on_disk()?;
        Ok(Compacted {
            before,
            after,
            records,
            recopied: 0,
            pause: started.elapsed(),
        })
    }

    /// Rewrites the open store into a fresh database and swaps it in while this handle
    /// keeps serving. The copy is made while serving; then every operation (reads too)
    /// waits while the records written during the copy are copied again and the copy is
    /// swapped in, and carries on against the new database.
    ///
    /// Nothing acknowledged is lost or written twice. The keys written are noted from a
    /// moment no write is under way (so none is missed), and in the pause, holding the
    /// writer lock and the database's write guard once no operation holds the old
    /// database, each noted key is copied again as it is then (or removed): so the copy
    /// holds exactly what the old database holds. A write is either applied before the
    /// pause (and in the copy) or after the swap (into the new database). The epoch is
    /// not bumped: a writer whose write was applied before the pause but not yet flushed
    /// finds it copied and flushed into the new database, so its own flush (of the new
    /// database) returns with its write durable, as the epoch check asks; the journal
    /// cache stays true because the records are the same.
    ///
    /// On an error before the swap the copy is removed and the store is as it was. On
    /// an error during the swap the leftovers are recovered as [`SledStore::open`] does
    /// and whichever store that keeps is reopened; if even that fails, the store is
    /// closed like after a failed [`SledStore::reopen`] (which recovers and retries).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] naming the path when the copy cannot be written (a full
    /// disk), the directories cannot be renamed, or operations under way did not finish
    /// within [`QUIESCE_TIMEOUT`].
    pub fn compact_online(&self) -> Result<Compacted, StoreError> {
        let _one_at_a_time = self
            .compaction
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = self.size_on_disk()?;
        let fresh = Fresh::create(&self.path)?;
        // Most of the id counter's climb happens here, before anything waits.
        if let Err(e) = self.next_id().and_then(|next| fresh.ids_from(next)) {
            fresh.abandon();
            return Err(e);
        }
        // Copied while serving; what is written meanwhile is noted, to copy again.
        let (dirty, records) = match self.precopy(&fresh) {
            Ok(done) => done,
            Err(e) => {
                fresh.abandon();
                return Err(e);
            }
        };
        // The pause. Same order as `reopen`: writer lock, then the database.
        let _cache = self.writer();
        let mut guard = self.db.write().unwrap_or_else(PoisonError::into_inner);
        let started = Instant::now();
        let copied = match &guard.0 {
            None => Err(self.io("closed after a failure; not compacted")),
            Some(db) => self
                .quiesce(db, started)
                .and_then(|()| fresh.recopy(db, &self.path, dirty.keys())),
        };
        let recopied = match copied {
            Ok(n) => n,
            Err(e) => {
                fresh.abandon();
                return Err(e);
            }
        };
        if let Err(e) = fresh.finish() {
            let _ = std::fs::remove_dir_all(swap::compacting(&self.path));
            return Err(e);
        }
        // The old database is dropped (closed, its lock file released) before its
        // directory is renamed: nothing else holds it (quiesced, and the guard keeps new
        // handles from being taken).
        drop(guard.0.take());
        let swapped = swap::swap_in(&self.path);
        let reopened = match &swapped {
            Ok(()) => crate::open_sled(&self.path),
            Err(_) => swap::recover(&self.path).and_then(|()| crate::open_sled(&self.path)),
        };
        let pause = started.elapsed();
        let reopened = match reopened {
            Ok(db) => {
                guard.0 = Some(Arc::new(db));
                Ok(())
            }
            Err(e) => Err(e),
        };
        drop(guard);
        swapped?;
        reopened?;
        // The old store's files go after the pause.
        swap::tidy(&self.path)?;
        let after = self.size_on_disk()?;
        Ok(Compacted {
            before,
            after,
            records,
            recopied,
            pause,
        })
    }

    /// Starts noting the keys written (at a moment no write is under way, so none is
    /// missed), then copies every record into `fresh` without holding anything.
    fn precopy(&self, fresh: &Fresh) -> Result<(Dirty, u64), StoreError> {
        let dirty = {
            let _cache = self.writer();
            let guard = self.db.write().unwrap_or_else(PoisonError::into_inner);
            let db = guard
                .0
                .as_ref()
                .ok_or_else(|| self.io("closed after a failure; not compacted"))?;
            self.quiesce(db, Instant::now())?;
            Dirty::watch(db)
        };
        let records = fresh.copy_from(&self.db()?.0, &self.path)?;
        Ok((dirty, records))
    }

    /// Waits (holding the write guard, so no new handle is taken) until `db` has no
    /// holder but the guard: every operation under way has finished.
    fn quiesce(&self, db: &Arc<sled::Db>, started: Instant) -> Result<(), StoreError> {
        let mut nap = Duration::from_micros(50);
        while Arc::strong_count(db) > 1 {
            if started.elapsed() > QUIESCE_TIMEOUT {
                return Err(self.io(format!(
                    "not compacted: store operations still under way after {QUIESCE_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(5));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "compact_tests.rs"]
mod tests;
