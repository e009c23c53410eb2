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
//! never start it. Under load, flushes are at least [`GATHER`] apart, so more waiters
//! share each.

use crate::group::GroupCommit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The least time from the start of one flush to the start of the next. A waiter that
/// finds the flusher idle for longer is flushed for at once; under load, the waiters of
/// this window share one flush. Flushing back to back, the loopback bench's drivers took
/// 0.53 flushes per run (two runs a flush), and each flush is a log write and a
/// `sync_file_range` on one of sled's I/O threads: with this window, 0.2–0.24 flushes
/// per alert in all instead of 0.64–0.71, and sled's I/O threads a quarter less CPU
/// (docs/performance.md, sixth pass). What it costs: under load, a driver's flush waits
/// up to this long more (a run's last record, a step's record before its side effect);
/// PostgreSQL's `commit_delay` makes the same trade.
const GATHER: Duration = Duration::from_millis(1);

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
                let mut last = Instant::now()
                    .checked_sub(GATHER)
                    .unwrap_or_else(Instant::now);
                while !stopping.load(Ordering::SeqCst) {
                    let (wanted, answered) = flushing.backlog();
                    if wanted <= answered {
                        // Woken by the next waiter's `unpark` (a token: one given before
                        // this park is not lost) or by `Drop`.
                        std::thread::park();
                        continue;
                    }
                    // Not holding the flush lock: a blocking writer that flushes
                    // meanwhile covers these waiters, and the flush below returns at once.
                    let since = last.elapsed();
                    if since < GATHER {
                        std::thread::sleep(GATHER - since);
                    }
                    let (wanted, _) = flushing.backlog();
                    last = Instant::now();
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

#[cfg(test)]
mod tests {
    use super::GATHER;
    use crate::SledStore;
    use crate::tests::{meta, skip};
    use medic_core::JournalStore;
    use std::time::Instant;

    /// A lone writer whose every append waits for the disk (a driver stepping through
    /// flushed records) gets them flushed at most once per window, so a storm of such
    /// writers shares flushes; the first, after a quiet spell, is not held back.
    #[test]
    fn flushes_for_async_waiters_start_at_least_the_window_apart() {
        const APPENDS: u64 = 10;
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        store.create_run(&meta("a"), &skip(0)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (before, started) = (store.flush_count(), Instant::now());
        rt.block_on(async {
            for seq in 1..=APPENDS {
                let pending = store.append_durable("a", &skip(seq), None).unwrap();
                pending.await.unwrap();
            }
        });
        let (flushes, took) = (store.flush_count() - before, started.elapsed());
        assert_eq!(
            flushes, APPENDS,
            "each append waited for a flush of its own"
        );
        // A lower bound only: a slow machine makes it longer, never shorter.
        assert!(
            took >= GATHER * (APPENDS as u32 - 1),
            "{APPENDS} flushes one after another in {took:?}: closer than {GATHER:?} apart"
        );
    }
}
