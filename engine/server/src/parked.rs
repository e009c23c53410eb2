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
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// Parked runs by when their wait ends.
#[derive(Default)]
pub(crate) struct Parked {
    /// (wall-clock ms when the wait ends, run id).
    due: Mutex<BTreeSet<(u64, String)>>,
    /// Wakes [`wake_due`] when a run parks with a wait shorter than every other.
    earlier: Notify,
}

impl Parked {
    /// Keeps `run` until `until_ms`.
    pub(crate) fn park(&self, run: String, until_ms: u64) {
        let mut due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        let first = due.first().is_none_or(|(t, _)| until_ms < *t);
        due.insert((until_ms, run));
        if first {
            self.earlier.notify_one();
        }
    }

    /// When the next wait ends.
    fn next(&self) -> Option<u64> {
        let due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        due.first().map(|(t, _)| *t)
    }

    /// Removes and returns the runs whose wait ended by `now_ms`.
    fn take_due(&self, now_ms: u64) -> Vec<String> {
        let mut due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ended = Vec::new();
        while due.first().is_some_and(|(t, _)| *t <= now_ms) {
            if let Some((_, run)) = due.pop_first() {
                ended.push(run);
            }
        }
        ended
    }

    /// How many runs are parked (an entry left by a run woken early by a message counts
    /// until its time comes).
    pub(crate) fn len(&self) -> usize {
        self.due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Drives each parked run again when its wait ends, until shutdown. A run woken early by
/// a message may come up again later from its old entry: its driver then finds it
/// decided, or parks it again.
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
}
