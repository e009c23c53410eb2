//! The mailbox wakers of the runs an [`crate::Executor`] drives: a message posted for a
//! run wakes its driver if it waits in this process; and [`Driven`], how a driver that
//! may park a run left it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A run's entry in [`Executor`]'s wakers while it is driven; removed on drop.
pub(crate) struct Waker<'a> {
    wakers: &'a Mutex<HashMap<String, Arc<Notify>>>,
    run: String,
    pub(crate) notify: Arc<Notify>,
}

impl<'a> Waker<'a> {
    pub(crate) fn register(wakers: &'a Mutex<HashMap<String, Arc<Notify>>>, run: &str) -> Self {
        let notify = Arc::new(Notify::new());
        wakers
            .lock()
            .expect("wakers lock")
            .insert(run.to_string(), notify.clone());
        Waker {
            wakers,
            run: run.to_string(),
            notify,
        }
    }
}

impl Drop for Waker<'_> {
    fn drop(&mut self) {
        let mut wakers = self.wakers.lock().expect("wakers lock");
        // Only our own entry: a second driver of the same run may have replaced it.
        if wakers
            .get(&self.run)
            .is_some_and(|n| Arc::ptr_eq(n, &self.notify))
        {
            wakers.remove(&self.run);
        }
    }
}

/// How [`crate::Executor::drive_or_park`] left a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driven {
    /// The run finished with this status.
    Finished(crate::RunStatus),
    /// Shutdown began: the run stays in its journal for the next start.
    Stopped,
    /// The run waits, at an open gate or for a retry, until `until_ms` (wall-clock ms
    /// since the Unix epoch) or a message for it, whichever comes first, and no driver
    /// holds it in memory: the caller drives it again at `until_ms`, and whenever it
    /// posts a message for it ([`crate::Executor::post`]).
    Parked {
        /// When the wait ends: the gate's deadline or the retry's time.
        until_ms: u64,
    },
}

/// The shortest wait [`crate::Executor::drive_or_park`] parks a run for, in ms: a shorter
/// one is waited out in memory, where opening the run again would cost more than it saves.
pub const PARK_AFTER_MS: u64 = 1_000;
