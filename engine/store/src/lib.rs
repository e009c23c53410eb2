//! medic's embedded durable store, on sled.
//!
//! One sled tree holds everything. A journal append is one insert; the one that changes
//! the run's status (`run_finished`) is followed by its run-meta update, and a meta left
//! behind (a crash between the two, a failed insert) is repaired when the store is next
//! opened or by the next append (sled recovers a prefix of its log, so the meta is never
//! ahead of the journal):
//!
//! | key                          | value                         |
//! |------------------------------|-------------------------------|
//! | `m/<run-id>`                 | [`RunMeta`] (codec-encoded)   |
//! | `e/<run-id>/<seq: u64 BE>`   | journal [`Entry`]             |
//! | `x/mail/<run-id>/<id: u64 BE>` | a [`Message`] for the run   |
//! | `x/...`                      | the service's records (`records`) |
//!
//! Big-endian sequence numbers make a prefix scan return a journal in order.
//!
//! Durability: `create_run` and [`Durability::Flush`] appends return only once they and
//! every earlier write are on disk (fsync). Concurrent flushing appenders share fsyncs
//! (group commit): one whose write a later-started flush already covered returns
//! without flushing again. [`Durability::Lazy`] appends are applied in order but made
//! durable by the next flush. See docs/durability.md.
//!
//! Test-only failpoint: if `MEDIC_CRASH_AT_WRITE=k` (k ≥ 1) is set when a store is
//! opened, the process SIGKILLs itself immediately before its k-th journal write
//! (`create_run`, `append` and `append_durable` calls, and each run of a
//! `write_creating`, all counted before its one batch; a finishing append's meta, after
//! its entry, with the entry flushed first; counted from 1 across the process). Crash
//! tests use it to stop medic at every write and check that resume finishes the run.
//! Never set it in production.
//!
//! ```no_run
//! let store = medic_store::SledStore::open("/var/lib/medic/store").unwrap();
//! for run in medic_core::JournalStore::runs(&store).unwrap() {
//!     println!("{} {}", run.id, run.status.as_str());
//! }
//! ```

#![warn(missing_docs)]

mod compact;
mod dirty;
mod failpoint;
mod flusher;
mod group;
mod keys;
mod read;
mod records;
mod repair;
mod swap;
mod write;

use write::{CLOSED, REOPENED, Write, Written};

pub use compact::Compacted;
pub use failpoint::CRASH_AT_WRITE;

use failpoint::Failpoint;
use flusher::{DbSlot, Flusher};
use group::GroupCommit;
use keys::{META_PREFIX, meta_key};
use medic_core::codec::decode_meta;
use medic_core::codec::{decode, encode};
use medic_core::{Durability, Entry, JournalStore, Message, PendingFlush, RunMeta, StoreError};
pub use records::{Op, Record};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The [`JournalStore`] on sled: one process's handle on a data directory (sled's lock file
/// refuses a second process). Also holds the service's records ([`SledStore::write`]).
pub struct SledStore {
    /// The thread flushing for async waiters, started by the first (`flusher.rs`).
    /// First, so it is joined before the database below is dropped.
    flusher: OnceLock<Result<Flusher, String>>,
    /// The open database, and how many times it was reopened (`reopen`). `None` only
    /// while a reopen is under way or after one (or a compaction's swap) failed.
    ///
    /// Every operation takes a clone of the `Arc` for its duration and never asks for a
    /// second one while it holds the first: so whoever holds the write guard and sees a
    /// strong count of 1 knows no operation is using the database (what online
    /// compaction waits for, `compact.rs`).
    db: Arc<DbSlot>,
    /// Shared with pending flushes, which name it only in an error.
    path: Arc<Path>,
    /// The writer lock, and the next sequence number of each unfinished run this
    /// handle has written to (sled's lock file makes this handle the only writer, so
    /// the cache cannot go stale). Held from the sequence check to the applied write,
    /// so two appends to one run can never both pass the check and fork the journal.
    next_seq: Mutex<HashMap<String, u64>>,
    commits: Arc<GroupCommit>,
    failpoint: Failpoint,
    /// Held for a whole online compaction: two at once would share `<path>.compacting`.
    compaction: Mutex<()>,
    /// Whether a finished run's meta may be behind its journal in the open database:
    /// its insert failed after the entry's, or the repair at open failed. The next
    /// journal append repairs first (`repair.rs`); until one succeeds, readers may list
    /// such a run as running.
    metas_behind: AtomicBool,
}

