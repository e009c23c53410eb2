//! Runs parked at an open gate or a long retry wait ([`medic_core::Driven::Parked`]):
//! no driver holds them in memory, only their id and when their wait ends. A human gate
//! can wait an hour, and a storm can leave thousands of runs at one; a driver each held
//! their folded state, task and timer (about 10 KiB a run, docs/performance.md).
//!
//! A parked run is driven again when its wait ends ([`wake_due`]) or when a message is
//! posted for it ([`crate::Service::post`]); the driver that parked it looks at the
//! mailbox once more after leaving, so a message posted while it was leaving is not
//! missed (`processor::spawn_drive`).

use crate::Service;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// Parked runs by when their wait ends.
#[derive(Default)]
pub(crate) struct Parked {
    inner: Mutex<Inner>,
    /// Wakes [`wake_due`] when a run parks with a wait shorter than every other.
    earlier: Notify,
}

/// One copy of each run id, shared by both maps: this is most of what a parked run keeps
/// in memory here (docs/performance.md, memory per parked run).
#[derive(Default)]
struct Inner {
    /// (wall-clock ms when the wait ends, run id).
    due: BTreeSet<(u64, Arc<str>)>,
    /// Run id -> its key in `due`, to take a run out when it is driven early.
    until: HashMap<Arc<str>, u64>,
}

impl Parked {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `run` until `until_ms` (in place of any earlier wait of it).
    pub(crate) fn park(&self, run: String, until_ms: u64) {
        let run: Arc<str> = run.into();
        let mut inner = self.lock();
        if let Some(old) = inner.until.insert(run.clone(), until_ms) {
            inner.due.remove(&(old, run.clone()));
        }
        let first = inner.due.first().is_none_or(|(t, _)| until_ms < *t);
        inner.due.insert((until_ms, run));
        if first {
            self.earlier.notify_one();
        }
    }

    /// Takes `run` out: a driver has it again (a message came before its wait ended).
    pub(crate) fn unpark(&self, run: &str) {
        let mut inner = self.lock();
        if let Some((run, t)) = inner.until.remove_entry(run) {
            inner.due.remove(&(t, run));
        }
    }

    /// When the next wait ends.
    fn next(&self) -> Option<u64> {
        self.lock().due.first().map(|(t, _)| *t)
    }

    /// Removes and returns the runs whose wait ended by `now_ms`.
    fn take_due(&self, now_ms: u64) -> Vec<String> {
        let mut inner = self.lock();
        let mut ended = Vec::new();
        while inner.due.first().is_some_and(|(t, _)| *t <= now_ms) {
            if let Some((_, run)) = inner.due.pop_first() {
                inner.until.remove(&run);
                ended.push(run.to_string());
            }
        }
        ended
    }

    /// How many runs are parked.
    pub(crate) fn len(&self) -> usize {
        self.lock().due.len()
    }
}

/// Drives each parked run again when its wait ends, until shutdown.
pub(crate) async fn wake_due(svc: Arc<Service>) {
    while !svc.engine.is_shutting_down() {
        let next = svc.parked.next();
        let until = async {
            match next {
                Some(t) => svc.clock.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = until => {}
            () = svc.parked.earlier.notified() => {}
            // Looks at shutdown now and then: parked runs need nothing done at shutdown.
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        for run in svc.parked.take_due(svc.clock.now_ms()) {
            crate::processor::spawn_drive(&svc, run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_runs_come_due_in_order_of_their_wait_and_only_once() {
        let p = Parked::default();
        p.park("b".into(), 200);
        p.park("a".into(), 100);
        p.park("c".into(), 300);
        assert_eq!(p.next(), Some(100));
        assert!(p.take_due(99).is_empty());
        assert_eq!(p.take_due(200), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(p.take_due(200), Vec::<String>::new());
        assert_eq!((p.next(), p.len()), (Some(300), 1));
    }

    #[test]
    fn a_run_driven_early_or_parked_again_keeps_one_entry() {
        let p = Parked::default();
        p.park("a".into(), 100);
        p.park("a".into(), 50);
        assert_eq!((p.next(), p.len()), (Some(50), 1));
        p.unpark("a");
        p.unpark("never-parked");
        assert_eq!((p.next(), p.len()), (None, 0));
        assert!(p.take_due(u64::MAX).is_empty());
    }
}
