//! The drill's virtual clock. The executor only ever waits through `sleep_until`, and a
//! drill drives one run, so a wait means nothing is running: the clock jumps straight to
//! the next due instant — the deadline waited for, or an earlier scheduled input (a gate
//! decision, an incident update), which it posts to the run's mailbox before returning.
//! With a speed, the jump is paced at N× real time (a game day), in slices of at most
//! [`SLICE`] of real time, between which people's gate decisions are taken in (see
//! [`crate::live`]).

use crate::live::Inbox;
use async_trait::async_trait;
use medic_core::{Clock, JournalStore, Message};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest real-time sleep of a paced clock: how soon a person's decision is seen.
pub const SLICE: Duration = Duration::from_millis(100);

/// A virtual clock with a schedule of inputs for one run.
pub struct DrillClock {
    inner: Mutex<Inner>,
    speed: Option<f64>,
}

struct Inner {
    now: u64,
    /// (due, tie-breaker, message), kept sorted.
    schedule: Vec<(u64, u64, Message)>,
    added: u64,
    mailbox: Option<(Arc<dyn JournalStore>, String)>,
    /// A mailbox write failed: reported by [`DrillClock::take_error`].
    error: Option<String>,
    /// Where people's decisions arrive (a paced drill).
    inbox: Option<Arc<Inbox>>,
}

impl DrillClock {
    /// A clock at `start_ms`; `speed` paces jumps at N× real time (`None`: instant).
    pub fn new(start_ms: u64, speed: Option<f64>) -> Self {
        DrillClock {
            inner: Mutex::new(Inner {
                now: start_ms,
                schedule: Vec::new(),
                added: 0,
                mailbox: None,
                error: None,
                inbox: None,
            }),
            speed: speed.filter(|s| *s > 0.0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("drill clock lock")
    }

    /// Where scheduled inputs are posted: the drill run's mailbox.
    pub fn attach(&self, store: Arc<dyn JournalStore>, run: &str) {
        self.lock().mailbox = Some((store, run.to_string()));
    }

    /// Posts `message` to the run when the clock reaches `due_ms`.
    pub fn schedule(&self, due_ms: u64, message: Message) {
        let mut inner = self.lock();
        let n = inner.added;
        inner.added += 1;
        inner.schedule.push((due_ms, n, message));
        inner.schedule.sort_by_key(|(due, n, _)| (*due, *n));
        post_due(&mut inner);
    }

    /// Takes people's decisions from `inbox` while pacing.
    pub(crate) fn people(&self, inbox: Arc<Inbox>) {
        self.lock().inbox = Some(inbox);
    }

    /// Moves time on by `ms` (an exchange's latency, a timeout) and posts what fell due.
    pub fn advance(&self, ms: u64) {
        let mut inner = self.lock();
        inner.now += ms;
        post_due(&mut inner);
    }

    /// A failure to post a scheduled input, once.
    pub fn take_error(&self) -> Option<String> {
        self.lock().error.take()
    }
}

fn post_due(inner: &mut Inner) {
    let Some((store, run)) = inner.mailbox.clone() else {
        return;
    };
    while inner
        .schedule
        .first()
        .is_some_and(|(due, ..)| *due <= inner.now)
    {
        let (_, _, message) = inner.schedule.remove(0);
        if let Err(e) = store.post(&run, &message) {
            inner.error.get_or_insert(e.to_string());
        }
    }
}

#[async_trait]
impl Clock for DrillClock {
    fn now_ms(&self) -> u64 {
        self.lock().now
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        let (from, to) = {
            let inner = self.lock();
            let next = inner.schedule.first().map(|(due, ..)| *due);
            let to = match next {
                Some(due) if due < deadline_ms => due,
                _ => deadline_ms,
            };
            (inner.now, to)
        };
        // Paced: one slice of real time at most, then back to the executor, which reads
        // the mailbox (a person may have decided) and waits again if nothing changed.
        let to = match self.speed {
            Some(speed) if to > from => {
                let slice_ms = (SLICE.as_secs_f64() * 1000.0 * speed).max(1.0) as u64;
                let to = to.min(from + slice_ms);
                tokio::time::sleep(Duration::from_secs_f64((to - from) as f64 / 1000.0 / speed))
                    .await;
                to
            }
            _ => to,
        };
        let mut inner = self.lock();
        inner.now = inner.now.max(to);
        post_due(&mut inner);
        if let (Some(inbox), Some((store, run))) = (inner.inbox.clone(), inner.mailbox.clone()) {
            drop(inner);
            inbox.poll(&store, &run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_core::MemoryStore;

    #[tokio::test]
    async fn jumps_to_the_next_scheduled_input_before_the_deadline() {
        let store: Arc<dyn JournalStore> = Arc::new(MemoryStore::default());
        let c = DrillClock::new(1_000, None);
        c.attach(store.clone(), "r");
        c.schedule(
            5_000,
            Message::IncidentUpdate {
                status: medic_model::IncidentStatus::Resolved,
            },
        );
        c.sleep_until(60_000).await;
        assert_eq!(c.now_ms(), 5_000);
        assert_eq!(store.mailbox("r").unwrap().len(), 1);
        c.sleep_until(60_000).await;
        assert_eq!(c.now_ms(), 60_000);
    }
}