impl SledStore {
    /// Opens (or creates) the store at `path`.
    ///
    /// Reads `MEDIC_CRASH_AT_WRITE` (see the crate docs); a malformed value is an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] naming `path` when it cannot be opened or created (another
    /// medic process holds it, permissions, not a store) or the failpoint is malformed.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let failpoint = Failpoint::from_env().map_err(|message| StoreError::Io {
            path: path.display().to_string(),
            message,
        })?;
        // An interrupted compaction leaves its directories beside the store: finish or
        // undo it first (`swap.rs`).
        swap::recover(&path)?;
        let db = open_sled(&path)?;
        // Before anyone reads: a crash can leave a finished run's meta behind its
        // journal (`repair.rs`). Not fatal: the first journal append tries again.
        let behind = repair::at_open(&db, &path);
        Ok(SledStore {
            flusher: OnceLock::new(),
            db: Arc::new(DbSlot::new((Some(Arc::new(db)), 0))),
            path: path.into(),
            next_seq: Mutex::new(HashMap::new()),
            commits: Arc::new(GroupCommit::default()),
            failpoint,
            compaction: Mutex::new(()),
            metas_behind: AtomicBool::new(behind),
        })
    }

    /// A run's journal entries from `seq` on (none when it has no entry that far, or no
    /// journal): what a reader that holds the earlier entries still needs. Journal entries
    /// are never rewritten, so earlier ones stay as they were read. A long journal is read
    /// in ranges side by side (`read.rs`).
    ///
    /// # Errors
    /// [`StoreError::Io`] when the store cannot be read; [`StoreError::Corrupt`] naming
    /// the key of an entry that cannot be decoded.
    pub fn entries_from(&self, run: &str, seq: u64) -> Result<Vec<Entry>, StoreError> {
        let (db, _) = self.db()?;
        self.read_journal(&db, run, seq)
    }

    /// Whether run `run` exists (its meta is there): [`JournalStore::run`] without
    /// decoding the meta, for the inbox processor's check of every alert's run. A meta
    /// that would not decode counts as there: the run exists, and its readers report it.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the store cannot be read.
    pub fn has_run(&self, run: &str) -> Result<bool, StoreError> {
        let (db, _) = self.db()?;
        db.contains_key(meta_key(run)).map_err(|e| self.io(e))
    }

    /// Drops `run`'s next sequence number from the writer's cache: the run is parked
    /// (at a gate, or until a retry) and appends nothing until a driver takes it again,
    /// whose first append then reads the number from the journal's last key (one
    /// reverse scan). A parked run otherwise kept its cache entry, about 0.1 KiB, for as
    /// long as it waited (docs/performance.md, memory per parked run). Always safe: the
    /// cache is rebuilt from the journal whenever an entry is missing.
    pub fn forget_next_seq(&self, run: &str) {
        self.writer().remove(run);
    }

    /// The [`Op`] that posts `message` to `run`'s mailbox, for a caller writing it with
    /// other records in one write: the inbox processor tells a run it creates in the same
    /// batch, which is not in the store before that write. [`JournalStore::post`] writes
    /// the same record alone.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when sled cannot give the message an id.
    pub fn post_op(&self, run: &str, message: &Message) -> Result<Op, StoreError> {
        // sled ids only grow, so a scan of the mailbox returns messages in post order.
        let id = self.next_id()?;
        Ok(Op::Put(keys::mail_key(run, id), encode(message)))
    }

    /// The directory the store was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether [`REOPEN_SPACE_BYTES`] fit on the store's filesystem: written, synced and
    /// removed again.
    fn room_to_reopen(&self) -> bool {
        use std::io::Write;
        let probe = self.path.join("reopen-space-probe");
        let written = std::fs::File::create(&probe).and_then(|mut f| {
            let block = vec![0u8; 64 * 1024];
            for _ in 0..REOPEN_SPACE_BYTES / block.len() {
                f.write_all(&block)?;
            }
            f.sync_all()
        });
        let _ = std::fs::remove_file(&probe);
        written.is_ok()
    }

    /// The open database and its epoch (how many reopens so far). Drop the handle before
    /// calling this again: see the `db` field.
    fn db(&self) -> Result<(Arc<sled::Db>, u64), StoreError> {
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        match &guard.0 {
            Some(db) => Ok((db.clone(), guard.1)),
            None => Err(self.io(CLOSED)),
        }
    }

    /// A write applied in epoch `epoch` and flushed: an error if the store was reopened
    /// in between, because the write was then applied to a database that is gone, and
    /// the flush did not cover it.
    fn same_epoch(&self, epoch: u64) -> Result<(), StoreError> {
        match write::reopened_since(&self.db, epoch) {
            false => Ok(()),
            true => Err(self.io(REOPENED)),
        }
    }

    /// Closes and reopens the database: the way back after an I/O error (a full disk),
    /// because sled refuses every write after its first I/O error until it is reopened.
    /// Writes that were not durable are lost, as in a crash (none was acknowledged as
    /// durable); in-memory caches are dropped.
    ///
    /// Nothing is closed unless [`REOPEN_SPACE_BYTES`] can be written next to the store
    /// first: while the disk is still full the old handle stays, and with it every read;
    /// that answers `Ok(false)`. `Ok(true)`: reopened.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the database cannot be opened again (another handle of it
    /// is still in use, or it is unreadable): the store is then closed and every call
    /// fails until a later `reopen` succeeds.
    pub fn reopen(&self) -> Result<bool, StoreError> {
        if !self.room_to_reopen() {
            return Ok(false);
        }
        let mut cache = self.writer();
        let mut guard = self.db.write().unwrap_or_else(PoisonError::into_inner);
        guard.1 += 1;
        // sled's lock file is released only when the last handle is dropped.
        drop(guard.0.take());
        cache.clear();
        // A compaction whose swap failed half-way left it to be finished here.
        swap::recover(&self.path)?;
        let db = open_sled(&self.path)?;
        // A meta whose insert failed with the I/O error that led here is behind its
        // journal; so may be one from before a crash the reopen recovered.
        let behind = repair::at_open(&db, &self.path);
        self.metas_behind.store(behind, Ordering::Relaxed);
        guard.0 = Some(Arc::new(db));
        Ok(true)
    }

    /// fsyncs this handle has performed: with group commit, usually fewer than the
    /// flushing writes. For tests and diagnostics.
    pub fn flush_count(&self) -> u64 {
        self.commits.flushes()
    }

    fn io(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn corrupt(&self, key: &[u8], source: medic_core::codec::CodecError) -> StoreError {
        StoreError::Corrupt {
            path: self.path.display().to_string(),
            key: keys::display(key),
            source,
        }
    }
}

