//! The keys written while an online compaction copies the store without stopping it: the
//! copy made while serving is then brought up to date in the pause by copying only these
//! again, so the pause no longer walks the whole tree.
//!
//! sled tells a subscriber (`watch_prefix`) of every insert and removal, batches and
//! transactions included, through a bounded channel; a thread drains it into a set of
//! keys, so writers never wait on it for long. Which value a key ends with is read from
//! the database in the pause, not taken from the events: their order is not needed.

use sled::IVec;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

/// Watches every key of a database from the moment it is created.
pub(crate) struct Dirty {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<HashSet<IVec>>>,
}

impl Dirty {
    /// Starts watching `db`. Call it while no write is under way: a write that started
    /// before the subscription is not reported.
    pub(crate) fn watch(db: &sled::Db) -> Dirty {
        let mut events = db.watch_prefix(Vec::<u8>::new());
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("medic-compact-watch".into())
            .spawn(move || {
                // Polled, not waited on: sled's `next_timeout` stalls for good on the
                // notice of a write that changed nothing (a removal of a missing key),
                // where polling skips it.
                let mut cx = Context::from_waker(Waker::noop());
                let mut keys = HashSet::new();
                let mut stopping = false;
                loop {
                    match Pin::new(&mut events).poll(&mut cx) {
                        Poll::Ready(Some(event)) => {
                            keys.insert(event.key().clone());
                        }
                        // Nothing pending in a poll that began after the stop was seen:
                        // every write had finished before the stop, so all is drained.
                        Poll::Ready(None) => return keys,
                        Poll::Pending if stopping => return keys,
                        Poll::Pending => {
                            std::thread::sleep(Duration::from_millis(1));
                            stopping = stopped.load(Ordering::SeqCst);
                        }
                    }
                }
            })
            .expect("spawn the compaction's key watcher");
        Dirty {
            stop,
            thread: Some(thread),
        }
    }

    /// The keys written since [`Dirty::watch`]. Call it while no write is under way (and
    /// none can start), so every event has been sent.
    pub(crate) fn keys(mut self) -> HashSet<IVec> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .unwrap_or_default()
    }
}

impl Drop for Dirty {
    /// A compaction that gives up: the watcher ends by itself.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
