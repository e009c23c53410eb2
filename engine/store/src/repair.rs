//! Closing the one gap a crash can leave between a journal and its run's meta.
//!
//! A finishing append is two inserts, the `run_finished` entry and then the meta that
//! says so (`write.rs`, [`crate::SledStore`]'s `applied`). sled recovers a prefix of its
//! log, so after a crash the meta never says finished without the entry, but the entry
//! can be there without the meta: the run's journal says it finished, its meta still
//! says running. Opening the store rewrites such metas from their journals before
//! anyone reads them, so `medic runs`, the web view, retention and resume all see the
//! run as its journal does.

use crate::keys::{META_PREFIX, entry_prefix};
use medic_core::codec::{decode_entry, decode_meta, encode_meta};
use medic_core::{Entry, Event, RunStatus};

/// [`finished_metas`] when a store is opened: whether it failed (the store opens anyway,
/// and its next journal append tries again). The failure is printed, naming the store,
/// since nothing else would tell an operator why `medic runs` lists a finished run as
/// running.
pub(crate) fn at_open(db: &sled::Db, path: &std::path::Path) -> bool {
    match finished_metas(db) {
        Ok(_) => false,
        Err(e) => {
            eprintln!(
                "medic: store at {}: cannot bring finished runs' index records up to their journals yet (retried on the next write): {e}",
                path.display()
            );
            true
        }
    }
}

/// Rewrites the meta of every run whose journal ends in `run_finished` while its meta
/// says running, and flushes if it rewrote any; returns how many it rewrote.
///
/// Reads every meta once and, for each running run, its journal's last entry (one
/// reverse prefix step): at open, a pass over the run index.
///
/// A record that does not decode is left as it is: the reader that meets it reports it,
/// naming its key, as before; the open does not fail on it.
///
/// # Errors
/// The message of a read or write failure.
pub(crate) fn finished_metas(db: &sled::Db) -> Result<usize, String> {
    let mut repaired = 0;
    for kv in db.scan_prefix(META_PREFIX) {
        let (key, value) = kv.map_err(|e| e.to_string())?;
        // The run is named by its key, which is what its journal's keys are built from.
        let (Ok(run), Ok(mut meta)) = (
            std::str::from_utf8(&key[META_PREFIX.len()..]),
            decode_meta(&value),
        ) else {
            continue;
        };
        if meta.status != RunStatus::Running {
            continue;
        }
        let Some(last) = db.scan_prefix(entry_prefix(run)).next_back() else {
            continue;
        };
        let (_, bytes) = last.map_err(|e| e.to_string())?;
        if let Ok(Entry {
            at_ms,
            event: Event::RunFinished { status, .. },
            ..
        }) = decode_entry(&bytes)
        {
            // What `RunJournal` writes with a `run_finished` entry: its status, and the
            // entry's time as the time the status changed.
            meta.status = status;
            meta.updated_ms = at_ms;
            db.insert(&key, encode_meta(&meta))
                .map_err(|e| e.to_string())?;
            repaired += 1;
        }
    }
    if repaired > 0 {
        db.flush().map_err(|e| e.to_string())?;
    }
    Ok(repaired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{entry_key, meta_key};
    use medic_core::RunMeta;
    use medic_core::codec::encode_entry;

    fn meta(id: &str, status: RunStatus) -> RunMeta {
        RunMeta {
            id: id.into(),
            workflow: "wf".into(),
            incident_title: "t".into(),
            status,
            created_ms: 1,
            updated_ms: 1,
        }
    }

    fn put_entry(db: &sled::Db, run: &str, seq: u64, event: Event) {
        let entry = Entry {
            seq,
            at_ms: 10 + seq,
            event,
        };
        db.insert(entry_key(run, seq), encode_entry(&entry))
            .unwrap();
    }

    #[test]
    fn a_meta_left_behind_while_serving_is_repaired_by_the_next_journal_write() {
        use medic_core::{Durability, JournalStore};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SledStore::open(dir.path()).unwrap();
        let skipped = |seq| Entry {
            seq,
            at_ms: 10 + seq,
            event: Event::StepSkipped {
                step: "s".into(),
                reason: "r".into(),
            },
        };
        for run in ["behind", "other"] {
            store
                .create_run(&meta(run, RunStatus::Running), &skipped(0))
                .unwrap();
        }
        // What a failed meta insert leaves: the finished entry, the meta still running.
        let (db, _) = store.db().unwrap();
        put_entry(
            &db,
            "behind",
            1,
            Event::RunFinished {
                status: RunStatus::Succeeded,
                reason: None,
            },
        );
        drop(db);
        store
            .metas_behind
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let status = |run| store.run(run).unwrap().unwrap().status;
        assert_eq!(status("behind"), RunStatus::Running);

        store
            .append("other", &skipped(1), None, Durability::Lazy)
            .unwrap();
        assert_eq!(status("behind"), RunStatus::Succeeded);
        assert!(
            !store
                .metas_behind
                .load(std::sync::atomic::Ordering::Relaxed)
        );
    }

    #[test]
    fn only_running_metas_of_finished_journals_are_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let skipped = || Event::StepSkipped {
            step: "s".into(),
            reason: "r".into(),
        };
        let finished = |status| Event::RunFinished {
            status,
            reason: None,
        };
        // behind: finished journal, running meta. going: still running. done: both
        // finished, the meta's own time kept. empty: a meta without a journal.
        for (run, status) in [
            ("behind", RunStatus::Running),
            ("going", RunStatus::Running),
            ("done", RunStatus::Failed),
            ("empty", RunStatus::Running),
        ] {
            db.insert(meta_key(run), encode_meta(&meta(run, status)))
                .unwrap();
        }
        put_entry(&db, "behind", 0, skipped());
        put_entry(&db, "behind", 1, finished(RunStatus::Failed));
        put_entry(&db, "going", 0, skipped());
        put_entry(&db, "done", 0, finished(RunStatus::Failed));
        db.insert(meta_key("corrupt"), b"not a meta".to_vec())
            .unwrap();

        assert_eq!(finished_metas(&db).unwrap(), 1);
        let read = |run: &str| decode_meta(&db.get(meta_key(run)).unwrap().unwrap()).unwrap();
        let behind = read("behind");
        assert_eq!((behind.status, behind.updated_ms), (RunStatus::Failed, 11));
        assert_eq!(read("going"), meta("going", RunStatus::Running));
        assert_eq!(read("done"), meta("done", RunStatus::Failed));
        assert_eq!(read("empty"), meta("empty", RunStatus::Running));
        assert_eq!(
            &db.get(meta_key("corrupt")).unwrap().unwrap()[..],
            b"not a meta"
        );
        // Nothing left to repair.
        assert_eq!(finished_metas(&db).unwrap(), 0);
    }
}