/// Free space [`SledStore::reopen`] wants before it closes the old handle: room for a
/// few of sled's 512 KiB log segments.
pub const REOPEN_SPACE_BYTES: usize = 4 << 20;

/// Opens the sled database at `path` (no recovery of an interrupted compaction: see
/// [`swap::recover`]; no repair of metas behind their journals, [`repair`]: `open` and
/// `reopen` do it, and a compaction's copy is made from a store they repaired).
fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    // sled's I/O threads can keep the store's lock for a moment after the last handle of
    // a database in this process is dropped (they finish writing its log), so a reopen in
    // the same process — compaction's swap, `medic compact` right after a check — would
    // be taken for another medic process. Wait that moment out; a store really held by
    // another process is still reported, after `LOCK_WAIT`.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new().path(path).open() {
            Ok(db) => return Ok(db),
            Err(e) if is_locked(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(open_error(path, e)),
        }
    }
}

/// How long an open waits for the store's lock before saying another process holds it.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether sled refused to open because the store's lock is held.
fn is_locked(e: &sled::Error) -> bool {
    // sled reports a second opener as an `Other` I/O error whose text carries the lock
    // file's "would block": recognisable only by that text.
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().contains("could not acquire lock"))
}

fn open_error(path: &Path, e: sled::Error) -> StoreError {
    let message = match &e {
        e if is_locked(e) => {
            "in use by another medic process (the store allows one at a time)".to_string()
        }
        sled::Error::Io(io) => format!("cannot open: {io}"),
        other => format!("cannot open: {other}"),
    };
    StoreError::Io {
        path: path.display().to_string(),
        message,
    }
}

