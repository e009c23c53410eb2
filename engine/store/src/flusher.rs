//! The store's flusher: one thread that flushes for async waiters
//! ([`crate::SledStore`]'s `append_durable`), back to back for as long as any waits.
//!
//! Run drivers are async tasks; a driver waiting for its append to reach the disk used to
//! block its worker thread (tokio's `block_in_place`, which hands the worker's queue to
//! another thread) and queue on the group-commit mutex, and every flush ended in a chain
//! of futex wake-ups, one thread at a time. Now a driver's write is applied in memory at
//! once, and the driver awaits a published value while this thread flushes: each flush
//! covers every write applied before it started, and wakes every waiter it covers at once.
//! Started with the first async wait, so `medic runs` and the other one-shot commands
//! never start it.

use crate::group::GroupCommit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;

/// The open database and its epoch, shared by the store and its flusher.
pub(crate) type DbSlot = RwLock<(Option<Arc<sled::Db>>, u64)>;

/// Flushes the database in `db` now; the cause as text when it cannot.
pub(crate) fn flush_db(db: &DbSlot) -> Result<(), String> {
    // A clone for the flush's duration only, as every operation on the store takes it
    // (what online compaction's quiesce counts on).
    let handle = db.read().unwrap_or_else(PoisonError::into_inner).0.clone();
    match handle {
        Some(db) => db.flush().map(|_| ()).map_err(|e| e.to_string()),
        None => Err(crate::CLOSED.to_string()),
    }
}

/// The flusher thread of one store; stopped and joined when dropped.
pub(crate) struct Flusher {
    commits: Arc<GroupCommit>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the thread flushing `db` for `commits`' async waiters.
    ///
    /// # Errors
    ///
    /// The OS's error when the thread cannot be started.
    pub(crate) fn start(commits: Arc<GroupCommit>, db: Arc<DbSlot>) -> std::io::Result<Flusher> {
        let stop = Arc::new(AtomicBool::new(false));
        let (stopping, flushing) = (stop.clone(), commits.clone());
        let thread = std::thread::Builder::new()
            .name("medic-flush".into())
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    let (wanted, answered) = flushing.backlog();
                    if wanted <= answered {
                        // Woken by the next waiter's `unpark` (a token: one given before
                        // this park is not lost) or by `Drop`.
                        std::thread::park();
                        continue;
                    }
                    // Errors reach the waiters through what `flush_through` publishes.
                    let _ = flushing.flush_through(wanted, || flush_db(&db));
                }
            })?;
        Ok(Flusher {
            commits,
            stop,
            thread: Some(thread),
        })
    }

    /// The thread, for waiters to wake.
    pub(crate) fn thread(&self) -> &std::thread::Thread {
        self.thread
            .as_ref()
            .expect("the flusher's thread lives until drop")
            .thread()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // Joined, so the database's last handle (and sled's lock file) is released
            // when the store is dropped, not a moment later: a reopen in this process
            // (compaction's swap, a test) would otherwise find it still locked.
            let _ = t.join();
        }
        // Nothing flushes for a waiter from here on: one still waiting (its future
        // outlived the store) gets an error, never a wait without end.
        self.commits
            .close("the store was closed before this write was durable");
    }
}
