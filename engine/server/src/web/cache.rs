//! The run page's journal cache: the last few runs shown, each as its journal, its fold
//! and its timeline picture, brought up to date by reading only the entries appended
//! since.
//!
//! A live run page is fetched again after every append, by every person watching it, and
//! reading and folding a 10,000-entry journal takes longer than the page's whole budget
//! (50 ms; the `web` bench prints both). Journal entries are never rewritten, so what was
//! read stays true; a run removed by retention is noticed through its meta (read on every
//! load), and a run created again under the same id through its creation time.

use medic_core::{Entry, JournalStore, RunState, StoreError};
use medic_store::SledStore;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Runs kept: a 10,000-entry journal is a few MiB in memory.
const CAPACITY: usize = 8;

/// One run as the page needs it.
#[derive(Debug, Clone)]
pub(crate) struct CachedRun {
    pub(crate) state: RunState,
    pub(crate) entries: Vec<Entry>,
    created_ms: u64,
    /// The phase timeline picture (the postmortem's), drawn once per journal length.
    svg: OnceLock<Option<String>>,
}

impl CachedRun {
    /// The run's phase timeline picture, `None` when the journal cannot be drawn.
    pub(crate) fn svg(&self) -> Option<String> {
        self.svg
            .get_or_init(|| {
                medic_postmortem::Postmortem::picture([(self.state.id.as_str(), &self.entries[..])])
                    .ok()
            })
            .clone()
    }
}

/// The cache, most recently shown first.
#[derive(Debug, Default)]
pub(crate) struct RunCache {
    runs: Mutex<VecDeque<Arc<CachedRun>>>,
}

impl RunCache {
    /// The run `id` as its journal stands now.
    ///
    /// # Errors
    /// [`StoreError::NoSuchRun`] when the store has no such run (any more); a read error,
    /// or a journal that does not fold, as [`StoreError::Io`].
    pub(crate) fn load(&self, store: &SledStore, id: &str) -> Result<Arc<CachedRun>, StoreError> {
        let meta = store
            .run(id)?
            .ok_or_else(|| StoreError::NoSuchRun(id.to_string()))?;
        let held = {
            let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
            runs.iter()
                .position(|r| r.state.id == id)
                .and_then(|i| runs.remove(i))
        };
        let run = match held {
            Some(mut run) if run.created_ms == meta.created_ms => {
                let next = run.entries.last().map_or(0, |e| e.seq + 1);
                let newer = store.entries_from(id, next)?;
                if !newer.is_empty() {
                    // Shared with a page still rendering: that one keeps the old copy.
                    let r = Arc::make_mut(&mut run);
                    for e in &newer {
                        r.state.apply(e).map_err(|e| unfoldable(id, &e))?;
                    }
                    r.entries.extend(newer);
                    r.svg = OnceLock::new();
                }
                run
            }
            _ => {
                let entries = store.entries(id)?;
                let state = RunState::fold(id, &entries).map_err(|e| unfoldable(id, &e))?;
                Arc::new(CachedRun {
                    state,
                    entries,
                    created_ms: meta.created_ms,
                    svg: OnceLock::new(),
                })
            }
        };
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        runs.retain(|r| r.state.id != id);
        runs.push_front(run.clone());
        runs.truncate(CAPACITY);
        Ok(run)
    }
}

fn unfoldable(id: &str, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: "journal".into(),
        message: format!("run {id}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::index::tests::created;
    use medic_core::{Durability, Event, RunMeta, RunStatus};
    use medic_model::IncidentStatus;

    fn create(store: &SledStore, id: &str, ms: u64) {
        let meta = RunMeta {
            id: id.into(),
            workflow: "w".into(),
            incident_title: "t".into(),
            status: RunStatus::Running,
            created_ms: ms,
            updated_ms: ms,
        };
        let first = Entry {
            seq: 0,
            at_ms: ms,
            event: Event::RunCreated(Box::new(created(false, "i"))),
        };
        store.create_run(&meta, &first).unwrap();
    }

    fn resolve(store: &SledStore, id: &str, seq: u64) {
        let e = Entry {
            seq,
            at_ms: 10 + seq,
            event: Event::IncidentUpdated {
                status: IncidentStatus::Resolved,
            },
        };
        store.append(id, &e, None, Durability::Lazy).unwrap();
    }

    #[test]
    fn a_cached_run_follows_its_journal_and_forgets_a_removed_or_recreated_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let cache = RunCache::default();
        create(&store, "r", 1);
        let first = cache.load(&store, "r").unwrap();
        assert_eq!(first.entries.len(), 1);
        assert_eq!(first.state.incident.status, IncidentStatus::Firing);

        // Appended since: read and folded on the next load; the earlier copy is unchanged.
        resolve(&store, "r", 1);
        let next = cache.load(&store, "r").unwrap();
        assert_eq!(next.entries.len(), 2);
        assert_eq!(next.state.incident.status, IncidentStatus::Resolved);
        assert_eq!(first.entries.len(), 1);

        // Removed (retention): gone from the page too.
        store.remove_run("r", Vec::new()).unwrap();
        assert!(matches!(
            cache.load(&store, "r"),
            Err(StoreError::NoSuchRun(_))
        ));

        // Created again under the same id: read afresh, not appended to the old copy.
        create(&store, "r", 5);
        let again = cache.load(&store, "r").unwrap();
        assert_eq!(again.entries.len(), 1);
        assert_eq!(again.state.incident.status, IncidentStatus::Firing);
    }
}