impl JournalStore for SledStore {
    fn create_run(&self, meta: &RunMeta, first: &Entry) -> Result<(), StoreError> {
        let ticket = self.create(meta, first)?;
        self.durable(ticket)
    }

    fn create_run_lazy(&self, meta: &RunMeta, first: &Entry) -> Result<(), StoreError> {
        self.create(meta, first).map(|_| ())
    }

    fn append(
        &self,
        run: &str,
        entry: &Entry,
        meta: Option<&RunMeta>,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let ticket = self.applied(run, entry, meta)?;
        match durability {
            Durability::Flush => self.durable(ticket),
            Durability::Lazy => Ok(()),
        }
    }

    fn append_durable(
        &self,
        run: &str,
        entry: &Entry,
        meta: Option<&RunMeta>,
    ) -> Result<PendingFlush, StoreError> {
        let ticket = self.applied(run, entry, meta)?;
        self.durable_later(ticket)
    }

    fn entries(&self, run: &str) -> Result<Vec<Entry>, StoreError> {
        let out = self.read_journal(&self.db()?.0, run, 0)?;
        if out.is_empty() && self.run(run)?.is_none() {
            return Err(StoreError::NoSuchRun(run.to_string()));
        }
        Ok(out)
    }

    fn run(&self, run: &str) -> Result<Option<RunMeta>, StoreError> {
        let key = meta_key(run);
        match self.db()?.0.get(&key).map_err(|e| self.io(e))? {
            None => Ok(None),
            Some(v) => decode_meta(&v).map(Some).map_err(|e| self.corrupt(&key, e)),
        }
    }

