//! Group commit: concurrent `Flush` appends share fsyncs.
//!
//! Every applied write takes a ticket from a counter. A writer that needs durability
//! takes the flush mutex; if the last completed flush already covered its ticket (a
//! flush that *started* after its write was applied), it returns at once. Otherwise it
//! reads the counter, flushes, and records that counter as flushed, covering every
//! writer that queued behind it. Under load, one fsync serves many appends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    /// Tickets handed out: ticket `n` is the n-th write applied through this handle.
    written: AtomicU64,
    /// The highest ticket a completed flush is known to cover. Held for the whole
    /// flush, so writers arriving meanwhile wait and then usually find themselves covered.
    flushed: Mutex<u64>,
    /// A copy of `flushed`, readable without the lock: a writer already covered by a
    /// completed flush returns without touching the lock (or telling tokio it blocks).
    covered: AtomicU64,
    /// Real flushes performed (for tests and diagnostics).
    flushes: AtomicU64,
}

impl GroupCommit {
    /// Call right after a write has been applied (in memory); returns its ticket.
    pub(crate) fn wrote(&self) -> u64 {
        self.written.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Whether a completed flush already covers write `ticket` (never true wrongly: the
    /// copy is raised only after the flush it describes succeeded).
    pub(crate) fn covered(&self, ticket: u64) -> bool {
        self.covered.load(Ordering::SeqCst) >= ticket
    }

    /// Returns once write `ticket` (and every write applied before it) is durable,
    /// calling `flush` only if no flush that started after the write has completed.
    /// A failed flush records nothing, so the next caller flushes again: an error is
    /// never turned into a silent success for anyone.
    pub(crate) fn flush_through<E>(
        &self,
        ticket: u64,
        flush: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        // A panic inside `flush` leaves the counter as it was (it is only raised after
        // a successful flush), so a poisoned lock still holds a truthful value.
        let mut flushed = self.flushed.lock().unwrap_or_else(PoisonError::into_inner);
        if *flushed >= ticket {
            return Ok(());
        }
        // Read before flushing: every ticket up to here was applied before the flush
        // starts, so the flush covers it. Later tickets may or may not be covered, so
        // they are not claimed.
        let target = self.written.load(Ordering::SeqCst);
        flush()?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        *flushed = target;
        self.covered.fetch_max(target, Ordering::SeqCst);
        Ok(())
    }

    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn a_flush_covers_every_earlier_write() {
        let g = GroupCommit::default();
        let a = g.wrote();
        let b = g.wrote();
        let mut calls = 0;
        g.flush_through(b, || {
            calls += 1;
            Ok::<_, ()>(())
        })
        .unwrap();
        g.flush_through(a, || {
            calls += 1;
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(calls, 1, "a's write was covered by b's flush");
        let c = g.wrote();
        g.flush_through(c, || {
            calls += 1;
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(calls, 2, "a write after the flush needs a new one");
        assert_eq!(g.flushes(), 2);
    }

    #[test]
    fn a_failed_flush_covers_nothing() {
        let g = GroupCommit::default();
        let a = g.wrote();
        assert_eq!(g.flush_through(a, || Err("disk gone")), Err("disk gone"));
        let mut calls = 0;
        g.flush_through(a, || {
            calls += 1;
            Ok::<_, &str>(())
        })
        .unwrap();
        assert_eq!(calls, 1, "the write is flushed again, not assumed durable");
    }

    #[test]
    fn concurrent_writers_share_flushes() {
        let g = Arc::new(GroupCommit::default());
        // A "disk" that records the highest ticket it has made durable, with a slow
        // flush so writers pile up behind it.
        let durable = Arc::new(AtomicU64::new(0));
        let violated = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (g, durable, violated) = (g.clone(), durable.clone(), violated.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let t = g.wrote();
                        g.flush_through(t, || {
                            let upto = g.written.load(Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            durable.fetch_max(upto, Ordering::SeqCst);
                            Ok::<_, ()>(())
                        })
                        .unwrap();
                        if durable.load(Ordering::SeqCst) < t {
                            violated.store(true, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(
            !violated.load(Ordering::SeqCst),
            "a write returned before it was durable"
        );
        // Writers that queued behind a flush are covered by the next one.
        assert!(
            g.flushes() < 400,
            "no flush was shared: {} flushes",
            g.flushes()
        );
    }
}
