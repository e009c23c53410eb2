//! The mailbox wakers of the runs an [`crate::Executor`] drives: a message posted for a
//! run wakes its driver if it waits in this process.

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