    fn runs(&self) -> Result<Vec<RunMeta>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db()?.0.scan_prefix(META_PREFIX) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            out.push(decode_meta(&v).map_err(|e| self.corrupt(&k, e))?);
        }
        // Ids start with the creation time, so this is usually already in order (and
        // the stable sort then costs one pass).
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }

    fn post(&self, run: &str, message: &Message) -> Result<(), StoreError> {
        self.write(vec![self.post_op(run, message)?], Durability::Flush)
    }

    fn mailbox(&self, run: &str) -> Result<Vec<(u64, Message)>, StoreError> {
        let mut out = Vec::new();
        for (k, v) in self.scan(&keys::mail_prefix(run))? {
            let id = keys::seq_of(&k).unwrap_or_default();
            let message = decode(&v).map_err(|e| self.corrupt(&k, e))?;
            out.push((id, message));
        }
        Ok(out)
    }

    fn ack(&self, run: &str, id: u64) -> Result<(), StoreError> {
        self.write(vec![Op::Remove(keys::mail_key(run, id))], Durability::Lazy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::entry_key;
    use medic_core::{Event, RunStatus};

    pub(crate) fn meta(id: &str) -> RunMeta {
        RunMeta {
            id: id.into(),
            workflow: "wf".into(),
            incident_title: "t".into(),
            status: RunStatus::Running,
            created_ms: 1,
            updated_ms: 1,
        }
    }

    pub(crate) fn skip(seq: u64) -> Entry {
        Entry {
            seq,
            at_ms: seq,
            event: Event::StepSkipped {
                step: "s".into(),
                reason: "r".into(),
            },
        }
    }

    #[test]
    fn appends_in_order_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.create_run(&meta("a"), &skip(0)).unwrap();
            s.append("a", &skip(1), None, Durability::Flush).unwrap();
            let err = s
                .append("a", &skip(5), None, Durability::Flush)
                .unwrap_err();
            assert!(err.to_string().contains("expected seq 2, got 5"), "{err}");
            let mut done = meta("a");
            done.status = RunStatus::Succeeded;
            s.append("a", &skip(2), Some(&done), Durability::Flush)
                .unwrap();
            // Evicted from the cache once finished; the check still works from disk.
            let err = s
                .append("a", &skip(2), None, Durability::Flush)
                .unwrap_err();
            assert!(err.to_string().contains("expected seq 3, got 2"), "{err}");
        }
        let s = SledStore::open(dir.path()).unwrap();
        let seqs: Vec<u64> = s.entries("a").unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
        assert_eq!(s.run("a").unwrap().unwrap().status, RunStatus::Succeeded);
        assert!(matches!(s.entries("b"), Err(StoreError::NoSuchRun(_))));
        // After a reopen the expected seq comes from disk.
        let err = s.append("a", &skip(7), None, Durability::Lazy).unwrap_err();
        assert!(err.to_string().contains("expected seq 3, got 7"), "{err}");
    }

    #[test]
    fn a_parked_run_forgotten_by_the_cache_appends_from_its_journal() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        s.create_run(&meta("a"), &skip(0)).unwrap();
        s.append("a", &skip(1), None, Durability::Lazy).unwrap();
        s.forget_next_seq("a");
        assert!(!s.writer().contains_key("a"));
        let err = s.append("a", &skip(1), None, Durability::Lazy).unwrap_err();
        assert!(
            matches!(err, StoreError::OutOfOrder { expected: 2, .. }),
            "{err}"
        );
        s.append("a", &skip(2), None, Durability::Lazy).unwrap();
        s.forget_next_seq("never-written");
        assert_eq!(s.entries("a").unwrap(), vec![skip(0), skip(1), skip(2)]);
    }

    #[test]
    fn creating_over_an_existing_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        assert!(!s.has_run("a").unwrap());
        s.create_run(&meta("a"), &skip(0)).unwrap();
        assert!(s.has_run("a").unwrap() && !s.has_run("b").unwrap());
        s.append("a", &skip(1), None, Durability::Lazy).unwrap();
        let err = s.create_run(&meta("a"), &skip(0)).unwrap_err();
        assert!(
            matches!(err, StoreError::OutOfOrder { expected: 2, .. }),
            "{err}"
        );
        assert_eq!(s.entries("a").unwrap(), vec![skip(0), skip(1)]);
        // Reopened, the handle knows nothing of "a" until it looks at the journal.
        drop(s);
        let s = SledStore::open(dir.path()).unwrap();
        let err = s.create_run(&meta("a"), &skip(0)).unwrap_err();
        assert!(
            matches!(err, StoreError::OutOfOrder { expected: 2, .. }),
            "{err}"
        );
        assert_eq!(s.entries("a").unwrap(), vec![skip(0), skip(1)]);
    }

    #[test]
    fn second_opener_gets_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        let err = SledStore::open(dir.path())
            .err()
            .expect("second open must fail");
        let msg = err.to_string();
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains("in use by another medic process"), "{msg}");
    }

    #[test]
    fn corrupt_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        s.create_run(&meta("a"), &skip(0)).unwrap();
        s.db()
            .unwrap()
            .0
            .insert(entry_key("a", 1), vec![9u8, b'{'])
            .unwrap();
        let err = s.entries("a").unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
        assert!(err.contains("corrupt record e/a/1"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }
}
