//! A `JournalStore` in memory: nothing survives the process. For running a step outside any
//! durable run (`medic step test`, benchmarks), never for real runs.

use crate::Entry;
use crate::store::{Durability, JournalStore, Message, RunMeta, StoreError};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The [`JournalStore`] in memory, for attempts outside durable runs.
#[derive(Default)]
pub struct MemoryStore {
    runs: Mutex<BTreeMap<String, (RunMeta, Vec<Entry>)>>,
    mail: Mutex<Mailboxes>,
}

/// The last message id, and messages by (run, id).
type Mailboxes = (u64, BTreeMap<(String, u64), Message>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl JournalStore for MemoryStore {
    fn create_run(&self, meta: &RunMeta, first: &Entry) -> Result<(), StoreError> {
        self.runs
            .lock()
            .expect("memory store lock")
            .insert(meta.id.clone(), (meta.clone(), vec![first.clone()]));
        Ok(())
    }

    fn append(
        &self,
        run: &str,
        entry: &Entry,
        meta: Option<&RunMeta>,
        _durability: Durability,
    ) -> Result<(), StoreError> {
        let mut runs = self.runs.lock().expect("memory store lock");
        let (m, entries) = runs
            .get_mut(run)
            .ok_or_else(|| StoreError::NoSuchRun(run.to_string()))?;
        let expected = entries.len() as u64;
        if entry.seq != expected {
            return Err(StoreError::OutOfOrder {
                run: run.to_string(),
                expected,
                got: entry.seq,
            });
        }
        entries.push(entry.clone());
        if let Some(meta) = meta {
            *m = meta.clone();
        }
        Ok(())
    }

    fn entries(&self, run: &str) -> Result<Vec<Entry>, StoreError> {
        let runs = self.runs.lock().expect("memory store lock");
        runs.get(run)
            .map(|(_, e)| e.clone())
            .ok_or_else(|| StoreError::NoSuchRun(run.to_string()))
    }

    fn run(&self, run: &str) -> Result<Option<RunMeta>, StoreError> {
        Ok(self
            .runs
            .lock()
            .expect("memory store lock")
            .get(run)
            .map(|(m, _)| m.clone()))
    }

    fn runs(&self) -> Result<Vec<RunMeta>, StoreError> {
        Ok(self
            .runs
            .lock()
            .expect("memory store lock")
            .values()
            .map(|(m, _)| m.clone())
            .collect())
    }

    fn post(&self, run: &str, message: &Message) -> Result<(), StoreError> {
        let mut mail = self.mail.lock().expect("memory store lock");
        mail.0 += 1;
        let id = mail.0;
        mail.1.insert((run.to_string(), id), message.clone());
        Ok(())
    }

    fn mailbox(&self, run: &str) -> Result<Vec<(u64, Message)>, StoreError> {
        let mail = self.mail.lock().expect("memory store lock");
        Ok(mail
            .1
            .iter()
            .filter(|((r, _), _)| r == run)
            .map(|((_, id), m)| (*id, m.clone()))
            .collect())
    }

    fn ack(&self, run: &str, id: u64) -> Result<(), StoreError> {
        let mut mail = self.mail.lock().expect("memory store lock");
        mail.1.remove(&(run.to_string(), id));
        Ok(())
    }
}
