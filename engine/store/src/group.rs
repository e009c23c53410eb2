//! Group commit: concurrent `Flush` appends share fsyncs.
//!
//! Every applied write takes a ticket from a counter. A writer that needs durability
//! takes the flush mutex; if the last completed flush already covered its ticket (a
//! flush that *started* after its write was applied), it returns at once. Otherwise it
//! reads the counter, flushes, and records that counter as flushed, covering every
//! writer that queued behind it. Under load, one fsync serves many appends.
//!
//! Async writers (run drivers, [`GroupCommit::wait`]) do not take the mutex: they say
//! which ticket they want and await a published value, while one thread of the store's
//! (the flusher, `flusher.rs`) flushes back to back for as long as anyone waits. A
//! blocked thread per waiting driver (tokio's `block_in_place`) cost a thread hand-off
//! and a futex wake chain per flush: in the loopback bench's profile, 45 % of the CPU
//! was the kernel switching threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// What async waiters watch: the highest ticket a completed flush covers, and the last
/// failed flush (the highest ticket it was to cover, and why it failed).
#[derive(Debug, Clone, Default)]
pub(crate) struct Published {
    covered: u64,
    failed: Option<(u64, Arc<str>)>,
}

impl Published {
    /// The highest ticket a flush has answered for, either way.
    pub(crate) fn answered(&self) -> u64 {
        self.covered.max(self.failed.as_ref().map_or(0, |f| f.0))
    }
}

#[derive(Debug)]
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
    /// Every flush's result, for async waiters.
    published: watch::Sender<Published>,
    /// The highest ticket an async waiter waits for: the flusher flushes while it is
    /// above what a flush has answered for.
    wanted: AtomicU64,
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            written: AtomicU64::new(0),
            flushed: Mutex::new(0),
            covered: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            published: watch::Sender::new(Published::default()),
            wanted: AtomicU64::new(0),
        }
    }
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
    /// never turned into a silent success for anyone. Async waiters are told either way.
    pub(crate) fn flush_through(
        &self,
        ticket: u64,
        flush: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
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
        if let Err(e) = flush() {
            let failed: Arc<str> = e.as_str().into();
            self.published.send_modify(|p| {
                let through = p.failed.as_ref().map_or(target, |f| f.0.max(target));
                p.failed = Some((through, failed));
            });
            return Err(e);
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        *flushed = target;
        self.covered.fetch_max(target, Ordering::SeqCst);
        self.published
            .send_modify(|p| p.covered = p.covered.max(target));
        Ok(())
    }

    /// Waits, without blocking a thread, until write `ticket` is durable, waking
    /// `flusher` (the thread that flushes for async waiters) to flush for it. Errors
    /// with the cause when the flush meant to cover the write failed.
    pub(crate) async fn wait(
        &self,
        ticket: u64,
        flusher: &std::thread::Thread,
    ) -> Result<(), String> {
        if self.covered(ticket) {
            return Ok(());
        }
        // Subscribed before asking: a flush published in between is still seen.
        let mut rx = self.published.subscribe();
        self.wanted.fetch_max(ticket, Ordering::SeqCst);
        flusher.unpark();
        let p = rx
            .wait_for(|p| p.answered() >= ticket)
            .await
            .map_err(|_| "the store was closed before this write was durable".to_string())?;
        match &p.failed {
            _ if p.covered >= ticket => Ok(()),
            Some((_, why)) => Err(why.to_string()),
            None => Err("no flush covered this write".into()),
        }
    }

    /// Answers every async waiter, present and future, with `why`: the flusher is gone.
    /// A write a completed flush already covered stays durable.
    pub(crate) fn close(&self, why: &str) {
        let why: Arc<str> = why.into();
        self.published
            .send_modify(|p| p.failed = Some((u64::MAX, why)));
    }

    /// The highest ticket an async waiter waits for, and the highest a flush answered
    /// for: the flusher works while the first is above the second.
    pub(crate) fn backlog(&self) -> (u64, u64) {
        let answered = self.published.borrow().answered();
        (self.wanted.load(Ordering::SeqCst), answered)
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
            Ok::<_, String>(())
        })
        .unwrap();
        g.flush_through(a, || {
            calls += 1;
            Ok::<_, String>(())
        })
        .unwrap();
        assert_eq!(calls, 1, "a's write was covered by b's flush");
        let c = g.wrote();
        g.flush_through(c, || {
            calls += 1;
            Ok::<_, String>(())
        })
        .unwrap();
        assert_eq!(calls, 2, "a write after the flush needs a new one");
        assert_eq!(g.flushes(), 2);
    }

    #[test]
    fn a_failed_flush_covers_nothing() {
        let g = GroupCommit::default();
        let a = g.wrote();
        assert_eq!(
            g.flush_through(a, || Err("disk gone".to_string())),
            Err("disk gone".to_string())
        );
        let mut calls = 0;
        g.flush_through(a, || {
            calls += 1;
            Ok::<_, String>(())
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
                            Ok::<_, String>(())
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

    /// A stand-in flusher: on each wake-up with a backlog, flushes with the next result.
    fn flusher(
        g: Arc<GroupCommit>,
        results: Vec<Result<(), String>>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for result in results {
                loop {
                    let (wanted, answered) = g.backlog();
                    if wanted > answered {
                        break;
                    }
                    std::thread::park();
                }
                let (wanted, _) = g.backlog();
                let _ = g.flush_through(wanted, || result);
            }
        })
    }

    #[test]
    fn an_async_waiter_is_told_of_a_failed_flush_and_a_later_write_flushes_again() {
        let g = Arc::new(GroupCommit::default());
        let f = flusher(g.clone(), vec![Err("disk gone".into()), Ok(())]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let first = g.wrote();
        let got = rt.block_on(g.wait(first, f.thread()));
        assert_eq!(got, Err("disk gone".to_string()), "never told durable");
        assert!(!g.covered(first));
        let second = g.wrote();
        rt.block_on(g.wait(second, f.thread())).unwrap();
        assert!(g.covered(first) && g.covered(second));
        assert_eq!(g.flushes(), 1, "only the successful flush counts");
        f.join().unwrap();
    }
}
